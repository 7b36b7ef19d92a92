"""The training jobs screen (Ctrl+J): every ``epistemic train`` job's progress, and starting one.

Training runs in its own process (``epistemic train sft``), which rewrites
``models/adapters/NAME/progress.json`` at each step (:mod:`agent.train.jobs`). This screen reads
those small files in a thread worker on a timer (never on the event loop) and draws a progress
bar per job with its step, loss, tokens/s and ETA. ``n`` starts ``train sft`` on a dataset folder
as a separate process; a start that fails shows its one-line reason as a notice.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, ProgressBar, Static

from agent.train.jobs import JobStatus, format_eta, list_jobs

POLL_S = 1.0


class JobStarter(Protocol):
    """Starts ``train sft`` as its own process (called in a worker thread); the process to wait on."""

    def __call__(self, dataset: Path, name: str) -> subprocess.Popen[bytes]:
        ...


def process_starter(config_file: Path | None, adapters_dir: Path) -> JobStarter:
    """``python -m agent [--config FILE] train sft --dataset D --out NAME`` in its own session (it
    outlives the TUI and ignores its Ctrl-C); output goes to ``adapters_dir/NAME.train.log``."""

    def start(dataset: Path, name: str) -> subprocess.Popen[bytes]:
        adapters_dir.mkdir(parents=True, exist_ok=True)
        config = ["--config", str(config_file)] if config_file else []
        with (adapters_dir / f"{name}.train.log").open("wb") as log:
            return subprocess.Popen([sys.executable, "-m", "agent", *config, "train", "sft", "--dataset", str(dataset),
                                     "--out", name], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    return start


def job_line(job: JobStatus, state: str) -> str:
    """The text beside a job's bar."""
    parts = [f"{job.name} ({job.method})", state]
    if job.total:
        parts.append(f"step {job.step}/{job.total}")
    if job.loss is not None:
        parts.append(f"loss {job.loss:.4f}")
    if state == "running":
        if job.tokens_per_second:
            parts.append(f"{job.tokens_per_second:.0f} tok/s · ETA {format_eta(job.eta_seconds)}")
        elif job.message:
            parts.append(job.message)
    elif job.message:
        parts.append(job.message)
    return " · ".join(parts)


class JobRow(Vertical):
    """One job: its line of text above its progress bar (drawn on the UI thread)."""

    DEFAULT_CSS = """
    JobRow { height: auto; padding: 0 1; margin-bottom: 1; }
    JobRow > Static { height: auto; }
    """

    def __init__(self, job: JobStatus, state: str) -> None:
        super().__init__()
        self.label = Static(job_line(job, state), classes="job-line")
        self.bar = ProgressBar(total=max(1, job.total), show_eta=False)
        self.bar.progress = job.step

    def compose(self) -> ComposeResult:
        yield self.label
        yield self.bar

    def show(self, job: JobStatus, state: str) -> None:
        self.label.update(job_line(job, state))
        self.bar.update(total=max(1, job.total), progress=job.step)


