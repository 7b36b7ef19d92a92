"""Drop fenced code blocks (```...``` or ~~~...~~~) from streamed text before it is cut into
sentences: the sentence chunker cuts at line ends, so a code block would otherwise reach the
voice line by line. Fence markers split across tokens are held back until they are certain.
"""

from __future__ import annotations

FENCES = ("```", "~~~")


class FenceFilter:
    """Feed streamed text; get back the part outside code fences."""

    def __init__(self) -> None:
        self._pending = ""
        self._open: str | None = None  # the marker of the fence we are inside
        self.dropped = ""  # code that was left out

    def feed(self, piece: str) -> str:
        """Text that is certainly outside a fence now."""
        return self._scan(self._pending + piece, final=False)

    def flush(self) -> str:
        """End of the stream: release what was held back (an unclosed fence stays dropped)."""
        return self._scan(self._pending, final=True)

    def _scan(self, text: str, final: bool) -> str:
        self._pending = ""
        out: list[str] = []
        while text:
            at, marker = self._next_marker(text)
            if marker is None:
                keep = 0 if final else _partial_marker(text)
                self._take(text[: len(text) - keep], out)
                self._pending = text[len(text) - keep:]
                break
            self._take(text[:at], out)
            self._open = None if self._open else marker
            text = text[at + len(marker):]
        return "".join(out)

    def _next_marker(self, text: str) -> tuple[int, str | None]:
        wanted = (self._open,) if self._open else FENCES
        found = [(text.find(m), m) for m in wanted if text.find(m) >= 0]
        return min(found) if found else (-1, None)

    def _take(self, text: str, out: list[str]) -> None:
        if self._open:
            self.dropped += text
        else:
            out.append(text)


def _partial_marker(text: str) -> int:
    """Length of a trailing run of backticks or tildes that could still grow into a fence."""
    for n in (2, 1):
        if text.endswith(("`" * n, "~" * n)):
            return n
    return 0
