"""Optional PII scrubbing: e-mail addresses, phone numbers (Russian formats too), card numbers."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}")
# a card: 13-19 digits, optionally grouped by spaces or dashes
CARD = re.compile(r"(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])")
# +7 (916) 123-45-67, 8 916 123 45 67, 8-916-123-45-67, +1 415 555 0100, (495) 123-45-67 ...
PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s-]?|8[\s-]?)?(?:\(\d{3,4}\)|\d{3,4})[\s-]?\d{2,3}[\s-]?\d{2}[\s-]?\d{2}(?![\w])"
)
MARKS = {"email": "<EMAIL>", "card": "<CARD>", "phone": "<PHONE>"}


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum that every payment card number passes."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class Scrubber:
    """Replaces PII with placeholders and counts what it replaced, by kind."""

    def __init__(self) -> None:
        self.found: Counter[str] = Counter()

    def __call__(self, text: str) -> str:
        text = EMAIL.sub(self._mark("email"), text)
        text = CARD.sub(self._card, text)
        return PHONE.sub(self._mark("phone"), text)

    def _mark(self, kind: str) -> Callable[[re.Match[str]], str]:
        def replace(_: re.Match[str]) -> str:
            self.found[kind] += 1
            return MARKS[kind]
        return replace

    def _card(self, match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        if not luhn_ok(digits):
            return match.group()  # a long number that is no card (phone numbers are caught next)
        self.found["card"] += 1
        return MARKS["card"]
