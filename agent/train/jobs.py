"""Training jobs seen from outside their process: ``models/adapters/NAME/progress.json``.

The training process rewrites the file atomically (a temporary file renamed over it) at each
stage and optimizer step: name, method, state (running / finished / interrupted / failed), pid,
step of total, loss, tokens/s, ETA and the latest message. ``epistemic train status`` and the
TUI's training screen read these files; a "running" job whose process is gone reads as "stopped".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.train.loop import StepProgress
    from agent.train.run import Reporter, SftJob, TrainOutcome

STATUS_FILE = "progress.json"
STATES = ("running", "finished", "interrupted", "failed")


@dataclass(frozen=True)
class JobStatus:
    """One training job's latest progress, as written to its ``progress.json``."""

    name: str
    method: str  # "sft" | "dpo"
    state: str  # one of STATES
    pid: int
    started: float  # Unix time
    updated: float
    step: int = 0
    total: int = 0
    loss: float | None = None
    tokens_per_second: float = 0.0
    eta_seconds: float = 0.0
    message: str = ""

    @property
    def fraction(self) -> float:
        """Share of the steps done (0 before the first step is known)."""
        return min(1.0, self.step / self.total) if self.total else 0.0

    def shown_state(self, alive: bool | None = None) -> str:
        """The state, with "stopped" for a running job whose process no longer exists."""
        if self.state != "running":
            return self.state
        return "running" if (process_alive(self.pid) if alive is None else alive) else "stopped"

    def summary(self) -> str:
        """One line: state, step/total, loss, tokens/s, ETA (or the last message)."""
        state = self.shown_state()
        parts = [f"{self.name} ({self.method})", state]
        if self.total:
            parts.append(f"step {self.step}/{self.total}")
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if state == "running" and self.tokens_per_second:
            parts.append(f"{self.tokens_per_second:.0f} tok/s  ETA {format_eta(self.eta_seconds)}")
        if self.message and state != "running":
            parts.append(self.message)
        return "  ".join(parts)


def format_eta(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` from an hour)."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def world_size() -> int:
    """Processes of this run under ``accelerate launch`` / torchrun (1 when launched plainly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_main_process() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return os.environ.get("RANK", "0") == "0"


def write_status(folder: Path, status: JobStatus) -> Path:
    """``folder/progress.json`` replaced atomically (a reader never sees half a file)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / STATUS_FILE
    temporary = folder / f".{STATUS_FILE}.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(asdict(status)), encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_status(path: Path) -> JobStatus | None:
    """The status in ``path``; None when it is missing, unreadable or not a status file."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
        fields = {k: data[k] for k in JobStatus.__dataclass_fields__ if k in data}
        status = JobStatus(**fields)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return status if status.state in STATES else None


def list_jobs(adapters_dir: Path) -> list[JobStatus]:
    """Every job under ``adapters_dir`` (``NAME/progress.json``), the most recently updated first."""
    if not adapters_dir.is_dir():
        return []
    found = [read_status(p) for p in sorted(adapters_dir.glob(f"*/{STATUS_FILE}"))]
    return sorted((s for s in found if s is not None), key=lambda s: s.updated, reverse=True)


class StatusReporter:
    """A Reporter that mirrors every message and step into ``progress.json``, then passes it on.

    Called from the training process's main thread (and from TRL's callback on that same thread);
    no lock.
    """

    def __init__(self, folder: Path, name: str, method: str, inner: Reporter) -> None:
        self.folder = folder
        self.inner = inner
        self.main = is_main_process()  # under accelerate only rank 0 writes the file
        now = time.time()
        self.status = JobStatus(name=name, method=method, state="running", pid=os.getpid(), started=now, updated=now)
        self._write()

    def _write(self, **changes: Any) -> None:
        self.status = replace(self.status, updated=time.time(), **changes)
        if self.main:
            write_status(self.folder, self.status)

    def message(self, text: str) -> None:
        self._write(message=text)
        self.inner.message(text)

    def step(self, progress: StepProgress) -> None:
        self._write(step=progress.step, total=progress.total, loss=progress.loss,
                    tokens_per_second=progress.tokens_per_second, eta_seconds=progress.eta_seconds)
        self.inner.step(progress)

    def finish(self, state: str, message: str) -> None:
        """The job ended: finished, interrupted or failed, with its one-line reason."""
        self._write(state=state, message=message, eta_seconds=0.0)


def run_job(job: SftJob, method: str, runner: Callable[[SftJob, Reporter], TrainOutcome], reporter: Reporter) -> TrainOutcome:
    """``runner(job)`` with its progress in ``progress.json`` and its end recorded there.

    Out of memory anywhere in the run (loading, a step, evaluation) becomes one UserError line
    with settings to try; Ctrl-C and errors are recorded as interrupted / failed and re-raised.
    """
    from agent.errors import UserError
    from agent.train.loop import TrainingInterrupted, out_of_memory
    from agent.train.run import check_out_dir

    if method == "sft" and world_size() > 1:
        raise UserError("train sft trains on one device: run it without `accelerate launch` (or with --num_processes 1); "
                        "train dpo runs under accelerate on several GPUs")
    check_out_dir(job)  # before the status file: a refused run leaves an earlier job's file alone
    if job.settings.qlora:
        from agent.train.qlora import check_qlora

        check_qlora()  # no CUDA or no bitsandbytes: one line before any loading or dequantising
    status = StatusReporter(job.out_dir, job.name, method, reporter)
    try:
        outcome = runner(job, status)
    except TrainingInterrupted as exc:
        status.finish("interrupted", str(exc))
        raise
    except KeyboardInterrupt:
        status.finish("interrupted", "interrupted before training started (nothing to resume)")
        raise
    except UserError as exc:
        status.finish("failed", str(exc))
        raise
    except (MemoryError, RuntimeError) as exc:
        error = out_of_memory(exc, job.settings)
        status.finish("failed", str(error) if error else f"{type(exc).__name__}: {exc}")
        if error is None:
            raise
        raise error from None
    except Exception as exc:
        status.finish("failed", f"{type(exc).__name__}: {exc}")
        raise
    status.finish("finished", f"adapter in {outcome.out_dir}")
    return outcome
