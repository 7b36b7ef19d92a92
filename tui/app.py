"""The Textual app: owns the runtime and the engine's worker; screens only draw.

Build it with :func:`make_app` (the CLI and the tests share it). Every engine job (a reply, a
regenerate, a persona or conversation switch) runs in a thread worker, one at a time; its events
reach the UI through :class:`tui.bridge.TurnBridge`, drained on a ``FLUSH_HZ`` timer while the
job runs. Whether a turn may start is decided by one owner, the engine's turn gate: the app
refuses (with a notice) while the gate is held, by its own job or by a spoken turn of the voice
loop, and a job that loses the race to the gate ends with the engine's TurnInProgress notice.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import Input

from agent.errors import UserError
from agent.events import EventSink, TurnFinished
from tui.app_screens import ScreenActions
from tui.bridge import TurnBridge, TurnEnded
from tui.commands import PersonaCommands
from tui.knowledge_watch import KnowledgeWatch
from tui.loader import RuntimeLoader
from tui.screens.conversation import ConversationScreen
from tui.screens.persona import PersonaPicker
from tui.voice_bridge import VoiceController
from tui.widgets.sampler_panel import SamplerPanel
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status import StatusBar
from tui.widgets.voice_strip import VoiceStrip

if TYPE_CHECKING:
    import threading

    from agent.config_load import LoadedConfig
    from agent.records import StoredTurn
    from agent.runtime import Runtime

logger = logging.getLogger(__name__)

FLUSH_HZ = 20.0  # redraws per second while a reply streams (batches of ~5-10 tokens)
SHUTDOWN_WAIT_S = 30.0
PENDING_POLL_S = 0.1  # how often a persona switch deferred by another driver's turn asks the gate
# While a job runs, a thread waiting for the GIL (the token loop, back from llama.cpp's C code)
# gets it within this many seconds instead of Python's default 5 ms, so drawing on the UI
# thread cannot stall token generation (measured: TUI/headless tokens/s 0.71 -> 0.88).
JOB_SWITCH_INTERVAL_S = 0.0002
Job = Callable[[EventSink, "threading.Event"], Any]


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return str(exc)


class EpistemicApp(ScreenActions):
    """Read the conversation and steer the model: persona, sampler, stop, regenerate, history."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "Epistemic Engine"
    COMMANDS = App.COMMANDS | {PersonaCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, config: LoadedConfig, *, runtime: Runtime | None = None, persona: str | None = None,
                 voice: bool = False) -> None:
        super().__init__()
        self.voice = VoiceController(self)
        self.knowledge_watch = KnowledgeWatch(self, config)  # [knowledge] watch folders, kept indexed
        self.voice_at_start = voice
        self.config = config
        self.runtime = runtime
        self.owns_runtime = runtime is None
        self.persona_request = persona
        self.bridge = TurnBridge()
        self.last_finished: TurnFinished | None = None
        self.pending_persona: str | None = None
        self.load_error: str | None = None
        self._flush_timer: Timer | None = None
        self._pending_timer: Timer | None = None
        self._after_job: Callable[[], Any] | None = None
        self._switch_interval = sys.getswitchinterval()

    # -- start-up and shutdown --------------------------------------------------------------

    @property
    def conversation(self) -> ConversationScreen:
        screen = self.get_screen("conversation")
        assert isinstance(screen, ConversationScreen)
        return screen

    @property
    def voice_strip(self) -> VoiceStrip:
        """The (hidden until activated) mic / VAD / partial transcript strip the voice loop feeds."""
        return self.conversation.query_one(VoiceStrip)

    async def on_mount(self) -> None:
        self.install_screen(ConversationScreen(), "conversation")
        await self.push_screen("conversation")
        self._flush_timer = self.set_interval(1 / FLUSH_HZ, self.flush_events, pause=True)
        if self.runtime is None:
            self._load_runtime(RuntimeLoader(self, self.config, self.persona_request))
        else:
            self._runtime_ready(self.runtime)

    @work(thread=True, exit_on_error=False, group="load")
    def _load_runtime(self, loader: RuntimeLoader) -> None:
        loader.load()

    def on_runtime_loader_progressed(self, message: RuntimeLoader.Progressed) -> None:
        self.conversation.show_progress(message.progress)

    def on_runtime_loader_loaded(self, message: RuntimeLoader.Loaded) -> None:
        self.runtime = message.runtime
        self._runtime_ready(message.runtime)

    def on_runtime_loader_failed(self, message: RuntimeLoader.Failed) -> None:
        self.load_error = message.reason
        self.conversation.show_load_failed(message.reason)
        self.notify(message.reason, title="Model not loaded", severity="error", timeout=30)

    def _runtime_ready(self, runtime: Runtime) -> None:
        if self.persona_request and runtime.engine.persona.name != self.persona_request:
            self._try(lambda: runtime.engine.set_persona(self.persona_request or ""))
        self.conversation.show_model(runtime.model.info, runtime.engine.persona.name)
        self.refresh_sampler_panel()
        self.refresh_sources_panel()
        self.knowledge_watch.start()
        if self.voice_at_start:
            self.voice.switch_on()

    async def on_unmount(self) -> None:
        """Stop the reply in flight and let its thread finish before the model is freed."""
        await self.voice.shutdown()
        await asyncio.to_thread(self.knowledge_watch.stop)
        self.bridge.cancel.set()
        finished = await asyncio.to_thread(self.bridge.idle.wait, SHUTDOWN_WAIT_S)
        if not finished:
            logger.warning("the engine job did not stop within %.0f s", SHUTDOWN_WAIT_S)
        elif self.owns_runtime and self.runtime is not None:
            self.runtime.close()

    # -- engine jobs -------------------------------------------------------------------------

    def busy_reason(self) -> str | None:
        """What keeps the engine busy (this app's job or a spoken turn), or None when it is free."""
        if self.bridge.busy:
            return "A reply is running"
        if self.runtime is not None and self.runtime.engine.busy:
            return "A spoken reply is running" if self.voice.loop is not None else "A reply is running"
        return None

    def _refuse_while_busy(self, after: str = "Esc stops it") -> bool:
        """Notify and return True while the engine is busy."""
        reason = self.busy_reason()
        if reason is not None:
            self.notify(f"{reason}: {after}.", severity="warning")
        return reason is not None

    def start_job(self, label: str, job: Job) -> bool:
        """Run ``job(sink, cancel)`` in the engine worker; refused while the engine is busy."""
        if self._refuse_while_busy():
            return False
        cancel = self.bridge.begin()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, JOB_SWITCH_INTERVAL_S))
        self.conversation.query_one(StatusBar).state = label
        assert self._flush_timer is not None
        self._flush_timer.resume()
        self._run_job(job, cancel)
        return True

    @work(thread=True, exit_on_error=False, group="engine")
    def _run_job(self, job: Job, cancel: threading.Event) -> None:
        try:
            job(self.bridge.sink, cancel)
        except UserError as exc:
            self.bridge.end(str(exc))
        except Exception as exc:  # never let a backend failure take the UI down
            logger.exception("engine job failed")
            self.bridge.end(f"{type(exc).__name__}: {exc}")
        else:
            self.bridge.end()

    def flush_events(self) -> None:
        """Draw everything the engine emitted since the last flush (UI thread, FLUSH_HZ)."""
        batch = self.bridge.drain()
        if not batch:
            return
        for finished in self.conversation.apply(batch):
            self.last_finished = finished
            self.refresh_sources_panel(finished)
        ended = [s.event for s in batch if isinstance(s.event, TurnEnded)]
        if ended:
            self._job_ended(ended[-1])

    def _job_ended(self, ended: TurnEnded) -> None:
        self.bridge.busy = False
        sys.setswitchinterval(self._switch_interval)
        assert self._flush_timer is not None
        self._flush_timer.pause()
        status = self.conversation.query_one(StatusBar)
        status.state = ""
        after, self._after_job = self._after_job, None
        if ended.error:
            self.notify(ended.error, severity="error", timeout=10)
        elif after is not None:
            after()
        if self.runtime is not None:
            status.persona = self.runtime.engine.persona.name
            self.refresh_sampler_panel()
            self.refresh_sources_panel()
        self.apply_pending_persona()

    def apply_pending_persona(self) -> None:
        """Switch to the persona chosen during a reply, once the engine is free (UI thread)."""
        if self.pending_persona is None or self.busy_reason() is not None:
            return
        if self._pending_timer is not None:
            self._pending_timer.stop()
            self._pending_timer = None
        name, self.pending_persona = self.pending_persona, None
        self.switch_persona(name)

    # -- user actions ------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "prompt":
            return
        text = event.value.strip()
        runtime = self._require_runtime()
        if not text or runtime is None:
            return
        if self.voice.active:  # answered (and spoken) in turn with the spoken ones
            self.voice.submit_text(text)
            event.input.clear()
            self.conversation.show_user(text)
            return
        engine = runtime.engine
        if self.start_job("replying", lambda sink, cancel: engine.respond(text, on_event=sink, cancel=cancel)):
            event.input.clear()
            self.conversation.show_user(text)

    def action_stop_reply(self) -> None:
        if not (self.voice.interrupt() | self.bridge.stop()):
            self.notify("Nothing to stop.", timeout=2)

    def action_regenerate(self) -> None:
        runtime = self._require_runtime()
        if runtime is None:
            return
        engine = runtime.engine
        if not engine.history or engine.history[-1].role != "assistant":
            self.notify("Nothing to regenerate yet.", severity="warning")
            return
        if self.start_job("regenerating", lambda sink, cancel: engine.regenerate(on_event=sink, cancel=cancel)):
            self.conversation.supersede_last_reply()

    def action_new_conversation(self) -> None:
        """Ctrl+N: refused while a reply (typed or spoken) runs, so histories never mix."""
        runtime = self._require_runtime()
        if runtime is None or self._refuse_while_busy("wait for it to end (Esc stops it)"):
            return
        if self._try(runtime.engine.new_conversation):  # the gate decides if a turn just began
            self.conversation.clear()
            self.notify("New conversation.", timeout=2)

    def _try(self, action: Callable[[], Any]) -> bool:
        """Run a quick engine call on the UI thread; errors become a notification."""
        try:
            action()
        except (UserError, ValidationError) as exc:
            self.notify(_error_text(exc), severity="error")
            return False
        return True

    # -- persona ---------------------------------------------------------------------------

    def persona_choices(self) -> list[tuple[str, str]]:
        if self.runtime is None:
            return []
        return [(p.name, p.description) for p in self.runtime.personas.all()]

    def action_pick_persona(self) -> None:
        runtime = self._require_runtime()
        if runtime is not None:
            picker = PersonaPicker(self.persona_choices(), runtime.engine.persona.name)
            self.push_screen(picker, lambda name: self.switch_persona(name) if name else None)

    def switch_persona(self, name: str) -> None:
        """Switch persona from the next turn (after the running reply, if any)."""
        runtime = self._require_runtime()
        if runtime is None:
            return
        if self.busy_reason() is not None:  # a spoken turn ends without a job of ours: poll the gate
            self.pending_persona = name
            self.notify(f"Persona {name} from the next turn (after this reply).")
            if self._pending_timer is None:
                self._pending_timer = self.set_interval(PENDING_POLL_S, self.apply_pending_persona)
            return
        engine = runtime.engine
        if self.start_job(f"switching to {name}", lambda sink, cancel: engine.set_persona(name)):
            self._after_job = lambda: self.notify(f"Persona: {engine.persona.name} (from the next turn).", timeout=3)

    # -- sampler ---------------------------------------------------------------------------

    def refresh_sampler_panel(self) -> None:
        if self.runtime is not None:
            engine = self.runtime.engine
            self.conversation.query_one(SamplerPanel).show(engine.sampler, set(engine.sampler_overrides))

    def refresh_sources_panel(self, finished: TurnFinished | None = None) -> None:
        """Ctrl+K's panel: the sources of ``finished`` (else the ones shown), under the persona's ``retrieve``."""
        panel = self.conversation.query_one(SourcesPanel)
        retrieve = self.runtime.engine.persona.retrieve if self.runtime is not None else "none"
        panel.show(finished.retrieval if finished is not None else panel.retrieval, retrieve)

    def on_knowledge_watch_changed(self, message: KnowledgeWatch.Changed) -> None:
        self.notify(message.line, severity=message.severity, timeout=4 if message.severity == "information" else 10)

    def on_sampler_panel_value_submitted(self, message: SamplerPanel.ValueSubmitted) -> None:
        runtime = self._require_runtime()
        if runtime is None:
            return
        if self._try(lambda: runtime.engine.set_sampler(**{message.field: message.value})):
            value = getattr(runtime.engine.sampler, message.field)
            self.notify(f"{message.field} = {value} from the next turn.", timeout=3)
        self.refresh_sampler_panel()

    def on_sampler_panel_reset_pressed(self, message: SamplerPanel.ResetPressed) -> None:
        if self.runtime is not None:
            self.runtime.engine.reset_sampler()
            self.refresh_sampler_panel()
            self.notify("Sampler back to the persona's values.", timeout=3)

    # -- voice (tui/voice_bridge.py) --------------------------------------------------------

    def action_toggle_voice(self) -> None:
        self.voice.toggle()

    def action_push_to_talk(self) -> None:
        self.voice.push_to_talk()

    def action_toggle_voice_mode(self) -> None:
        self.voice.toggle_mode()

    def action_toggle_barge_in(self) -> None:
        self.voice.toggle_barge_in()

    # -- history ---------------------------------------------------------------------------

    def _continue_conversation(self, conversation_id: int | None) -> None:
        """Open a logged conversation: read in the engine worker, drawn when the job ends."""
        runtime = self.runtime
        if conversation_id is None or runtime is None:
            return
        log = runtime.log
        assert log is not None
        engine = runtime.engine
        turns: list[StoredTurn] = []

        def job(sink: EventSink, cancel: threading.Event) -> None:
            engine.open_conversation(conversation_id)
            turns.extend(log.active_turns(conversation_id))

        def show() -> None:
            self.conversation.show_turns(turns)
            self.notify(f"Continuing conversation #{conversation_id}.", timeout=3)

        if self.start_job(f"opening #{conversation_id}", job):
            self._after_job = show


def make_app(config: LoadedConfig, *, runtime: Runtime | None = None, persona: str | None = None,
             voice: bool = False) -> EpistemicApp:
    """The one factory for the TUI: the CLI passes no runtime (the app loads it), tests pass one;
    ``voice`` switches the microphone on as soon as the model is ready."""
    return EpistemicApp(config, runtime=runtime, persona=persona, voice=voice)
