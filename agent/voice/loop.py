"""The hands-free (or push-to-talk) voice loop around the conversation engine.

Threads: the capture thread (microphone -> :class:`Listener`), the turn worker (final transcript
-> engine -> :class:`Speaker`), the speaker's TTS worker and the partial-transcript worker.
Half-duplex by default: the microphone is ignored while the agent speaks (and for a short tail
after). With ``barge_in`` on, speech during a reply stops playback and cancels generation; the
log keeps the reply as generated and the part actually heard.

The engine's turn gate is the one owner of "a turn is running": a spoken turn that finds a typed
job (a regenerate, a persona switch...) in progress waits up to ``turn_wait_s`` for it, then is
dropped with a visible :class:`agent.events.Notice`; it never runs beside it. An early start
(:mod:`agent.voice.early`) holds the gate from the pause that started it until its utterance is
answered (kept) or its transcript turns out different (discarded).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from agent.errors import TurnInProgress
from agent.events import Notice, TurnFinished, TurnStarted
from agent.voice.early import EarlyStart
from agent.voice.events import (
    BargedIn,
    DeviceLost,
    SpeakingChanged,
    UserUtterance,
    VadStateChanged,
    VoiceEventSink,
    WaterfallReady,
)
from agent.voice.listener import Listener, TurnPolicy, Utterance
from agent.voice.protocols import VoiceEngine
from agent.voice.speaker import Speaker, SpokenReply, speech_events
from agent.voice.turns import TurnRecorder
from agent.voice.waterfall import WaterfallClock
from audio.capture import MicCapture
from audio.errors import DeviceError
from audio.playback import Player
from audio.protocols import SpeechToText, TextToSpeech, VoiceActivityDetector
from audio.settings import AudioSettings

log = logging.getLogger(__name__)

UNMUTE_TAIL_S = 0.3  # half-duplex: keep the mic closed this long after playback (device buffer, echo)
TURN_WAIT_S = 20.0  # a spoken turn waits this long for a typed job to end, then is dropped (notice)
GATE_POLL_S = 0.25  # ... asking the gate this often, so stop() and Esc are not kept waiting


def _ignore(event: object) -> None:
    return None


class VoiceLoop:
    """Talk to the engine by voice. ``start()``, then ``stop()``; events go to ``on_event``.

    Threads: ``start``/``stop`` and the public controls are called from any thread (TUI workers,
    the CLI); ``interrupt`` and ``start_listening`` may block briefly (they stop playback), so the
    TUI calls them from a thread worker. The turn worker alone sets and clears ``_reply`` (the
    reply being spoken) and ``_cancel`` (its generation's cancel flag), together, under
    ``_reply_lock``; ``interrupt`` (any thread, and the capture thread on barge-in) reads the pair
    under the same lock and acts on it outside it. ``_speaking`` is set by the TTS worker and
    cleared by the turn worker or ``interrupt``; ``lost`` is written once, by the capture thread.
    """

    def __init__(self, engine: VoiceEngine, *, settings: AudioSettings, vad: VoiceActivityDetector,
                 stt: SpeechToText, tts: TextToSpeech, recorder: TurnRecorder,
                 on_event: VoiceEventSink | None = None, language: str | None = None,
                 turn_wait_s: float = TURN_WAIT_S, policy: TurnPolicy | None = None) -> None:
        self.engine = engine
        self.turn_wait_s = turn_wait_s
        self.settings = settings
        self.recorder = recorder
        self.barge_in_enabled = settings.barge_in
        self._emit: VoiceEventSink = on_event or _ignore
        self._audio_events: queue.SimpleQueue = queue.SimpleQueue()
        self.mic = MicCapture(settings.input_device, block_ms=settings.block_ms, timeout_s=settings.device_timeout_s)
        self.player = Player(settings.output_device, emit=self._audio_events.put)  # PortAudio thread: only enqueue
        push_to_talk = settings.turn_taking == "push_to_talk"
        self.speaker = Speaker(tts, self.player, on_speaking=self._on_speaking)
        self.listener = Listener(
            vad=vad, stt=stt, language=language, push_to_talk=push_to_talk, emit=self._emit,
            on_utterance=self._turns_put, on_speech_started=self._on_speech_started, is_muted=self._is_muted,
            policy=policy, on_early=self._on_early,
        )
        self._turns: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._speaking = threading.Event()
        self._unmute_at = 0.0
        self._reply_lock = threading.Lock()
        self._reply: SpokenReply | None = None
        self._cancel: threading.Event | None = None
        self._threads: list[threading.Thread] = []
        self.lost: str | None = None
        self.turns_done = 0
        self.last_barge_in_s: float | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> bool:
        """Open the devices and start listening; False (with a notice) when there is no device."""
        try:
            self.player.start()
            self.mic.start()
        except DeviceError as exc:
            self._close_devices()
            self._emit(Notice("error", f"Voice is off: {exc}. Typing still works."))
            self._emit(VadStateChanged("off"))
            return False
        for target, name in ((self._capture, "voice-capture"), (self._run_turns, "voice-turns")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._emit(VadStateChanged(self.listener.initial_state()))
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and speaking, cancel a reply in progress, close the devices."""
        self._stop.set()
        self.interrupt(emit=False)
        self.listener.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)
        while not self._turns.empty():  # utterances never answered: their early replies go too
            item = self._turns.get_nowait()
            if isinstance(item, Utterance) and item.early is not None:
                item.early.discard()
        self._close_devices()
        self._emit(VadStateChanged("off"))

    @property
    def running(self) -> bool:
        """True while the loop listens."""
        return bool(self._threads) and not self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the loop has stopped (e.g. its device was lost); False on timeout."""
        return self._stop.wait(timeout)

    def _close_devices(self) -> None:
        for device in (self.mic, self.player):
            try:
                device.close()
            except Exception as exc:  # a lost device may fail to close; nothing left to do
                log.debug("closing %s: %s", type(device).__name__, exc)

    # -- public controls (any thread: TUI keys, CLI) -----------------------------------------

    def start_listening(self) -> None:
        """Push-to-talk key down (interrupts the agent if it is speaking)."""
        self.interrupt()
        self.listener.press()

    def stop_listening(self) -> None:
        """Push-to-talk key up: what was said is answered."""
        self.listener.release()

    def set_push_to_talk(self, on: bool) -> None:
        """Turn-taking: push-to-talk (a key decides) or hands-free (the VAD decides). Never blocks."""
        self.listener.set_push_to_talk(on)

    def set_end_of_turn(self, vad: VoiceActivityDetector, policy: TurnPolicy) -> None:
        """Another end of turn (its VAD and policy) from the next utterance on. Never blocks."""
        self.listener.set_end_of_turn(vad, policy)

    def set_barge_in(self, on: bool) -> None:
        """Barge-in (speech during a reply stops it; use headphones) or half-duplex."""
        self.barge_in_enabled = on

    def submit_text(self, text: str) -> None:
        """A typed message, answered (and spoken) in turn with the spoken ones."""
        self._turns.put(text)

    def interrupt(self, emit: bool = True) -> None:
        """Stop the reply now: silence playback and cancel generation (barge-in). May block briefly."""
        with self._reply_lock:
            reply, cancel = self._reply, self._cancel
        if cancel is not None:
            cancel.set()
        if reply is None or reply.stopped:
            return
        outcome = reply.stop()
        self._speaking.clear()
        if emit:
            self._emit(BargedIn(outcome.heard_text))
            self._emit(SpeakingChanged(False))

    # -- capture thread ----------------------------------------------------------------------

    def _capture(self) -> None:
        try:
            for block in self.mic.frames(self._stop):
                self._check_output()
                self.listener.feed(block)
        except Exception as exc:  # an unexpected capture failure ends voice, not the program
            log.exception("voice capture failed")
            self._device_lost("input", str(exc) or type(exc).__name__)
            return
        if self.mic.lost and not self._stop.is_set():
            self._device_lost("input", self.mic.lost)

    def _check_output(self) -> None:
        while not self._audio_events.empty():
            event = self._audio_events.get_nowait()
            if isinstance(event, DeviceLost):
                self._device_lost("output", event.message)

    def _device_lost(self, kind: str, message: str) -> None:
        if self.lost is not None:
            return
        self.lost = message
        self._emit(DeviceLost(kind, message))
        what = "Microphone" if kind == "input" else "Speaker"
        self._emit(Notice("warning", f"{what} lost ({message}). Voice is off; typing still works."))
        self._stop.set()
        self.interrupt(emit=False)

    def _is_muted(self) -> bool:
        if self.barge_in_enabled:
            return False
        return self._speaking.is_set() or time.perf_counter() < self._unmute_at

    def _on_speech_started(self, detect_s: float) -> None:  # the capture thread
        with self._reply_lock:
            replying = self._reply is not None
        if self.barge_in_enabled and replying and self._speaking.is_set():
            started = time.perf_counter()
            self.interrupt()
            self.last_barge_in_s = detect_s + time.perf_counter() - started
            log.info("barge-in after %.0f ms", self.last_barge_in_s * 1000)

    def _on_early(self, pcm: Any, probability: float, language: str | None) -> EarlyStart | None:  # the capture thread
        """Start preparing the reply at a pause that looks final (not while a reply runs)."""
        with self._reply_lock:
            replying = self._reply is not None
        if replying or self._stop.is_set():
            return None
        return EarlyStart.begin(self.engine, self.listener.stt, pcm, language=language, probability=probability)

    def _on_speaking(self, speaking: bool) -> None:
        self._speaking.set()
        self._emit(SpeakingChanged(True))

    # -- turn worker -------------------------------------------------------------------------

    def _turns_put(self, utterance: Utterance) -> None:
        self._turns.put(utterance)

    def _run_turns(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._turns.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self._turn(item)
            except TurnInProgress as exc:
                self._emit(Notice("warning", f"Not answered: {exc}."))
            except Exception as exc:  # one failed turn must not end the conversation
                log.exception("voice turn failed")
                self._emit(Notice("error", f"That turn failed: {exc}"))

    def _turn(self, item: Utterance | str) -> None:
        if isinstance(item, str):
            self._answer(item, WaterfallClock(), source="typed")
            return
        heard = self.recorder.transcribe(item)
        if heard is None:
            if item.early is not None:
                item.early.discard()
            self._emit(Notice("info", "Nothing recognisable was heard."))
            return
        early = self._early_decision(item, heard.text)
        self._answer(heard.text, item.clock, heard.event, early=early, source="voice", audio_path=heard.audio_path, stt=heard.stt)

    def _early_decision(self, item: Utterance, final_text: str) -> EarlyStart | None:
        """The early start to keep (its transcript matches the final one), else None (discarded)."""
        early, clock = item.early, item.clock
        if early is None:
            policy = self.listener.policy
            clock.early("none" if policy.early_start and policy.detector is not None else "off")
            return None
        early.wait_transcript()
        if early.matches(final_text):
            clock.early("used", early.head_start_s(clock.speech_end_at))
            return early
        log.info("early start discarded: %r became %r", early.transcript.text if early.transcript else "", final_text)
        early.discard()
        clock.early("discarded")
        return None

    def _answer(self, text: str, clock: WaterfallClock, said: UserUtterance | None = None,
                early: EarlyStart | None = None, **turn: Any) -> None:
        """Answer ``text`` and speak the reply; ``said`` is announced once the engine takes the turn.
        With ``early``, its provisional reply is kept as the answer (regenerated if that fails)."""
        cancel = early.cancel if early is not None else threading.Event()
        reply = self.speaker.begin(clock)
        with self._reply_lock:
            self._reply, self._cancel = reply, cancel
        on_event = speech_events(clock, reply, forward=self._announcing(said))
        try:
            finished = early.keep(text, on_event, **turn) if early is not None else None
            if early is not None and early.kept:
                clock.early("used", clock.result().early_saved_s, early.provisional.head_start_s())
            elif early is not None:
                clock.early("discarded")
                cancel = self._fresh_cancel()
            if finished is None and (early is None or not early.kept):
                finished = self._respond(text, on_event, cancel, **turn)
        finally:
            outcome = reply.stop() if reply.stopped or cancel.is_set() else reply.finish()
            with self._reply_lock:
                self._reply, self._cancel = None, None
            self._done_speaking(outcome.interrupted)
        self.turns_done += 1
        if finished is not None:
            waterfall = clock.result()
            self.recorder.store_reply(finished, outcome, waterfall)
            self._emit(WaterfallReady(finished.turn_id, waterfall))

    def _fresh_cancel(self) -> threading.Event:
        """A new cancel flag for a reply regenerated after an early start could not be kept."""
        cancel = threading.Event()
        with self._reply_lock:
            self._cancel = cancel
        return cancel

    def _respond(self, text: str, on_event: VoiceEventSink, cancel: threading.Event, **turn: Any) -> TurnFinished | None:
        """``engine.respond``, waiting up to ``turn_wait_s`` for another job to free the gate."""
        deadline = time.monotonic() + self.turn_wait_s
        while True:
            try:
                return self.engine.respond(text, on_event=on_event, cancel=cancel, wait=GATE_POLL_S, **turn)
            except TurnInProgress:
                if time.monotonic() >= deadline or cancel.is_set() or self._stop.is_set():
                    raise

    def _announcing(self, said: UserUtterance | None) -> VoiceEventSink:
        """Forward engine events; the user's utterance goes first, when the turn really starts
        (a turn refused by the gate never shows a question without an answer)."""
        pending = [said] if said is not None else []

        def forward(event: object) -> None:
            if pending and isinstance(event, TurnStarted):
                self._emit(pending.pop())
            self._emit(event)

        return forward

    def _done_speaking(self, interrupted: bool) -> None:
        was = self._speaking.is_set()
        if not interrupted:
            self._unmute_at = time.perf_counter() + UNMUTE_TAIL_S
        self._speaking.clear()
        if was:
            self._emit(SpeakingChanged(False))
