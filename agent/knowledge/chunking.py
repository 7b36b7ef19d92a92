"""Cut a document's text into chunks along its headings and paragraphs.

A chunk never crosses a heading; inside a section whole paragraphs are packed up to
``max_chars``, and only a paragraph longer than that is cut, at sentence ends. Every chunk keeps
its heading path ("Setup > Linux") and its character offsets in the document's text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
DEFAULT_MAX_CHARS = 1000


@dataclass(frozen=True)
class Chunk:
    """A piece of a document: its text, heading path and offsets ``[start, end)`` in the document."""

    text: str
    heading: str
    start: int
    end: int


@dataclass(frozen=True)
class _Section:
    """The text between two headings, with the path of headings above it."""

    heading: str
    start: int
    end: int


def chunk_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    """Chunks of ``text`` (Markdown headings respected; plain text is one section)."""
    chunks: list[Chunk] = []
    for section in _sections(text):
        chunks += _pack(text, section, max_chars)
    return chunks


def _sections(text: str) -> Iterator[_Section]:
    path: list[tuple[int, str]] = []
    start = 0
    for match in HEADING.finditer(text):
        yield _Section(_joined(path), start, match.start())
        level = len(match.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2).strip())]
        start = match.end()
    yield _Section(_joined(path), start, len(text))


def _joined(path: list[tuple[int, str]]) -> str:
    return " > ".join(title for _, title in path)


def _paragraphs(text: str, section: _Section) -> Iterator[tuple[int, int]]:
    """(start, end) of each non-blank paragraph of the section, stripped of surrounding space."""
    pos = section.start
    for brk in [*PARAGRAPH_BREAK.finditer(text, section.start, section.end), None]:
        end = brk.start() if brk else section.end
        yield from _stripped(text, pos, end)
        pos = brk.end() if brk else section.end


def _stripped(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    trail = len(piece) - len(piece.rstrip())
    if start + lead < end - trail:
        yield start + lead, end - trail


def _pack(text: str, section: _Section, max_chars: int) -> list[Chunk]:
    """Whole paragraphs packed into chunks of at most ``max_chars`` (long ones cut at sentences)."""
    chunks: list[Chunk] = []
    current: tuple[int, int] | None = None
    for start, end in _pieces(text, section, max_chars):
        if current is not None and end - current[0] <= max_chars:
            current = (current[0], end)
            continue
        if current is not None:
            chunks.append(Chunk(text[current[0]:current[1]], section.heading, *current))
        current = (start, end)
    if current is not None:
        chunks.append(Chunk(text[current[0]:current[1]], section.heading, *current))
    return chunks


def _pieces(text: str, section: _Section, max_chars: int) -> Iterator[tuple[int, int]]:
    for start, end in _paragraphs(text, section):
        if end - start <= max_chars:
            yield start, end
        else:
            yield from _sentences(text, start, end, max_chars)


def _sentences(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """A long paragraph in sentence runs of at most ``max_chars`` (a longer sentence is cut hard)."""
    bounds = [start] + [m.end() for m in SENTENCE_END.finditer(text, start, end)] + [end]
    run = start
    for prev, nxt in zip(bounds, bounds[1:], strict=False):
        if nxt - run > max_chars and prev > run:
            yield from _stripped(text, run, prev)
            run = prev
        while nxt - run > max_chars:
            yield from _stripped(text, run, run + max_chars)
            run += max_chars
    yield from _stripped(text, run, end)
