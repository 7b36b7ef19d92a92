"""Voice in the TUI: runs :class:`agent.voice.loop.VoiceLoop` beside the typed conversation.

Switching voice on loads Whisper and Piper in a thread worker (the UI keeps drawing), then opens
the devices. The loop's worker threads call :meth:`VoiceController.sink`, which only appends:
engine events and the user's spoken turn go into the app's :class:`tui.bridge.TurnBridge` (so a
voice turn streams into the transcript exactly like a typed one, in order); the strip's events
(mic level, VAD state, partial transcript, speaking, waterfall) go into a deque that a
``DRAIN_HZ`` timer drains on the UI thread. Notices (:class:`agent.events.Notice`, the engine's
and the loop's alike) go through the bridge and become notifications. No device, or a device lost
mid-conversation: a notification, the strip goes away, typing goes on.

Loop controls that can block (stopping playback: PortAudio's abort can hang when the sound server
is gone) run on :class:`ControlThread`, in the order the keys were pressed, never on the event
loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches

from agent.events import ContextTrimmed, Notice, ReplyToken, TurnFinished, TurnStarted
from agent.voice.events import (
    BargedIn,
    DeviceLost,
    MicLevel,
    PartialTranscriptUpdated,
    SpeakingChanged,
    UserUtterance,
    VadStateChanged,
    WaterfallReady,
)
from tui.widgets.voice_strip import VoiceStrip, level_of

if TYPE_CHECKING:
    from textual.timer import Timer

    from agent.runtime import Runtime
    from agent.voice.loop import VoiceLoop
    from tui.app import EpistemicApp

log = logging.getLogger(__name__)

DRAIN_HZ = 20.0
SHUTDOWN_WAIT_S = 15.0  # app exit: a loop that does not stop in this time (a hung device) is abandoned
_ORDERED = (TurnStarted, ReplyToken, TurnFinished, Notice, ContextTrimmed, UserUtterance)


class ControlThread:
    """Runs loop controls one after another on a daemon thread (a hung device cannot block exit).

    The UI thread calls :meth:`submit`; the control thread runs what was submitted, in order.
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, call: Callable[[], object]) -> None:
        """Queue ``call``; it runs after those queued before it."""
        self._calls.put(call)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="voice-control", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            call = self._calls.get()
            try:
                call()
            except Exception:  # a failed control must not stop the next ones
                log.exception("voice control failed")


