"""The tokenizer lab screen (Ctrl+T): every tokenizer's fertility on the logged dialogues, per
language, side by side, and the words split worst with their pieces.

The measurement (:func:`agent.instruments.tokenizer_lab.measure`: reading SQLite, loading
vocabularies, tokenizing) runs in a thread worker; the screen shows a loading indicator and the
worker's progress, and draws the tables when the report arrives. Closing the screen cancels it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from agent.errors import UserError
from agent.instruments.tokenizer_lab import LabCancelled, LabReport, Progress
from agent.instruments.tokenizer_table import language_order, metric_rows, pieces_text

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig


class LabRunner(Protocol):
    """Runs the lab (in the screen's worker thread) and returns its report; UserError when it cannot."""

    def __call__(self, progress: Progress, cancel: threading.Event) -> LabReport:
        ...


def config_runner(config: LoadedConfig, *, min_count: int = 2, top: int = 15) -> LabRunner:
    """The lab on the configured log, with every tokenizer this machine has."""

    def run(progress: Progress, cancel: threading.Event) -> LabReport:
        from agent.instruments.tokenizer_lab import measure
        from agent.instruments.tokenizer_models import find_tokenizers

        sources = find_tokenizers(config)
        if not sources:
            raise UserError("no tokenizer found: install the starter model or put one in the models dir")
        return measure(config.log_path(), sources, min_count=min_count, top=top, progress=progress, cancel=cancel)

    return run


class TokenizerLabScreen(Screen[None]):
    """Fertility per language (a column per model) above the worst-split words (pieces per model).

    The UI thread only draws; ``_measure`` runs in a thread worker (one at a time: ``r`` starts a
    new one) and reports through :class:`Progressed`, :class:`Measured` and :class:`Failed`.
    ``_cancel`` is the running worker's stop flag (an Event: thread-safe, no lock needed).
    """

    DEFAULT_CSS = """
    TokenizerLabScreen #lab-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    TokenizerLabScreen #lab-notes { height: auto; max-height: 4; padding: 0 1; color: $warning; }
    TokenizerLabScreen #lab-body { height: 1fr; }
    TokenizerLabScreen #fertility { height: auto; max-height: 45%; }
    TokenizerLabScreen #worst-title { height: 1; background: $panel; padding: 0 1; }
    TokenizerLabScreen #worst { height: 1fr; }
    """
    BINDINGS = [Binding("escape,ctrl+t", "dismiss(None)", "Back"), Binding("r", "measure", "Measure again")]

    @dataclass
    class Progressed(Message):
        """Turns read so far of the turns selected."""

        done: int
        total: int

    @dataclass
    class Measured(Message):
        """The report is ready."""

        report: LabReport

    @dataclass
    class Failed(Message):
        """The lab could not run (no log, nothing selected, no tokenizer)."""

        reason: str

    def __init__(self, runner: LabRunner) -> None:
        super().__init__()
        self.runner = runner
        self.report: LabReport | None = None
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("Tokenizer lab: reading the dialogue log…", id="lab-title")
        yield Static("", id="lab-notes")
        with Vertical(id="lab-body"):
            yield DataTable(id="fertility", zebra_stripes=True, cursor_type="row")
            yield Static("Words split worst", id="worst-title")
            yield DataTable(id="worst", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.action_measure()

    def on_unmount(self) -> None:
        self._cancel.set()

    def action_measure(self) -> None:
        self._cancel.set()
        self._cancel = threading.Event()
        self.query_one("#lab-body").loading = True
        self.query_one("#lab-title", Static).update("Tokenizer lab: reading the dialogue log…")
        self._measure(self._cancel)

    @work(thread=True, exclusive=True, group="tokenizer-lab", exit_on_error=False)
    def _measure(self, cancel: threading.Event) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(self.Progressed(done, total))

        try:
            report = self.runner(progress, cancel)
        except LabCancelled:
            return
        except UserError as exc:
            self.post_message(self.Failed(str(exc)))
            return
        except Exception as exc:  # a tokenizer library failure must not take the UI down
            self.post_message(self.Failed(f"{type(exc).__name__}: {exc}"))
            return
        if not cancel.is_set():
            self.post_message(self.Measured(report))

    def on_tokenizer_lab_screen_progressed(self, message: Progressed) -> None:
        self.query_one("#lab-title", Static).update(f"Tokenizer lab: {message.done}/{message.total} turns read…")

    def on_tokenizer_lab_screen_failed(self, message: Failed) -> None:
        self.query_one("#lab-body").loading = False
        self.query_one("#lab-title", Static).update("Tokenizer lab: nothing measured")
        self.query_one("#lab-notes", Static).update(message.reason)
        self.notify(message.reason, title="Tokenizer lab", severity="error", timeout=10)

    def on_tokenizer_lab_screen_measured(self, message: Measured) -> None:
        report = self.report = message.report
        self.query_one("#lab-body").loading = False
        names = ", ".join(m.name for m in report.models)
        self.query_one("#lab-title", Static).update(
            f"Tokenizer lab: {report.turns} turns in {report.seconds:.1f}s · {names}")
        notes = [f"skipped {name}: {why}" for name, why in report.skipped]
        notes += [f"{m.name}: measured on whole turns (its chunks differ by {m.deviation:.1%})"
                  for m in report.models if m.method != "chunks"]
        self.query_one("#lab-notes", Static).update("\n".join(notes))
        self._draw(report)

    def _draw(self, report: LabReport) -> None:
        names = [m.name for m in report.models]
        fertility = self.query_one("#fertility", DataTable)
        fertility.clear(columns=True)
        fertility.add_columns("language", "turns", "words", "metric", *names)
        for lang in language_order(report):
            row = report.languages[lang]
            for i, (metric, cells) in enumerate(metric_rows(report, row)):
                head = (lang, str(row.turns), str(row.words)) if i == 0 else ("", "", "")
                fertility.add_row(*head, metric, *cells)
        self.query_one("#worst-title", Static).update(
            f"Words split worst: the most tokens in any model, among words seen at least {report.min_count} times")
        worst = self.query_one("#worst", DataTable)
        worst.clear(columns=True)
        worst.add_columns("language", "word", "seen", *(f"{n}: tokens, pieces" for n in names))
        for lang in language_order(report):
            for word in report.worst.get(lang, []):
                cells = [f"{word.tokens[n]:>3}  {pieces_text(word.pieces[n])}" for n in names]
                worst.add_row(lang, word.word, str(word.count), *cells)
