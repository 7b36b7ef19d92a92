"""One export from start to end: options checked, snapshot read, rows streamed into a temporary
folder, card and manifest written, the folder renamed into place."""

from __future__ import annotations

import importlib
import shutil
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.harvest.export import card, manifest
from agent.harvest.export.dedupe import Deduper
from agent.harvest.export.examples import Conversation
from agent.harvest.export.exchanges import Curation, build, conversation_reason, curate
from agent.harvest.export.options import (
    DEDUPE,
    FORMATS,
    INTERRUPTED,
    RATINGS,
    RETRIEVED,
    ExportOptions,
)
from agent.harvest.export.pii import Scrubber
from agent.harvest.export.query import CorruptRow, Turn, conversations, system_prompt_of, validate
from agent.harvest.export.sinks import JsonlSink, Sink
from agent.harvest.export.snapshot import ExportError, LogIdentity, read_snapshot
from agent.harvest.export.speech import SpeechSink, utterances
from agent.harvest.export.split import Splitter
from agent.private import private_dir, private_opener

SystemPrompts = Callable[[str | None], str | None]  # persona name -> its system prompt
MODULES = {"sft": "sft", "dpo": "dpo", "kto": "kto", "sharegpt": "sharegpt", "parquet": "parquet_fmt"}


@dataclass(frozen=True)
class ExportProgress:
    """How far an export is: turns read of the snapshot's total, examples written."""

    turns: int
    total: int
    examples: int


@dataclass
class ExportReport:
    """What an export wrote and left out."""

    out: Path
    rows: dict[str, int]
    removed: Counter[str]
    turns_read: int
    seconds: float
    identity: LogIdentity
    facts: card.CardFacts
    manifest: dict[str, Any] = field(default_factory=dict)


def check(options: ExportOptions) -> None:
    """Refuse unknown choices and an existing output (one line naming the valid choices)."""
    for name, value, valid in (("--format", options.format, FORMATS), ("--dedupe", options.dedupe, DEDUPE),
                               ("--interrupted", options.filters.interrupted, INTERRUPTED),
                               ("--retrieved-context", options.retrieved_context, RETRIEVED)):
        if value not in valid:
            raise ExportError(f"unknown {name} {value!r}; choose one of {', '.join(valid)}")
    rating = options.filters.min_rating
    if rating is not None and rating not in RATINGS:
        raise ExportError(f"unknown --min-rating {rating!r}; choose one of {', '.join(RATINGS)}")
    if options.out.exists() and not options.force:
        raise ExportError(f"{options.out}: already exists; choose another --out or pass --force to replace it")


def min_rating(options: ExportOptions) -> str:
    """The rating an exported reply needs: as asked, else 'unrated' (bad ones out) for SFT-like formats."""
    if options.filters.min_rating is not None:
        return options.filters.min_rating
    return "bad" if options.format in ("dpo", "kto") else "unrated"