class VoiceController:
    """Owns the app's voice loop: on/off, push-to-talk, mode toggles, events to the UI.

    UI thread: every public method but :meth:`sink`, which the loop's worker threads call.
    ``loop`` is set and cleared on the UI thread only; ``_replying`` is set from the loop's
    threads (a reply began or ended); blocking controls go to ``controls``.
    """

    def __init__(self, app: EpistemicApp) -> None:
        self.app = app
        self.controls = ControlThread()
        self.loop: VoiceLoop | None = None
        self.models: tuple[Any, Any] | None = None  # (stt, tts) once loaded; tests may preset them
        self.loading = False
        self._events: deque[Any] = deque()
        self._timer: Timer | None = None
        self._replying = threading.Event()
        self._speaking = False
        self.talking = False  # push-to-talk: the key was pressed and not yet pressed again
        self._closed = threading.Event()  # the app is exiting: a loop that finishes loading must not start

    # -- state -------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while the loop listens (typed messages then go through it and are spoken too)."""
        return self.loop is not None and self.loop.running

    @property
    def strip(self) -> VoiceStrip:
        return self.app.voice_strip

    # -- on / off ----------------------------------------------------------------------------

    def toggle(self) -> None:
        """Switch voice on (loading the speech models the first time) or off."""
        if self.loading:
            self.app.notify("Voice is starting…", timeout=2)
        elif self.loop is not None:
            self.switch_off("Voice off.")
        else:
            self.switch_on()

    def switch_on(self) -> None:
        runtime = self.app.runtime
        if runtime is None:
            self.app.notify("Voice needs the model: it is still loading.", severity="warning")
            return
        self.loading = True
        self.strip.set_vad_state("loading")
        self.strip.activate()
        if self.models is None:
            self.app.notify("Loading the speech models…", timeout=5)
        self.app.run_worker(lambda: self._start(runtime), thread=True, group="voice", exit_on_error=False)

    def _start(self, runtime: Runtime) -> None:  # thread worker
        from agent.voice.setup import build_voice_loop, load_stt, load_tts
        from audio.devices import find_device
        from audio.errors import DeviceError

        settings = runtime.config.settings.audio
        try:
            find_device(settings.input_device, "input")  # cheap: no device -> no model loading
            find_device(settings.output_device, "output")
            if self.models is None:
                self.models = (load_stt(runtime.config), load_tts(runtime.config, runtime.engine.persona))
            stt, tts = self.models
            loop = build_voice_loop(runtime, stt=stt, tts=tts, on_event=self.sink)
        except DeviceError as exc:
            self.sink(Notice("error", f"Voice is off: {exc}. Typing still works."))
            loop = None
        except Exception as exc:  # a speech model that cannot load must not take the UI down
            log.exception("voice could not start")
            self.sink(Notice("error", f"Voice is off: {type(exc).__name__}: {exc}. Typing still works."))
            loop = None
        if self._closed.is_set() or (loop is not None and not loop.start()):
            loop = None
        try:
            self.app.call_from_thread(self._started, loop)
        except RuntimeError:  # the app closed meanwhile
            if loop is not None:
                loop.stop()

    def _started(self, loop: VoiceLoop | None) -> None:
        self.loading = False
        self._ensure_timer()
        self.drain()
        if loop is None:
            self.strip.activate(False)
            return
        self.loop = loop
        self.strip.set_mode(loop.listener.push_to_talk, loop.barge_in_enabled)
        self.strip.activate()
        self.app.notify("Voice on: speak, or type as before.", timeout=3)

    def switch_off(self, message: str | None = None) -> None:
        """Stop listening and speaking; the devices close in a worker thread."""
        loop, self.loop = self.loop, None
        self.strip.activate(False)
        self.strip.set_speaking(False)
        if loop is not None:
            self.app.run_worker(loop.stop, thread=True, group="voice-stop", exit_on_error=False)
        if message:
            self.app.notify(message, timeout=2)

    async def shutdown(self) -> None:
        """App exit: stop the loop and let its threads end before the model is freed (bounded:
        a loop stuck on a vanished device is abandoned with a warning)."""
        self._closed.set()
        loop, self.loop = self.loop, None
        if loop is None:
            return
        stopped = threading.Event()

        def stop() -> None:
            loop.stop()
            stopped.set()

        threading.Thread(target=stop, name="voice-shutdown", daemon=True).start()
        if not await asyncio.to_thread(stopped.wait, SHUTDOWN_WAIT_S):
            log.warning("the voice loop did not stop within %.0f s (a vanished device?)", SHUTDOWN_WAIT_S)

    # -- controls ----------------------------------------------------------------------------

    def _require_loop(self) -> VoiceLoop | None:
        if self.loop is None:
            self.app.notify("Voice is off: F7 switches it on.", severity="warning", timeout=3)
        return self.loop

    def push_to_talk(self) -> None:
        """Press once to talk, again to send (terminals report no key release)."""
        loop = self._require_loop()
        if loop is None:
            return
        if not loop.listener.push_to_talk:
            self.toggle_mode()
        self.talking = not self.talking
        self.controls.submit(loop.start_listening if self.talking else loop.stop_listening)

    def toggle_mode(self) -> None:
        """Hands-free (the VAD decides) <-> push-to-talk (F8 decides)."""
        loop = self._require_loop()
        if loop is None:
            return
        listener = loop.listener
        self.talking = False
        loop.set_push_to_talk(not listener.push_to_talk)
        self.strip.set_mode(listener.push_to_talk, loop.barge_in_enabled)
        self.strip.set_vad_state(listener.initial_state())

    def toggle_barge_in(self) -> None:
        """Half-duplex (mic ignored while speaking) <-> barge-in (speech stops the reply; headphones)."""
        loop = self._require_loop()
        if loop is not None:
            loop.set_barge_in(not loop.barge_in_enabled)
            self.strip.set_mode(loop.listener.push_to_talk, loop.barge_in_enabled)

    def submit_text(self, text: str) -> None:
        """A typed message while voice is on: answered and spoken in turn with the spoken ones."""
        assert self.loop is not None
        self.loop.submit_text(text)

    def interrupt(self) -> bool:
        """Esc: stop the spoken reply and its generation (on the control thread: stopping
        playback can block); False when nothing was running."""
        loop = self.loop
        if loop is None or not (self._replying.is_set() or self._speaking):
            return False
        self.controls.submit(loop.interrupt)
        return True

    # -- events ------------------------------------------------------------------------------

    def sink(self, event: Any) -> None:
        """The loop's ``on_event`` (worker threads): only appends."""
        if isinstance(event, TurnStarted):
            self._replying.set()
        elif isinstance(event, TurnFinished):
            self._replying.clear()
        if isinstance(event, _ORDERED):
            self.app.bridge.sink(event)
        if not isinstance(event, _ORDERED) or isinstance(event, UserUtterance):
            self._events.append(event)

    def _ensure_timer(self) -> None:
        if self._timer is None:
            self._timer = self.app.set_interval(1 / DRAIN_HZ, self.drain)

    def drain(self) -> None:
        """Apply the voice events that arrived since the last call (UI thread)."""
        self.app.flush_events()  # voice turns stream without an engine job of the app's
        try:
            while self._events:
                self._apply(self._events.popleft())
        except NoMatches:  # the app is closing and its screen's widgets are gone: nothing left to draw
            self._events.clear()
            if self._timer is not None:
                self._timer.stop()
                self._timer = None

    def _apply(self, event: Any) -> None:
        strip = self.strip
        if isinstance(event, MicLevel):
            strip.set_level(level_of(event.dbfs))
        elif isinstance(event, VadStateChanged):
            talking = self.talking and event.state in ("idle", "push_to_talk")  # the key is down: recording
            strip.set_vad_state("speech" if talking else event.state)
            if event.state == "speech":
                strip.set_partial("")
        elif isinstance(event, PartialTranscriptUpdated):
            strip.set_partial(event.text)
        elif isinstance(event, UserUtterance):
            strip.set_partial(event.text, final=True)
        elif isinstance(event, SpeakingChanged):
            self._speaking = event.speaking
            strip.set_speaking(event.speaking)
        elif isinstance(event, WaterfallReady):
            strip.set_waterfall(event.waterfall)
        elif isinstance(event, BargedIn):
            self.app.notify("Interrupted: the reply stopped.", timeout=2)
        elif isinstance(event, DeviceLost):
            self.switch_off()
