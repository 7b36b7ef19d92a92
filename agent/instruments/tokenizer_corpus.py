"""The lab's corpus: the logged turns a filter selects, streamed from one read snapshot, each with
its language.

The log is read through the export's :func:`agent.harvest.export.snapshot.read_snapshot`
(read-only, one read transaction), so the voice loop keeps writing meanwhile. A turn's language is
the one speech-to-text detected (user voice turns store it in their ``stt`` JSON); otherwise a
script count decides: more Cyrillic than Latin letters is ``ru``, any Latin letters ``en``, no
letters of either ``other``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from agent.errors import UserError
from agent.harvest.export.options import (
    SOURCES,
    parse_when,
)

ROLES = ("user", "assistant", "both")
BATCH = 2048
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z\u00C0-\u024F]")
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}|other")


@dataclass(frozen=True)
class CorpusFilters:
    """Which logged turns the lab measures (empty / None: no condition)."""

    since: float | None = None  # unix seconds, the turn's time (inclusive)
    until: float | None = None  # unix seconds (exclusive)
    personas: tuple[str, ...] = ()  # a reply's persona; a user turn's conversation persona
    sources: tuple[str, ...] = ()  # voice / typed / file of the user turn (a reply: of the turn it answers)
    role: str = "both"  # user | assistant | both
    languages: tuple[str, ...] = ()  # detected language (ru, en, other, or what STT reported)


@dataclass(slots=True)
class CorpusTurn:
    """One selected turn's text and language."""

    text: str
    language: str




def make_filters(*, since: str | None = None, until: str | None = None, personas: tuple[str, ...] = (),
                 sources: tuple[str, ...] = (), role: str = "both", languages: tuple[str, ...] = ()) -> CorpusFilters:
    """Filters from option values, each checked (UserError, exit 2, on an unknown value)."""
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise UserError(f"unknown --source {bad[0]!r}; choose one of {', '.join(SOURCES)}", exit_code=2)
    if role not in ROLES:
        raise UserError(f"unknown --role {role!r}; choose one of {', '.join(ROLES)}", exit_code=2)
    wrong = [code for code in languages if not _LANGUAGE_CODE.fullmatch(code)]
    if wrong:
        raise UserError(f"--language {wrong[0]!r}: expected a language code like ru or en (or other)", exit_code=2)
    return CorpusFilters(parse_when(since, "--since"), parse_when(until, "--until"), tuple(personas),
                         tuple(sources), role, tuple(languages))


def script_language(text: str) -> str:
    """``ru`` when Cyrillic letters outnumber Latin ones, ``en`` with any Latin letters, else ``other``."""
    cyrillic = len(_CYRILLIC.findall(text))
    latin = len(_LATIN.findall(text))
    if cyrillic > latin:
        return "ru"
    return "en" if latin else "other"


@lru_cache(maxsize=4096)
def stt_language(stt: str) -> str | None:
    """The language speech-to-text detected, from a user turn's stt JSON (None when absent or unreadable)."""
    try:
        value = json.loads(stt)
    except ValueError:
        return None
    found = value.get("language") if isinstance(value, dict) else None
    return found.lower() if isinstance(found, str) and found.strip() else None


def _where(filters: CorpusFilters) -> tuple[str, list[object]]:
    clauses: list[str] = ["t.text != ''"]
    args: list[object] = []
    if filters.since is not None:
        clauses.append("t.created_at >= ?")
        args.append(filters.since)
    if filters.until is not None:
        clauses.append("t.created_at < ?")
        args.append(filters.until)
    if filters.role != "both":
        clauses.append("t.role = ?")
        args.append(filters.role)
    for column, values in (("COALESCE(t.persona, c.persona)", filters.personas),
                           ("COALESCE(t.source, p.source)", filters.sources)):
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            args.extend(values)
    return " AND ".join(clauses), args


_FROM = ("FROM turns t JOIN conversations c ON c.id = t.conversation_id "
         "LEFT JOIN turns p ON p.id = t.parent_id WHERE ")


def count_turns(conn: sqlite3.Connection, filters: CorpusFilters) -> int:
    """How many turns the SQL part of the filters selects (the language is checked while streaming)."""
    where, args = _where(filters)
    return int(conn.execute(f"SELECT COUNT(*) {_FROM}{where}", args).fetchone()[0])


def stream_turns(conn: sqlite3.Connection, filters: CorpusFilters) -> Iterator[list[CorpusTurn | None]]:
    """Batches of the selected turns in log order; a turn the language filter drops is None (it
    still counts as read, for progress)."""
    where, args = _where(filters)
    cursor = conn.execute(f"SELECT t.text, t.role, t.stt {_FROM}{where} ORDER BY t.id", args)
    wanted = set(filters.languages)
    while rows := cursor.fetchmany(BATCH):
        batch: list[CorpusTurn | None] = []
        for text, role, stt in rows:
            lang = (stt_language(stt) if role == "user" and stt else None) or script_language(text)
            batch.append(CorpusTurn(text, lang) if not wanted or lang in wanted else None)
        yield batch
