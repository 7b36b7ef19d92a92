"""The training jobs screen with the pilot: Ctrl+J from the conversation shows a progress bar per job
from the status files the training process writes (same writer), follows a running job, reads the
files only in a worker thread, and a job started with n that fails says why in a notice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, ProgressBar

from agent.models import models_dir
from agent.train import jobs
from agent.train.jobs import StatusReporter, read_status
from agent.train.loop import StepProgress
from tests.tui.conftest import SIZE, wait_until
from tui.app import EpistemicApp
from tui.screens import train_jobs
from tui.screens.train_jobs import JobRow, TrainJobsScreen


class Quiet:
    """The inner Reporter of the status writer (the CLI's progress line in a real run)."""

    def message(self, text: str) -> None:
        pass

    def step(self, progress: StepProgress) -> None:
        pass


def rows(screen: TrainJobsScreen) -> dict[str, tuple[str, float, float | None]]:
    out = {}
    for name, row in screen.rows.items():
        bar = row.query_one(ProgressBar)
        out[name] = (str(row.label.render()), bar.progress, bar.total)
    return out


async def test_ctrl_j_shows_each_job_and_follows_a_running_one(app: EpistemicApp, notices: Any,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    adapters = models_dir(app.config) / "adapters"
    reader_threads: set[str] = set()
    real_list = jobs.list_jobs

    def watched(folder: Path) -> list[jobs.JobStatus]:
        reader_threads.add(threading.current_thread().name)
        return real_list(folder)

    monkeypatch.setattr(train_jobs, "list_jobs", watched)
    done = StatusReporter(adapters / "done", "done", "sft", Quiet())
    done.step(StepProgress(20, 20, 0.25, 0.0, 900.0, 0.0))
    done.finish("finished", "adapter in models/adapters/done")
    running = StatusReporter(adapters / "live", "live", "dpo", Quiet())
    running.step(StepProgress(3, 10, 0.61, 1e-4, 420.0, 75.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+j")
        await wait_until(pilot, lambda: isinstance(app.screen, TrainJobsScreen))
        screen = app.screen
        assert isinstance(screen, TrainJobsScreen)
        await wait_until(pilot, lambda: set(screen.rows) == {"done", "live"}, 30)
        shown = rows(screen)
        assert shown["live"] == ("live (dpo) · running · step 3/10 · loss 0.6100 · 420 tok/s · ETA 1:15", 3, 10)
        assert shown["done"] == ("done (sft) · finished · step 20/20 · loss 0.2500 · adapter in models/adapters/done", 20, 20)
        assert [type(w) for w in screen.query(JobRow)] == [JobRow, JobRow]

        running.step(StepProgress(7, 10, 0.4, 1e-4, 430.0, 30.0))  # the job moves on
        await wait_until(pilot, lambda: rows(screen)["live"][1] == 7, 30)
        assert "step 7/10 · loss 0.4000 · 430 tok/s · ETA 0:30" in rows(screen)["live"][0]
        running.finish("interrupted", "interrupted at step 7/10; checkpoint saved")
        await wait_until(pilot, lambda: "interrupted at step 7/10" in rows(screen)["live"][0], 30)
        assert threading.main_thread().name not in reader_threads and reader_threads

        await pilot.press("n")  # a job on a dataset folder that does not exist: its own line, as a notice
        await wait_until(pilot, lambda: isinstance(app.screen, train_jobs.StartJobDialog))
        app.screen.query_one("#dataset", Input).value = str(adapters.parent / "no-such-dataset")
        app.screen.query_one("#name", Input).value = "fresh"
        app.screen.query_one("#name", Input).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("fresh:" in m for _, m in notices), 120)
        [(severity, line)] = [(s, m) for s, m in notices if "fresh:" in m]
        assert severity == "error" and "dataset folder not found" in line and line.startswith("fresh: epistemic: ")
        await wait_until(pilot, lambda: "fresh" in screen.rows, 30)
        assert "fresh (sft) · failed · " in rows(screen)["fresh"][0]
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, TrainJobsScreen))
    status = read_status(adapters / "fresh" / jobs.STATUS_FILE)
    assert status is not None and status.state == "failed"
