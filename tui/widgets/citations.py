"""Citations in a reply: ``[1]``-style markers resolved to the numbered sources the turn was given.

Pure functions (no widgets), used by the transcript on the UI thread: the markers are styled in the
answer (known ones in the accent colour, ones that name no source the turn was given in the error
colour, struck through) and a footnote line lists what each cited number points to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.content import Content

from agent.knowledge.protocols import Retrieval

# The same markers the voice leaves unspoken (audio.textprep): [1], [2, 3], [1-3]; never a [link](url)
CITATION = re.compile(r"\[(\d+(?:\s*[,–-]\s*\d+)*)\](?!\()")
KNOWN_STYLE = "bold $accent"
UNKNOWN_STYLE = "bold $error strike"
MAX_RANGE = 50


@dataclass(frozen=True)
class SourceRef:
    """A numbered source as a citation resolves to it: ``file § heading``."""

    number: int
    label: str


def refs_from_retrieval(retrieval: Retrieval | None) -> tuple[SourceRef, ...]:
    """The sources a finished turn was given."""
    return tuple(SourceRef(s.number, s.label) for s in retrieval.sources) if retrieval is not None else ()


def refs_from_log(data: Mapping[str, Any]) -> tuple[SourceRef, ...]:
    """The sources a logged reply was given (its ``extra.retrieval``); () if none or unreadable."""
    retrieval = (data.get("extra") or {}).get("retrieval") or {}
    refs = []
    for entry in retrieval.get("sources") or ():
        try:
            source, heading = str(entry["source"]), str(entry.get("heading") or "")
            name = source.rstrip("/").rsplit("/", 1)[-1] or source
            refs.append(SourceRef(int(entry["number"]), f"{name} § {heading}" if heading else name))
        except (KeyError, TypeError, ValueError):
            continue  # a damaged record: show the reply without that source
    return tuple(refs)


def _numbers(body: str) -> list[int]:
    """``1, 3-4`` -> [1, 3, 4] (a range longer than MAX_RANGE is taken as its ends)."""
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", body):
        ends = [int(n) for n in re.split(r"\s*[–-]\s*", part) if n]
        if len(ends) == 2 and 0 <= ends[1] - ends[0] <= MAX_RANGE:
            numbers += range(ends[0], ends[1] + 1)
        else:
            numbers += ends
    return numbers


def cited_numbers(text: str) -> list[int]:
    """Every source number the text cites, in order of first citation."""
    seen: dict[int, None] = {}
    for match in CITATION.finditer(text):
        seen.update(dict.fromkeys(_numbers(match.group(1))))
    return list(seen)


def styled_answer(text: str, known: set[int] | None) -> Content:
    """The answer with its citation markers styled; ``known`` None = not yet known (still streaming)."""
    content = Content(text)
    for match in CITATION.finditer(text):
        resolved = known is None or all(n in known for n in _numbers(match.group(1)))
        content = content.stylize(KNOWN_STYLE if resolved else UNKNOWN_STYLE, match.start(), match.end())
    return content


def footnote(text: str, refs: Sequence[SourceRef]) -> str:
    """``[1] notes.md § Setup · [4] no such source``; empty when the reply cites nothing and had no sources."""
    by_number = {r.number: r for r in refs}
    cited = cited_numbers(text)
    if not cited:
        return f"{len(refs)} sources given, none cited (Ctrl+K lists them)" if refs else ""
    return " · ".join(f"[{n}] {by_number[n].label}" if n in by_number else f"[{n}] names no source of this turn"
                      for n in cited)
