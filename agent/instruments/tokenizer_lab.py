"""The tokenizer lab: fertility of every tokenizer on the user's own logged dialogues, per language.

For each model and language: turns, words (runs of letters), characters, tokens, tokens per word
and characters per token; and the words split worst (most tokens in any model, among words seen at least
``min_count`` times; each word lowercased and tokenized alone, as ``epistemic tokenize WORD``
shows it) with their pieces in every model, side by side.

Speed (``bench/bench_tokenize.py``): a turn is cut into pre-tokenizer chunks (a word with its
leading space, a number, a run of punctuation, whitespace), the cut GPT-2-style tokenizers make
before merging, and each distinct chunk is tokenized once per model (a chunk -> token count
cache, filled a batch at a time); a turn's count is the sum of its chunks'. Whether that sum is the
model's own count is checked, not assumed: the first batch's turns are also tokenized whole, and a
model whose chunk sums miss by more than ``MAX_DEVIATION`` is measured on whole turns instead
(slower, exact). Every model's deviation on a sample spread over the whole selection is reported.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import UserError
from agent.harvest.export.snapshot import read_snapshot
from agent.instruments.tokenizer_corpus import CorpusFilters, CorpusTurn, count_turns, stream_turns
from agent.instruments.tokenizer_models import TokenizerSource, Vocabulary, load_vocabulary

# GPT-2's pre-tokenizer with Unicode classes: contractions, a word / number / punctuation run with
# an optional leading space, whitespace (the last space of a run stays with the next word)
CHUNK = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+")
WORD = re.compile(r"[^\W\d_]+")
CALIBRATION_TURNS = 256  # whole-turn counts compared with chunk sums in the first batch
SAMPLE_TURNS = 512  # about this many turns, spread over the selection, re-checked for the report
MAX_DEVIATION = 0.01  # chunk sums further than this (relative) from whole-turn counts: measure whole turns
MAX_CANDIDATES = 20_000  # most frequent words per language considered for the worst-split list

Progress = Callable[[int, int], None]  # (turns read, turns selected)


class LabCancelled(UserError):
    """The run was cancelled (the TUI screen closed)."""


@dataclass
class ModelResult:
    """One model's measurement: how its counts were made and how close chunk sums came."""

    name: str
    kind: str
    path: str
    method: str = "chunks"  # "chunks" (cached pre-tokenizer chunks) | "whole turns"
    deviation: float = 0.0  # |chunk-sum tokens - whole-turn tokens| / whole-turn tokens on the sample
    seconds: float = 0.0  # tokenizer time (loading, counting, the worst-split list)


@dataclass
class LanguageRow:
    """Totals of one language: what was read, and each model's tokens."""

    turns: int = 0
    words: int = 0
    chars: int = 0
    tokens: dict[str, int] = field(default_factory=dict)

    def tokens_per_word(self, model: str) -> float | None:
        return self.tokens.get(model, 0) / self.words if self.words else None

    def chars_per_token(self, model: str) -> float | None:
        tokens = self.tokens.get(model, 0)
        return self.chars / tokens if tokens else None


@dataclass(frozen=True)
class SplitWord:
    """A word split badly: how often it was seen, and each model's tokens and pieces."""

    word: str
    count: int
    tokens: dict[str, int]
    pieces: dict[str, list[str]]


@dataclass
class LabReport:
    """Everything ``epistemic tokenize --corpus`` shows."""

    log: str
    min_count: int = 2  # the worst-split words were seen at least this often
    turns_read: int = 0
    turns: int = 0  # selected (after the language filter)
    seconds: float = 0.0
    models: list[ModelResult] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (model, why)
    languages: dict[str, LanguageRow] = field(default_factory=dict)
    worst: dict[str, list[SplitWord]] = field(default_factory=dict)


class _Counter:
    """One model's counting: the chunk cache, the choice of method, the sample check.

    Used by the lab's one thread; not shared.
    """

    def __init__(self, vocab: Vocabulary, result: ModelResult) -> None:
        self.vocab, self.result = vocab, result
        self.cache: dict[str, int] = {}
        self.calibrated = False
        self.sample_exact = self.sample_chunks = 0

    def count(self, texts: list[str], chunks: list[list[str]], sample: list[int]) -> list[int]:
        """Tokens of each text; ``sample`` indexes the turns also counted whole for the check."""
        started = time.perf_counter()
        if not self.calibrated:
            self._calibrate(texts[:CALIBRATION_TURNS], chunks[:CALIBRATION_TURNS])
        if self.result.method == "whole turns":
            counts = self._whole(texts)
            sums = self._chunk_sums([chunks[i] for i in sample])
        else:
            counts = self._chunk_sums(chunks)
            sums = [counts[i] for i in sample]
        if sample:
            exact = self._whole([texts[i] for i in sample])
            self.sample_exact += sum(exact)
            self.sample_chunks += sum(sums)
            self.result.deviation = abs(self.sample_chunks - self.sample_exact) / max(1, self.sample_exact)
        self.result.seconds += time.perf_counter() - started
        return counts

    def _calibrate(self, texts: list[str], chunks: list[list[str]]) -> None:
        self.calibrated = True
        exact = sum(self._whole(texts))
        estimate = sum(self._chunk_sums(chunks))
        if exact and abs(estimate - exact) / exact > MAX_DEVIATION:
            self.result.method = "whole turns"

    def _chunk_sums(self, chunks: list[list[str]]) -> list[int]:
        """Each text's tokens as the sum of its chunks'; the chunks not seen before are tokenized in one batch."""
        cache = self.cache
        missing = list({c for text in chunks for c in text if c not in cache})
        if missing:
            cache.update(zip(missing, self.vocab.count_batch(missing), strict=True))
        get = cache.__getitem__
        return [sum(map(get, text)) for text in chunks]

    def _whole(self, texts: Sequence[str]) -> list[int]:
        """Whole-text counts, each distinct text of the batch tokenized once (nothing kept after it)."""
        distinct = list(dict.fromkeys(texts))
        counts = dict(zip(distinct, self.vocab.count_batch(distinct), strict=True))
        return [counts[t] for t in texts]


