"""Cut a stream of generated tokens into sentences as soon as each one ends.

The first sentence can be spoken while the rest is still being generated. Handles Russian and
English punctuation («?!», «…», closing quotes), abbreviations («т. е.», «г. Москва», "Dr."),
initials, numbers like 3.14, list items and paragraphs, and keeps ``<think>`` reasoning apart
(never yielded as speech).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_ABBREVIATIONS = frozenset({
    # Russian: words that usually precede a capitalised name or continue the sentence
    "г", "гг", "ул", "им", "проф", "акад", "д", "пр", "просп", "пл", "св", "ген", "т", "т.е", "т.к", "т.н",
    "напр", "см", "ср", "рис", "стр", "тел", "доц", "канд",
    # English
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "no", "fig", "e.g", "i.e", "cf", "approx", "mt",
})
_TERMINATORS = ".!?…"
_CLOSERS = "»\"')]”’*_"
_OPEN_TAG, _CLOSE_TAG = "<think>", "</think>"
_WORD_BEFORE = re.compile(r"([\w.]+)$")
_LIST_NUMBER = re.compile(r"^\s*\d+$")


class SentenceChunker:
    """Feed token text with :meth:`feed`; it returns the sentences completed so far."""

    def __init__(self, *, max_chars: int = 300, in_reasoning: bool = False) -> None:
        self.max_chars = max_chars
        self._in_think = in_reasoning
        self._raw = ""  # not yet classified as speech or reasoning (may hold a partial tag)
        self._text = ""  # speech text not yet cut into sentences
        self.reasoning = ""  # everything inside <think> blocks

    def feed(self, piece: str) -> list[str]:
        """Add generated text; return sentences that are now complete."""
        self._raw += piece
        self._route(final=False)
        return self._cut(final=False)

    def flush(self) -> list[str]:
        """End of the reply: return whatever is left as the last sentence."""
        self._route(final=True)
        return self._cut(final=True)

    def _route(self, final: bool) -> None:
        """Move text from the raw buffer to speech or reasoning, holding back partial tags."""
        while self._raw:
            tag = _CLOSE_TAG if self._in_think else _OPEN_TAG
            at = self._raw.find(tag)
            if at >= 0:
                self._take(self._raw[:at])
                self._raw = self._raw[at + len(tag):]
                self._in_think = not self._in_think
                continue
            keep = 0 if final else _partial_tag_len(self._raw, tag)
            self._take(self._raw[: len(self._raw) - keep])
            self._raw = self._raw[len(self._raw) - keep:]
            return

    def _take(self, text: str) -> None:
        if self._in_think:
            self.reasoning += text
        else:
            self._text += text

    def _cut(self, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            end = _boundary(self._text)
            if end is None and len(self._text) > self.max_chars:
                end = _fallback_cut(self._text, self.max_chars)
            if end is None:
                break
            _emit(out, self._text[:end])
            self._text = self._text[end:]
        if final:
            _emit(out, self._text)
            self._text = ""
        return out


def _emit(out: list[str], sentence: str) -> None:
    sentence = " ".join(sentence.split())
    if any(ch.isalnum() for ch in sentence):
        out.append(sentence)


def _partial_tag_len(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that could begin ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


def _boundary(text: str) -> int | None:
    """Index just after the first complete sentence in ``text``, or None."""
    for i, ch in enumerate(text):
        if ch == "\n" and text[:i].strip():
            return i + 1
        if ch in _TERMINATORS and (end := _sentence_end(text, i)) is not None:
            return end
    return None


def _sentence_end(text: str, i: int) -> int | None:
    j = i
    while j < len(text) and text[j] in _TERMINATORS:
        j += 1
    while j < len(text) and text[j] in _CLOSERS:
        j += 1
    rest = text[j:]
    if not rest or not rest[0].isspace():
        return None  # "3.14", "т.е", or we cannot see what follows yet
    following = rest.lstrip(" \t")
    if following[:1] in ("—", "–", "-"):
        following = following[1:].lstrip(" \t")  # «Кто там?» — спросил он.
    if not following:
        return None
    if following[0].islower():
        return None  # "5 руб. в день", "e.g. this"
    if text[i:j].rstrip(_CLOSERS) == "." and _is_abbreviation(text[:i]):
        return None
    return j


def _is_abbreviation(before: str) -> bool:
    m = _WORD_BEFORE.search(before)
    if not m:
        return False
    word = m.group(1)
    if _LIST_NUMBER.match(before):
        return True  # "1." opening a list item
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "А. С. Пушкин"
    return word.casefold() in _ABBREVIATIONS


def _fallback_cut(text: str, limit: int) -> int:
    """A cut point for an over-long sentence: the last comma or space before ``limit``."""
    for sep in (", ", "; ", " — ", " "):
        at = text.rfind(sep, 0, limit)
        if at > limit // 3:
            return at + len(sep)
    return limit


def sentences(pieces: Iterable[str], **kwargs) -> Iterator[str]:
    """Sentences from an iterable of token texts, each yielded as soon as it is complete."""
    chunker = SentenceChunker(**kwargs)
    for piece in pieces:
        yield from chunker.feed(piece)
    yield from chunker.flush()