class StartJobDialog(ModalScreen[tuple[Path, str] | None]):
    """Asks for the dataset folder and the adapter name; dismisses with both, or None (UI thread only)."""

    DEFAULT_CSS = """
    StartJobDialog { align: center middle; }
    StartJobDialog > Vertical { width: 80; height: auto; border: thick $primary; background: $surface; padding: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Start `epistemic train sft` (defaults from [train]):")
            yield Input(placeholder="dataset folder (from `epistemic dataset export`)", id="dataset")
            yield Input(placeholder="adapter name, e.g. stoic", id="name")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        dataset = self.query_one("#dataset", Input).value.strip()
        name = self.query_one("#name", Input).value.strip()
        if event.input.id == "dataset" and not name:
            self.query_one("#name", Input).focus()
            return
        if not dataset or not name:
            self.notify("Give a dataset folder and an adapter name.", severity="warning")
            return
        self.dismiss((Path(dataset).expanduser(), name))


class TrainJobsScreen(Screen[None]):
    """A progress bar per training job, newest first, refreshed every ``poll_s`` seconds.

    The UI thread only draws: ``_read`` (thread worker, one at a time) lists the status files
    and asks whether each running job's process is alive, then posts :class:`Listed`;
    ``_start`` (thread worker) launches a job and waits for its process, posting
    :class:`StartFailed` when it ends with an error. No state is shared between threads but
    the messages.
    """

    DEFAULT_CSS = """
    TrainJobsScreen #jobs-title { height: 1; background: $panel; padding: 0 1; text-style: bold; }
    TrainJobsScreen #jobs { height: 1fr; }
    TrainJobsScreen #jobs-empty { padding: 1 2; color: $text-muted; }
    """
    BINDINGS = [Binding("escape,ctrl+j", "dismiss(None)", "Back"), Binding("n", "new_job", "New SFT job"),
                Binding("r", "refresh_jobs", "Refresh")]

    @dataclass
    class Listed(Message):
        """The jobs as read now, each with its shown state (running / stopped / finished ...)."""

        jobs: list[tuple[JobStatus, str]]

    @dataclass
    class StartFailed(Message):
        """A job started from this screen could not start or ended with an error."""

        name: str
        reason: str

    def __init__(self, adapters_dir: Path, starter: JobStarter | None = None, *, poll_s: float = POLL_S) -> None:
        super().__init__()
        self.adapters_dir = adapters_dir
        self.starter = starter
        self.poll_s = poll_s
        self.rows: dict[str, JobRow] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"Training jobs in {self.adapters_dir}", id="jobs-title")
        with VerticalScroll(id="jobs"):
            yield Static("No training job yet: press n to start one, or run `epistemic train sft`.", id="jobs-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh_jobs()
        self.set_interval(self.poll_s, self.action_refresh_jobs)

    def action_refresh_jobs(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="train-jobs-read", exit_on_error=False)
    def _read(self) -> None:
        jobs = list_jobs(self.adapters_dir)
        self.post_message(self.Listed([(job, job.shown_state()) for job in jobs]))

    def on_train_jobs_screen_listed(self, message: Listed) -> None:
        scroll = self.query_one("#jobs", VerticalScroll)
        self.query_one("#jobs-empty").display = not message.jobs
        for job, state in message.jobs:
            row = self.rows.get(job.name)
            if row is None:
                row = self.rows[job.name] = JobRow(job, state)
                scroll.mount(row)
            else:
                row.show(job, state)
        running = sum(1 for _, state in message.jobs if state == "running")
        self.query_one("#jobs-title", Static).update(
            f"Training jobs in {self.adapters_dir}: {len(message.jobs)} ({running} running)")

    def action_new_job(self) -> None:
        if self.starter is None:
            self.notify("Starting jobs is not available here; run `epistemic train sft`.", severity="warning")
            return
        self.app.push_screen(StartJobDialog(), self._start_chosen)

    def _start_chosen(self, choice: tuple[Path, str] | None) -> None:
        if choice is not None:
            self._start(*choice)
            self.notify(f"Starting train sft → {choice[1]} …", timeout=3)

    @work(thread=True, group="train-jobs-start", exit_on_error=False)
    def _start(self, dataset: Path, name: str) -> None:
        assert self.starter is not None
        try:
            process = self.starter(dataset, name)
        except OSError as exc:
            self.post_message(self.StartFailed(name, f"could not start: {exc}"))
            return
        if process.wait() != 0:
            self.post_message(self.StartFailed(name, self._last_line(name) or f"exit code {process.returncode}"))

    def _last_line(self, name: str) -> str:
        try:
            lines = (self.adapters_dir / f"{name}.train.log").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return next((line.strip() for line in reversed(lines) if line.strip()), "")

    def on_train_jobs_screen_start_failed(self, message: StartFailed) -> None:
        self.notify(f"{message.name}: {message.reason}", title="Training job", severity="error", timeout=10)