def measure(log_path: Path, sources: Sequence[TokenizerSource], filters: CorpusFilters | None = None, *,
            min_count: int = 2, top: int = 15, progress: Progress | None = None,
            cancel: threading.Event | None = None) -> LabReport:
    """Measure every source's tokenizer on the selected turns of the log at ``log_path``.

    UserError (one line) when the log cannot be read, nothing is selected or no tokenizer loads; a
    model that cannot be loaded is listed in ``report.skipped`` and the others are measured.
    """
    started = time.perf_counter()
    filters = filters or CorpusFilters()
    report = LabReport(str(log_path), min_count)
    with read_snapshot(log_path) as (conn, _identity):
        total = count_turns(conn, filters)
        if total == 0:
            raise UserError(f"{log_path}: no logged turns match the filters", exit_code=2)
        counters = _load(sources, report)
        try:
            words = _read(conn, filters, total, report, counters, progress, cancel)
            if report.turns == 0:
                raise UserError(f"{log_path}: no logged turns in the language(s) asked for "
                                f"({', '.join(filters.languages)})", exit_code=2)
            report.worst = {lang: _worst(seen, counters, min_count, top) for lang, seen in words.items()}
        finally:
            for counter in counters:
                counter.vocab.close()
    report.seconds = time.perf_counter() - started
    return report


def _read(conn: sqlite3.Connection, filters: CorpusFilters, total: int, report: LabReport,
          counters: list[_Counter], progress: Progress | None,
          cancel: threading.Event | None) -> dict[str, Counter[str]]:
    """Stream the selected turns into ``report``; the words seen, per language."""
    words: dict[str, Counter[str]] = {}
    stride = max(1, total // SAMPLE_TURNS)
    for batch in stream_turns(conn, filters):
        if cancel is not None and cancel.is_set():
            raise LabCancelled("tokenizer lab cancelled")
        _take(batch, report, counters, words, stride)
        if progress is not None:
            progress(report.turns_read, total)
    return words


def _load(sources: Sequence[TokenizerSource], report: LabReport) -> list[_Counter]:
    counters = []
    for source in sources:
        began = time.perf_counter()
        try:
            vocab = load_vocabulary(source)
        except UserError as exc:
            report.skipped.append((source.name, str(exc)))
            continue
        result = ModelResult(source.name, source.kind, str(source.path), seconds=time.perf_counter() - began)
        report.models.append(result)
        counters.append(_Counter(vocab, result))
    if not counters:
        why = "; ".join(f"{name}: {reason}" for name, reason in report.skipped) or "none found"
        raise UserError(f"no tokenizer could be loaded ({why})", exit_code=3)
    return counters


def _take(batch: list[CorpusTurn | None], report: LabReport, counters: list[_Counter],
          words: dict[str, Counter[str]], stride: int) -> None:
    """Count one batch of turns into the report's rows and the per-language word counts."""
    first = report.turns_read
    report.turns_read += len(batch)
    turns: list[CorpusTurn] = []
    sample: list[int] = []
    for i, turn in enumerate(batch):
        if turn is not None:
            if (first + i) % stride == 0:
                sample.append(len(turns))
            turns.append(turn)
    if not turns:
        return
    report.turns += len(turns)
    texts = [t.text for t in turns]
    chunks = [CHUNK.findall(text) for text in texts]
    per_model = [counter.count(texts, chunks, sample) for counter in counters]
    for n, turn in enumerate(turns):
        row = report.languages.get(turn.language)
        if row is None:
            row = report.languages[turn.language] = LanguageRow(tokens={c.result.name: 0 for c in counters})
        found = WORD.findall(turn.text.lower())
        row.turns += 1
        row.words += len(found)
        row.chars += len(turn.text)
        words.setdefault(turn.language, Counter()).update(found)
        for counter, counts in zip(counters, per_model, strict=True):
            row.tokens[counter.result.name] += counts[n]


def _worst(seen: Counter[str], counters: list[_Counter], min_count: int, top: int) -> list[SplitWord]:
    """The ``top`` words (seen >= ``min_count`` times) with the most tokens in any model."""
    candidates = [w for w, n in seen.most_common(MAX_CANDIDATES) if n >= min_count]
    if not candidates or top <= 0:
        return []
    counts: dict[str, list[int]] = {}
    for counter in counters:
        began = time.perf_counter()
        counts[counter.result.name] = counter.vocab.count_batch(candidates)
        counter.result.seconds += time.perf_counter() - began
    ranked = sorted(range(len(candidates)), key=lambda i: (
        -max(c[i] for c in counts.values()), len(candidates[i]), -seen[candidates[i]], candidates[i]))
    out = []
    for i in ranked[:top]:
        word = candidates[i]
        out.append(SplitWord(word, seen[word], {name: c[i] for name, c in counts.items()},
                             {c.result.name: c.vocab.pieces(word) for c in counters}))
    return out
