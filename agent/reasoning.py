"""Separate ``<think>…</think>`` reasoning from the answer while tokens stream in.

Tags may arrive split across tokens (``<th`` + ``ink>``), so the splitter holds back any tail
that could still become a tag and releases it once it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Channel = Literal["reasoning", "answer"]
OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


def _partial_tag_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


@dataclass
class ReasoningSplitter:
    """Feed text pieces; get (channel, text) segments with the tags removed."""

    reasoning: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    _pending: str = ""
    _in_think: bool = False

    def feed(self, piece: str) -> list[tuple[Channel, str]]:
        """Consume one piece; return the segments that are certain now."""
        text = self._pending + piece
        self._pending = ""
        out: list[tuple[Channel, str]] = []
        while text:
            tag = CLOSE_TAG if self._in_think else OPEN_TAG
            at = text.find(tag)
            if at >= 0:
                self._emit(out, text[:at])
                text = text[at + len(tag) :]
                self._in_think = not self._in_think
                if not self._in_think:
                    text = text.lstrip("\n")
                continue
            hold = _partial_tag_suffix(text, tag)
            self._emit(out, text[: len(text) - hold])
            self._pending = text[len(text) - hold :]
            break
        return out

    def flush(self) -> list[tuple[Channel, str]]:
        """End of stream: release anything held back."""
        out: list[tuple[Channel, str]] = []
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: list[tuple[Channel, str]], text: str) -> None:
        if not text:
            return
        channel: Channel = "reasoning" if self._in_think else "answer"
        (self.reasoning if self._in_think else self.answer).append(text)
        out.append((channel, text))

    @property
    def in_reasoning(self) -> bool:
        """Inside a ``<think>`` block now."""
        return self._in_think

    @property
    def answer_text(self) -> str:
        return "".join(self.answer).strip()

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning).strip()


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a complete text."""
    splitter = ReasoningSplitter()
    splitter.feed(text)
    splitter.flush()
    return splitter.reasoning_text, splitter.answer_text
