"""What an export is asked to do: format, output folder, filters and quality steps."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import UserError

FORMATS = ("sft", "dpo", "kto", "sharegpt", "parquet", "speech")
SOURCES = ("voice", "typed", "file")
RATINGS = ("bad", "unrated", "good")  # ordered: --min-rating keeps this value and those after it
INTERRUPTED = ("drop", "heard", "full")
DEDUPE = ("exact", "near", "none")
RETRIEVED = ("include", "omit")


@dataclass(frozen=True)
class Filters:
    """Which exchanges go into the export (None: no condition)."""

    since: float | None = None  # unix seconds, the reply's time (inclusive)
    until: float | None = None  # unix seconds (exclusive)
    personas: tuple[str, ...] = ()  # persona names of the reply
    models: tuple[str, ...] = ()  # model ids of the reply
    sources: tuple[str, ...] = ()  # voice / typed / file of the user turn
    languages: tuple[str, ...] = ()  # the user turn's detected language
    min_rating: str | None = None  # None: 'unrated' (bad-rated replies left out) except for kto/dpo
    tags: tuple[str, ...] = ()  # the conversation has at least one of these tags
    interrupted: str = "drop"  # drop | heard (the part heard) | full (as generated)
    reasoning: bool = True  # keep reasoning inside <think>…</think>; False drops it
    min_chars: int = 1  # reply length bounds (characters, after curation)
    max_chars: int | None = None


@dataclass(frozen=True)
class ExportOptions:
    """One ``epistemic dataset export`` run."""

    format: str
    out: Path
    filters: Filters = field(default_factory=Filters)
    seed: int = 0
    split: tuple[float, float, float] = (0.9, 0.05, 0.05)  # train / validation / test, by conversation
    dedupe: str = "exact"
    near_threshold: float = 0.85  # Jaccard similarity above which two examples are near-duplicates
    scrub_pii: bool = False
    force: bool = False
    license: str = "other"
    data_dir: Path | None = None  # where relative audio paths of user turns live
    retrieved_context: str = "include"  # sources a reply was given: include (as sent) | omit

    def describe(self) -> dict[str, Any]:
        """The options as JSON-able values (for the card and the manifest)."""
        out = asdict(self)
        out["out"] = str(self.out)
        out["data_dir"] = str(self.data_dir) if self.data_dir else None
        return out


def parse_when(value: str | None, name: str) -> float | None:
    """An ISO date or date-time as unix seconds; UserError (exit 2) naming the option otherwise."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise UserError(f"{name} {value!r}: expected a date like 2026-11-30 or 2026-11-30T14:00", exit_code=2) from None
