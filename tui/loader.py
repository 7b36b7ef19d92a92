"""Loads the runtime (model, log, engine) off the UI thread and reports progress as messages."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from textual.message import Message

from agent.errors import UserError
from agent.llm.base import LoadProgress

if TYPE_CHECKING:
    from textual.app import App

    from agent.config_load import LoadedConfig
    from agent.runtime import Runtime

logger = logging.getLogger(__name__)


class RuntimeLoader:
    """Builds an :class:`agent.runtime.Runtime`; call :meth:`load` in a thread worker."""

    class Progressed(Message):
        """The model load moved on."""

        def __init__(self, progress: LoadProgress) -> None:
            super().__init__()
            self.progress = progress

    class Loaded(Message):
        """The runtime is ready."""

        def __init__(self, runtime: Runtime) -> None:
            super().__init__()
            self.runtime = runtime

    class Failed(Message):
        """The runtime could not be built; ``reason`` is one line for the user."""

        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(self, app: App, config: LoadedConfig, persona: str | None) -> None:
        self.app = app
        self.config = config
        self.persona = persona

    def _progress(self, progress: LoadProgress) -> None:
        self.app.post_message(self.Progressed(progress))

    def load(self) -> None:
        """Build the runtime and post Loaded or Failed (never raises)."""
        from agent.runtime import build_runtime

        try:
            runtime = build_runtime(ui_config(self.config), persona=self.persona, progress=self._progress)
        except UserError as exc:
            self.app.post_message(self.Failed(str(exc)))
        except Exception as exc:  # a bug or a broken model file: report it, keep the UI alive
            logger.exception("loading the runtime failed")
            self.app.post_message(self.Failed(f"{type(exc).__name__}: {exc}"))
        else:
            self.app.post_message(self.Loaded(runtime))


def ui_config(config: LoadedConfig) -> LoadedConfig:
    """Under the UI, ``[llm] threads = 0`` (automatic) means all cores but one.

    llama.cpp's threads wait for each other at every layer, so a drawing thread that takes a
    core from one of them stalls them all: on 2 cores, 1 compute thread plus the UI decodes faster
    (bench/bench_tui.py) than 2 compute threads plus the UI. An explicit thread count is kept.
    """
    if config.settings.llm.threads != 0:
        return config
    cores = os.cpu_count() or 1
    return config.with_values("llm", "automatic: all cores but one under the UI", threads=max(1, cores - 1))