def export(options: ExportOptions, log_path: Path, *, system_prompts: SystemPrompts | None = None,
           progress: Callable[[ExportProgress], None] | None = None) -> ExportReport:
    """Export the log at ``log_path`` as ``options`` say; the report of what was written."""
    check(options)
    started = time.time()
    temp = private_dir(options.out.parent / f".{options.out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with read_snapshot(log_path) as (conn, identity):
            job = _Job(options, conn, identity, temp, system_prompts, progress)
            job.run()
        report = job.finish(started)
        _move_into_place(temp, options.out)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    report.out = options.out
    return report


def _move_into_place(temp: Path, out: Path) -> None:
    """Rename the finished folder to ``out`` (an old ``out`` is replaced only after that succeeds)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        out.rename(old)
    temp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


class _Job:
    """The state of one running export."""

    def __init__(self, options: ExportOptions, conn: sqlite3.Connection, identity: LogIdentity, root: Path,
                 system_prompts: SystemPrompts | None, progress: Callable[[ExportProgress], None] | None) -> None:
        self.options, self.conn, self.identity, self.root = options, conn, identity, root
        self.system_prompts = system_prompts
        self.progress = progress
        self.removed: Counter[str] = Counter()
        self.scrubber = Scrubber()
        self.scrub = self.scrubber if options.scrub_pii else _same
        self.splitter = Splitter(options.split, options.seed)
        self.deduper = Deduper(options.dedupe, options.near_threshold)
        self.curation = _curation(conn)
        self.facts = card.CardFacts(options.format, {}, self.removed, self.scrubber.found,
                                    options=options.describe())
        self.turns = self.examples = 0
        self.retrieval: Counter[str] = Counter()  # replies given sources, and those whose block was not logged
        self.min_rating = min_rating(options)
        self.speech = SpeechSink(root) if options.format == "speech" else None
        self.sink: Sink | None = None if self.speech else _sink(options.format, root)
        self.module = None if self.speech else importlib.import_module(f"agent.harvest.export.{MODULES[options.format]}")

    def run(self) -> None:
        next_report = 0
        for turns in conversations(self.conn):
            self.turns += len(turns)
            self._conversation(_valid(turns, self.removed))
            if self.progress is not None and self.turns >= next_report:
                self.progress(ExportProgress(self.turns, self.identity.turns, self.examples))
                next_report = self.turns + 20_000
        if self.progress is not None:
            self.progress(ExportProgress(self.turns, self.identity.turns, self.examples))

    def _conversation(self, turns: list[Turn]) -> None:
        if not turns:
            return
        if self.speech is not None:
            self._speech(turns)
            return
        conv_id, f = turns[0].conversation_id, self.options.filters
        exchanges = build(turns, self.removed)
        reason = conversation_reason(conv_id, self.curation, f)
        if reason:
            self.removed[reason] += len(exchanges)
            return
        curate(exchanges, self.curation, f, self.min_rating)
        for ex in exchanges:
            if ex.sources != "":
                self.retrieval["given" if ex.sources else "unlogged"] += 1
        conv = Conversation(conv_id, exchanges, self._system(exchanges), self.curation, f, self.scrub,
                            self.options.retrieved_context)
        assert self.module is not None and self.sink is not None
        kept = 0
        for example in self.module.examples(conv):
            duplicate = self.deduper.duplicate(example.key)
            if duplicate:
                self.removed[duplicate] += example.turns
                continue
            kept += example.turns
            self.sink.write(self.splitter(conv_id), example.row)
            self.examples += 1
            self._note(example.sources)
        if self.options.format in ("sft", "sharegpt", "parquet"):
            for ex in exchanges:
                if ex.reason:
                    self.removed[ex.reason] += 1

    def _speech(self, turns: list[Turn]) -> None:
        assert self.speech is not None
        for utt in utterances(turns, self.curation, self.options.filters, self.options.data_dir, self.removed):
            duplicate = self.deduper.duplicate(f"{utt.audio}\n{utt.transcript}") if self.options.dedupe != "none" else None
            if duplicate:
                self.removed[duplicate] += 1
                continue
            try:
                self.speech.add(self.splitter(utt.turn.conversation_id), utt, self.scrub)
            except (OSError, RuntimeError) as exc:  # soundfile raises RuntimeError subclasses
                self.removed[f"audio unreadable ({type(exc).__name__})"] += 1
                continue
            self.examples += 1
            self.facts.languages[utt.language or "unknown"] += 1

    def _system(self, exchanges: list[Any]) -> str | None:
        if not exchanges:
            return None
        first = exchanges[0].active
        stored = system_prompt_of(self.conn, first.id)
        if stored is not None:
            return stored
        return self.system_prompts(first.persona) if self.system_prompts else None

    def _note(self, sources: list[dict[str, Any]]) -> None:
        for source in sources:
            self.facts.models[source["model_id"]] += 1
            self.facts.personas[source["persona"]] += 1
            self.facts.languages[source["language"] or "unknown"] += 1

    def finish(self, started: float) -> ExportReport:
        """Close the files, write the extras, the card and the manifest."""
        rows = self.speech.close() if self.speech is not None else self.sink.close() if self.sink else {}
        self.facts.rows = rows
        if self.speech is not None:
            self.facts.extra = {"total duration (s)": round(self.speech.totals.seconds, 2),
                                "utterances per language": dict(self.speech.totals.languages)}
        if self.options.format == "sharegpt":
            _write_dataset_info(self.root, rows)
        self.facts.extra["dedupe"] = self.options.dedupe
        if self.speech is None:
            self.facts.extra.update(_text_notes(self.options, self.retrieval, self.curation))
        card.write(self.root, self.facts)
        counts = {"turns_read": self.turns, "examples": self.examples, "removed": dict(self.removed),
                  "pii_replaced": dict(self.scrubber.found), **self.facts.extra}
        from agent import __version__
        written = manifest.write(self.root, options=self.options.describe(), identity=self.identity,
                                 rows=rows, counts=counts, created_at=started, version=__version__)
        return ExportReport(self.options.out, rows, self.removed, self.turns, time.time() - started,
                            self.identity, self.facts, written)


def _text_notes(options: ExportOptions, retrieval: Counter[str], cur: Curation) -> dict[str, Any]:
    """What the card and manifest say about retrieved sources and corrected transcripts."""
    mode = options.retrieved_context
    notes: dict[str, Any] = {
        "retrieved context": f"{mode}: " + ("the numbered sources a reply was given stay in its system "
                                            "message, exactly as sent" if mode == "include" else
                                            "the numbered sources are left out of every system message"),
        "replies given retrieved sources": retrieval["given"] + retrieval["unlogged"],
        "corrected transcripts": f"{len(cur.transcripts)} in the log; a corrected user turn is exported "
                                 "with the corrected words (the model was given the original transcript, "
                                 "kept in provenance as original_user_text)",
    }
    if retrieval["unlogged"]:
        notes["replies whose sources block was not logged (older log; exported without it)"] = retrieval["unlogged"]
    return notes


def _same(text: str) -> str:
    return text


def _valid(turns: list[Turn], removed: Counter[str]) -> list[Turn]:
    out = []
    for turn in turns:
        try:
            out.append(validate(turn))
        except CorruptRow:
            removed["corrupt row (unreadable JSON)"] += 1
    return out


def _curation(conn: sqlite3.Connection) -> Curation:
    from agent.harvest.curation import load_state

    return Curation.of(load_state(conn))


def _sink(fmt: str, root: Path) -> Sink:
    if fmt == "parquet":
        from agent.harvest.export.parquet_fmt import ParquetSink

        return ParquetSink(root)
    return JsonlSink(root)


def _write_dataset_info(root: Path, rows: dict[str, int]) -> None:
    import json

    from agent.harvest.export.sharegpt import dataset_info

    files = {path.split("/")[-1].split(".")[0]: path for path in sorted(rows)}
    with open(root / "dataset_info.json", "x", encoding="utf-8", opener=private_opener) as handle:
        json.dump(dataset_info(files), handle, ensure_ascii=False, indent=2)
