"""Turning generated token bytes into text pieces, and holding back text that may become a stop string.

A llama.cpp token is a run of bytes, not always whole UTF-8 characters: Cyrillic letters are two
bytes and byte-level BPE often splits them across tokens. :class:`PieceDecoder` gives each token
the characters it completes, so the pieces of a reply always concatenate to its text.
:class:`StopMatcher` releases tokens only once they cannot be the start of a stop string, so a
stop string never reaches the listener.
"""

from __future__ import annotations

import codecs
from dataclasses import replace

from agent.llm.base import TokenStep

BYTE_MARKER_ERRORS = "epistemic-byte-marker"


def _byte_marker(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    fragment = err.object[err.start : err.end]
    return "".join(f"<0x{b:02X}>" for b in fragment), err.end


codecs.register_error(BYTE_MARKER_ERRORS, _byte_marker)


def piece_label(data: bytes) -> str:
    """A token's bytes as text for display: whole characters as they are, stray bytes as ``<0xD0>``."""
    return data.decode("utf-8", errors=BYTE_MARKER_ERRORS)


class PieceDecoder:
    """Incremental UTF-8: bytes in, the newly completed characters out (possibly "")."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)


class StopMatcher:
    """Holds back generated steps while their text could still grow into a stop string."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = tuple(s for s in stops if s)
        self.held: list[TokenStep] = []
        self.matched: str | None = None

    def feed(self, step: TokenStep) -> list[TokenStep]:
        """Steps that are safe to emit now; sets ``matched`` when a stop string completes."""
        if not self.stops:
            return [step]
        self.held.append(step)
        text = "".join(s.text for s in self.held)
        hit = min(((text.find(s), s) for s in self.stops if s in text), default=None)
        if hit is not None:
            self.matched = hit[1]
            return self._take_until(hit[0], cut=True)
        return self._take_until(len(text) - self._partial_suffix(text), cut=False)

    def flush(self) -> list[TokenStep]:
        """Everything still held (the reply ended for another reason)."""
        out, self.held = self.held, []
        return out

    def _partial_suffix(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins some stop string."""
        best = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(text)), best, -1):
                if text.endswith(stop[:k]):
                    best = k
                    break
        return best

    def _take_until(self, limit: int, *, cut: bool) -> list[TokenStep]:
        """Release held steps whose text ends by ``limit``; with ``cut`` trim the straddling one and drop the rest."""
        out: list[TokenStep] = []
        used = 0
        for i, step in enumerate(self.held):
            if used + len(step.text) <= limit:
                out.append(step)
                used += len(step.text)
                continue
            if cut:
                if limit > used:
                    out.append(replace(step, text=step.text[: limit - used]))
                self.held = []
            else:
                self.held = self.held[i:]
            return out
        self.held = []
        return out
