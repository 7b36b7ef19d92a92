"""The keys that open the other screens: help, token inspector, tokenizer lab, entropy view, history,
harvest and training jobs.

:class:`ScreenActions` is the base of :class:`tui.app.EpistemicApp` (which owns the runtime and the
engine's worker); it runs on the UI thread only and holds no lock: each screen it opens reads its
data (the log, status files, tokenizers) in its own worker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App

from agent.llm.base import entropy_is_lower_bound
from tui.screens.entropy_view import EntropyViewScreen, last_reply_id
from tui.screens.harvest import HarvestScreen
from tui.screens.help import HelpScreen
from tui.screens.history import HistoryScreen
from tui.screens.tokens import TokenInspectorScreen

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig
    from agent.events import TurnFinished
    from agent.runtime import Runtime


class ScreenActions(App[None]):
    """Opening the other screens (UI thread only; see the module docstring)."""

    config: LoadedConfig
    runtime: Runtime | None
    last_finished: TurnFinished | None
    load_error: str | None

    def _require_runtime(self) -> Runtime | None:
        if self.runtime is None:
            self.notify(self.load_error or "The model is still loading.", severity="warning")
        return self.runtime

    def _continue_conversation(self, conversation_id: int | None) -> None:
        """Open a logged conversation chosen in the history screen (the app runs it as a job)."""
        raise NotImplementedError

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_inspect_tokens(self) -> None:
        tokenize = self.runtime.model.tokenize_pieces if self.runtime is not None else None
        last = self.last_finished
        steps = last.result.steps if last is not None else ()
        lower = last is not None and entropy_is_lower_bound(last.result.extra)
        routing, moe = (last.result.moe_routing, last.result.extra.get("moe_routing")) if last is not None else (None, None)
        self.push_screen(TokenInspectorScreen(steps, tokenize, lower_bound=lower, routing=routing, moe_status=moe))

    def action_tokenizer_lab(self) -> None:
        """Ctrl+T: every tokenizer measured on the logged dialogues (computed in the screen's worker)."""
        from tui.screens.tokenizer_lab import TokenizerLabScreen, config_runner

        self.push_screen(TokenizerLabScreen(config_runner(self.config)))

    def action_entropy_view(self) -> None:
        """Ctrl+E: the last logged reply's entropy curves, full screen (read in the screen's worker)."""
        runtime = self._require_runtime()
        if runtime is not None and runtime.log is None:
            self.notify("The dialogue log is off ([log] enabled = false).", severity="warning")
        elif runtime is not None and runtime.log is not None:
            self.push_screen(EntropyViewScreen(runtime.log, last_reply_id(runtime.engine.history)))

    def action_history(self) -> None:
        runtime = self._require_runtime()
        if runtime is None:
            return
        if runtime.log is None:
            self.notify("The dialogue log is off ([log] enabled = false).", severity="warning")
            return
        self.push_screen(HistoryScreen(runtime.log), self._continue_conversation)

    def action_harvest(self) -> None:
        """F11: curate the log. Uses the engine's log once loaded; before that, opens the file."""
        if self.runtime is not None and self.runtime.log is None:
            self.notify("The dialogue log is off ([log] enabled = false).", severity="warning")
            return
        if self.runtime is not None:
            self.push_screen(HarvestScreen(self.runtime.log))
        else:
            self.push_screen(HarvestScreen(path=self.config.log_path()))

    def action_train_jobs(self) -> None:
        """Ctrl+J: training jobs' progress (their status files read in the screen's worker); n starts one."""
        from agent.models import models_dir
        from tui.screens.train_jobs import TrainJobsScreen, process_starter

        adapters = models_dir(self.config) / "adapters"
        self.push_screen(TrainJobsScreen(adapters, process_starter(self.config.file, adapters)))
