"""The conversation screen: status bar, transcript, entropy sparkline, voice strip, input.

It draws; the app decides. Engine events arrive in batches (:meth:`ConversationScreen.apply`),
so one refresh covers many tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Input, ProgressBar, Static

from agent.events import ContextTrimmed, Notice, ReplyToken, TurnFinished, TurnStarted
from agent.llm.base import LoadProgress, ModelInfo
from agent.records import StoredTurn
from agent.voice.events import UserUtterance
from tui.bridge import Stamped
from tui.stats import TurnStats
from tui.widgets.citations import refs_from_log, refs_from_retrieval
from tui.widgets.entropy import EntropyView
from tui.widgets.sampler_panel import SamplerPanel
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status import StatusBar
from tui.widgets.transcript import AssistantMessage, TranscriptView
from tui.widgets.voice_messages import SpokenMessage
from tui.widgets.voice_strip import VoiceStrip

SPARKLINE_INTERVAL_S = 0.25  # the sparkline is the costliest widget to draw; 4 Hz is plenty
NOTICE_SEVERITY: dict[str, SeverityLevel] = {"info": "information", "warning": "warning", "error": "error"}


def finished_note(event: TurnFinished) -> str:
    """``turn 12 · 87 tokens · 140.2 tok/s · eos`` (plus *interrupted*)."""
    t = event.result.timings
    bits = [f"turn {event.turn_id}" if event.logged else "not logged", f"{t.completion_tokens} tokens"]
    if t.tokens_per_second:
        bits.append(f"{t.tokens_per_second:.1f} tok/s")
    bits.append(event.result.stop_reason)
    if event.interrupted:
        bits.append("interrupted")
    return " · ".join(bits)


class ConversationScreen(Screen[None]):
    """Where the user reads and steers the conversation."""

    BINDINGS = [
        Binding("escape", "app.stop_reply", "Stop"),
        Binding("ctrl+r", "app.regenerate", "Regen"),
        Binding("ctrl+n", "app.new_conversation", "New"),
        Binding("f1", "app.help", "Help"),
        Binding("f2", "app.pick_persona", "Persona"),
        Binding("f3", "toggle_sampler", "Sampler"),
        Binding("f4", "app.inspect_tokens", "Tokens"),
        Binding("ctrl+e", "app.entropy_view", "Entropy view", show=False, priority=True),  # over Input's ctrl+e (End does that)
        Binding("f5", "app.history", "History"),
        Binding("f6", "toggle_entropy", "Entropy", show=False),
        Binding("f7", "app.toggle_voice", "Voice", show=False),
        Binding("f8", "app.push_to_talk", "Talk", show=False),
        Binding("f9", "app.toggle_voice_mode", "Voice mode", show=False),
        Binding("f10", "app.toggle_barge_in", "Barge-in", show=False),
        Binding("f11", "app.harvest", "Harvest", show=False),
        Binding("ctrl+k", "toggle_sources", "Sources", show=False, priority=True),  # over Input's ctrl+k (delete to end)
        Binding("ctrl+t", "app.tokenizer_lab", "Tokenizer lab", show=False),
        Binding("ctrl+j", "app.train_jobs", "Training jobs", show=False, priority=True),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stats = TurnStats()
        self.reply: AssistantMessage | None = None
        self._sparkline_drawn = 0.0

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="body"):
            yield TranscriptView(id="transcript")
            yield SamplerPanel(id="sampler")
            yield SourcesPanel(id="sources")
        with Horizontal(id="loading"):
            yield Static("loading model", id="loading-label")
            yield ProgressBar(total=1.0, show_eta=False, id="loading-bar")
        yield EntropyView(id="entropy")
        yield VoiceStrip(id="voice")
        yield Input(placeholder="Message · Enter sends · Esc stops · F1 help", id="prompt")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#prompt", Input).focus()

    # -- model loading ------------------------------------------------------------------------

    def show_progress(self, progress: LoadProgress) -> None:
        self.query_one("#loading-bar", ProgressBar).update(progress=progress.fraction)
        self.query_one("#loading-label", Static).update(progress.message[:30] or "loading model")

    def show_model(self, info: ModelInfo, persona: str) -> None:
        self.query_one("#loading").display = False
        status = self.query_one(StatusBar)
        status.backend, status.model, status.persona = info.backend, info.model_id, persona
        self.stats = TurnStats(context_size=info.context_size)
        status.show_stats(self.stats)

    def show_load_failed(self, message: str) -> None:
        self.query_one("#loading-label", Static).update("model not loaded")
        self.query_one(StatusBar).model = "no model"
        self.query_one(TranscriptView).mount(Static(f"The model could not be loaded:\n{message}", classes="placeholder"))

    # -- turns ----------------------------------------------------------------------------------

    def show_user(self, text: str, *, spoken: bool = False) -> None:
        transcript = self.query_one(TranscriptView)
        if spoken:
            transcript.mount(SpokenMessage(text))
            transcript.anchor()
        else:
            transcript.add_user(text)

    def show_turns(self, turns: Sequence[StoredTurn]) -> None:
        """Replace the transcript with logged turns (a conversation being continued)."""
        transcript = self.query_one(TranscriptView)
        transcript.clear()
        for turn in turns:
            if turn.role == "user":
                self.show_user(turn.text, spoken=turn.data.get("source") == "voice")
            else:
                note = f"turn {turn.id}" + (" · interrupted" if turn.interrupted else "")
                transcript.add_assistant(turn.text, turn.reasoning, note, refs_from_log(turn.data))
        self.reply = None

    def clear(self) -> None:
        self.query_one(TranscriptView).clear()
        self.reply = None
        self.query_one(EntropyView).show([])

    def supersede_last_reply(self) -> None:
        """Before a regenerate: the old reply stays visible, marked as replaced (it stays logged)."""
        last = self.query_one(TranscriptView).last_reply()
        if last is not None:
            last.add_class("-superseded")

    def apply(self, batch: Sequence[Stamped]) -> list[TurnFinished]:
        """Draw a batch of engine events; returns the turns that finished in it."""
        finished: list[TurnFinished] = []
        tokens = False
        for stamped in batch:
            event = stamped.event
            if isinstance(event, ReplyToken):
                self._token(event, stamped.at)
                tokens = True
            elif isinstance(event, TurnStarted):
                self._started(event, stamped.at)
            elif isinstance(event, TurnFinished):
                self._finished(event)
                finished.append(event)
            elif isinstance(event, UserUtterance):  # a spoken turn, in order with the reply events
                self.show_user(event.text, spoken=True)
            elif isinstance(event, Notice):
                self.notify(event.message, severity=NOTICE_SEVERITY[event.level], timeout=3 if event.level == "info" else 8)
            elif isinstance(event, ContextTrimmed):
                self.notify(f"{len(event.dropped_turn_ids)} old turns left out to fit the context", severity="warning")
        if tokens and self.reply is not None:
            self.reply.redraw()
            self._show_stats()
        return finished

    def _started(self, event: TurnStarted, at: float) -> None:
        self.stats = TurnStats.started(event, at)
        self.reply = self.query_one(TranscriptView).add_assistant()
        self.query_one(StatusBar).persona = event.persona
        self._show_stats()

    def _token(self, event: ReplyToken, at: float) -> None:
        self.stats.token(at, event.step.index, event.step.entropy)
        if self.reply is not None and event.text:
            self.reply.append(event.channel, event.text)

    def _finished(self, event: TurnFinished) -> None:
        self.stats.finished(event)
        if self.reply is not None:
            self.reply.finish(event.turn_id, finished_note(event), event.interrupted, refs_from_retrieval(event.retrieval))
        self.reply = None
        self._show_stats(final=True)

    def _show_stats(self, *, final: bool = False) -> None:
        self.query_one(StatusBar).show_stats(self.stats)
        now = time.monotonic()
        if final or now - self._sparkline_drawn >= SPARKLINE_INTERVAL_S:
            self._sparkline_drawn = now
            self.query_one(EntropyView).show(self.stats.entropies, lower_bound=self.stats.entropy_lower_bound)

    # -- panels ---------------------------------------------------------------------------------

    def action_toggle_sampler(self) -> None:
        panel = self.query_one(SamplerPanel)
        panel.toggle_class("-visible")
        if panel.has_class("-visible"):
            self.app.refresh_sampler_panel()  # type: ignore[attr-defined]
            panel.query("Input").first().focus()
        else:
            self.query_one("#prompt", Input).focus()

    def action_toggle_sources(self) -> None:
        self.query_one(SourcesPanel).toggle_class("-visible")

    def action_toggle_entropy(self) -> None:
        self.query_one(EntropyView).toggle_class("-hidden")
