"""The listening half of the voice loop: microphone frames -> utterances.

Hands-free: the VAD opens and closes utterances. Push-to-talk: :meth:`Listener.press` /
:meth:`Listener.release` do. Partial transcripts stream while the user speaks. While
``is_muted()`` (the agent speaking in half-duplex) frames are dropped and the VAD is reset, so the
agent never hears itself.

At each pause the VAD reports, the turn-end model (:class:`TurnPolicy`) is asked whether the user
has finished: in ``model`` and ``both`` modes a yes ends the utterance at once; with
``early_start`` a yes also starts the early reply (``on_early``): in ``silence`` mode while the
silence timer still runs, otherwise at the end of the turn, its generation running while the turn
is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from agent.voice.events import MicLevel, PartialTranscriptUpdated, VadState, VadStateChanged
from agent.voice.waterfall import TurnEnd, WaterfallClock
from audio.events import PartialTranscript, SpeechEnded, SpeechRejected, SpeechStarted
from audio.pcm import rms_dbfs
from audio.protocols import SpeechToText, VoiceActivityDetector
from audio.streaming import StreamingTranscriber
from audio.turn_end import TurnEndDetector
from audio.vad import SpeechPaused, SpeechResumed

if TYPE_CHECKING:
    from agent.voice.early import EarlyStart

EarlyStarter = Callable[[np.ndarray, float, "str | None"], "EarlyStart | None"]

log = logging.getLogger(__name__)

LEVEL_EVERY_S = 0.1


@dataclass
class Utterance:
    """A finished utterance waiting for its final transcript."""

    pcm: np.ndarray
    transcriber: StreamingTranscriber
    clock: WaterfallClock
    early: EarlyStart | None = None  # a reply prepared at a pause before the turn ended


@dataclass(frozen=True)
class TurnPolicy:
    """How the end of a turn is decided ([vad] end_of_turn, turn_threshold, early_start).

    Immutable; the capture thread reads it (a switch replaces it whole, see ``set_end_of_turn``)."""

    mode: Literal["silence", "model", "both"] = "silence"
    threshold: float = 0.5
    early_start: bool = False
    detector: TurnEndDetector | None = None  # None: the silence timer alone, no early start


def stop_in_background(transcriber: StreamingTranscriber) -> None:
    """Stop a transcriber's partial worker without waiting for a partial in progress."""
    threading.Thread(target=transcriber.stop, name="stt-partials-stop", daemon=True).start()


class Listener:
    """Turns microphone blocks into :class:`Utterance` objects (``on_utterance``).

    Threads: the capture thread calls :meth:`feed`; it alone touches the VAD and the mute and
    level state. Any thread (TUI keys, the CLI, the loop's stop) calls :meth:`press`,
    :meth:`release`, :meth:`close` and :meth:`set_push_to_talk`; none of them blocks. The
    partial-transcript workers call ``_partial``.

    ``_lock`` guards the utterance in progress (``_transcriber`` and its early start ``_early``),
    the key state (``_pressed``), the mode (``_push_to_talk``) and the request to reset the VAD
    (``_reset_vad``, set by a mode switch and carried out by the capture thread, which also takes
    up a new end-of-turn setup, ``_new_turn_setup``, between utterances). It is never held
    while transcribing or emitting. The turn-end model runs on the capture thread, which alone
    keeps its last answer (``_check``).
    """

    def __init__(
        self,
        *,
        vad: VoiceActivityDetector,
        stt: SpeechToText,
        language: str | None,
        push_to_talk: bool,
        emit: Callable[[Any], None],
        on_utterance: Callable[[Utterance], None],
        on_speech_started: Callable[[float], None],
        is_muted: Callable[[], bool],
        policy: TurnPolicy | None = None,
        on_early: EarlyStarter | None = None,
    ) -> None:
        self.vad = vad
        self.stt = stt
        self.language = language
        self._emit = emit
        self._on_utterance = on_utterance
        self._on_speech_started = on_speech_started
        self._is_muted = is_muted
        self.policy = policy or TurnPolicy()
        self._on_early = on_early
        self._lock = threading.Lock()
        self._transcriber: StreamingTranscriber | None = None
        self._early: EarlyStart | None = None
        self._check: tuple[float, float] | None = None  # capture thread only: (probability, seconds)
        self._pressed = False
        self._push_to_talk = push_to_talk
        self._reset_vad = False
        self._new_turn_setup: tuple[VoiceActivityDetector, TurnPolicy] | None = None
        self._muted = False  # capture thread only
        self._level: list[np.ndarray] = []  # capture thread only
        self._level_at = 0.0

    @property
    def push_to_talk(self) -> bool:
        """True in push-to-talk mode (a key decides), False hands-free (the VAD decides)."""
        return self._push_to_talk

    def initial_state(self) -> VadState:
        """The VAD state shown before anything was heard."""
        return "push_to_talk" if self._push_to_talk else "idle"

    # -- the capture thread --------------------------------------------------------------

    def feed(self, block: np.ndarray) -> None:
        """One block of 16 kHz mono microphone audio (the capture thread)."""
        self._meter(block)
        with self._lock:
            push_to_talk, reset, self._reset_vad = self._push_to_talk, self._reset_vad, False
            setup = self._new_turn_setup if not self.vad.in_speech else None
            if setup is not None:
                self._new_turn_setup = None
        if setup is not None:
            self.vad, self.policy = setup
        if reset:
            self.vad.reset()
        if self._check_muted():
            return
        if push_to_talk:
            with self._lock:
                if self._pressed and self._transcriber is not None:
                    self._transcriber.append(block)
        else:
            self._feed_vad(block)

    def _feed_vad(self, block: np.ndarray) -> None:
        with self._lock:
            before = self._transcriber
        for event in self.vad.feed(block):
            self._vad_event(event)
        in_speech = self.vad.in_speech
        with self._lock:  # a block that opened the utterance is already in its audio
            if in_speech and before is not None and self._transcriber is before:
                before.append(block)

    def _meter(self, block: np.ndarray) -> None:
        self._level.append(block)
        now = time.monotonic()
        if now - self._level_at >= LEVEL_EVERY_S:
            self._emit(MicLevel(rms_dbfs(np.concatenate(self._level))))
            self._level, self._level_at = [], now

    def _check_muted(self) -> bool:
        muted = self._is_muted()
        if muted != self._muted:
            self._muted = muted
            if muted:
                self.vad.reset()
                self._drop_transcriber()
            self._emit(VadStateChanged("muted" if muted else self.initial_state()))
        return muted

    def _vad_event(self, event: Any) -> None:
        if isinstance(event, SpeechStarted):
            detect_s = self.vad.frames_seen * self.vad.settings.frame_ms / 1000.0 - event.at_s
            self._on_speech_started(detect_s)
            self._open(self.vad.current_audio())
        elif isinstance(event, SpeechPaused):
            self._paused(event)
        elif isinstance(event, SpeechResumed):
            self._resumed()
        elif isinstance(event, SpeechEnded):
            self._ended(event, "max_silence" if self.policy.mode == "model" else "silence")
        elif isinstance(event, SpeechRejected):
            log.info("utterance rejected: %s", event.reason)
            self._check = None
            self._drop_transcriber(vad=True)
            self._emit(VadStateChanged("idle"))

    # -- end of turn (the capture thread) ------------------------------------------------

    def _paused(self, event: SpeechPaused) -> None:
        detector = self.policy.detector
        if detector is None:
            return
        started = time.perf_counter()
        try:
            probability = detector.probability(event.pcm)
        except Exception:  # a failing model leaves the silence timer in charge
            log.exception("turn-end model failed")
            return
        self._check = (probability, time.perf_counter() - started)
        finished = probability >= self.policy.threshold
        log.info("pause of %d ms: turn finished with probability %.2f (%.0f ms)", event.silence_ms, probability, self._check[1] * 1000)
        if finished and self.policy.early_start and self._on_early is not None:
            self._start_early(event.pcm, probability)  # generation overlaps the turn's bookkeeping, or the timer
        if finished and self.policy.mode != "silence":
            ended = self.vad.end_now()
            if isinstance(ended, SpeechEnded):
                self._ended(ended, "model")
            elif ended is not None:
                self._vad_event(ended)

    def _start_early(self, pcm: np.ndarray, probability: float) -> None:
        with self._lock:
            transcriber, previous, self._early = self._transcriber, self._early, None
        if previous is not None:  # speech resumed after an earlier pause: this one covers more
            previous.discard()
        if transcriber is None or self._on_early is None:
            return
        early = self._on_early(pcm, probability, transcriber.language)
        with self._lock:
            self._early = early
        if early is not None:
            transcriber.hold()

    def _resumed(self) -> None:
        with self._lock:
            transcriber, early = self._transcriber, self._early
        if early is not None:
            early.stale()
        if transcriber is not None:
            transcriber.hold(False)

    def _ended(self, event: SpeechEnded, decision: str) -> None:
        probability, model_s = self._check or (None, None)
        self._check = None
        turn_end = TurnEnd(self.policy.mode, decision, probability, model_s)
        transcriber, early = self._take_with_early(vad=True)
        self._send(transcriber, event.pcm, self.vad.last_silence_ms / 1000.0, turn_end, early)

    def _open(self, audio: np.ndarray) -> None:
        transcriber = self._new_transcriber()
        transcriber.append(audio)
        with self._lock:
            if self._push_to_talk:  # switched to push-to-talk while the VAD was deciding
                stale: StreamingTranscriber | None = transcriber
            else:
                stale, self._transcriber = self._transcriber, transcriber
        if stale is not None:
            stop_in_background(stale)
        if stale is not transcriber:
            self._emit(VadStateChanged("speech"))

    # -- utterances (any thread) ---------------------------------------------------------

    def _new_transcriber(self) -> StreamingTranscriber:
        return StreamingTranscriber(self.stt, language=self.language, emit=self._partial).start()

    def _take(self, *, vad: bool = False) -> StreamingTranscriber | None:
        """Take the utterance in progress; ``vad``: only a hands-free one (the VAD's to end)."""
        return self._take_with_early(vad=vad)[0]

    def _take_with_early(self, *, vad: bool = False) -> tuple[StreamingTranscriber | None, EarlyStart | None]:
        with self._lock:
            if vad and self._push_to_talk:
                return None, None
            transcriber, self._transcriber = self._transcriber, None
            early, self._early = self._early, None
        return transcriber, early

    def _send(self, transcriber: StreamingTranscriber | None, pcm: np.ndarray | None, end_silence_s: float,
              turn_end: TurnEnd, early: EarlyStart | None = None) -> None:
        """Hand a finished utterance on (``pcm`` None: the audio appended to ``transcriber``)."""
        clock = WaterfallClock(time.perf_counter(), end_silence_s, turn_end)
        self._emit(VadStateChanged(self.initial_state()))
        audio = np.zeros(0) if transcriber is None else transcriber.audio() if pcm is None else pcm
        if transcriber is None or len(audio) == 0:
            if early is not None:
                early.discard()
            if transcriber is not None:
                stop_in_background(transcriber)
            return
        self._on_utterance(Utterance(audio, transcriber, clock, early))

    def _partial(self, event: Any) -> None:  # a partial-transcript worker
        if isinstance(event, PartialTranscript):
            self._emit(PartialTranscriptUpdated(event.text))

    def _drop_transcriber(self, *, vad: bool = False) -> None:
        transcriber, early = self._take_with_early(vad=vad)
        if early is not None:
            early.discard()
        if transcriber is not None:
            stop_in_background(transcriber)

    # -- push-to-talk and mode (any thread) ------------------------------------------------

    def press(self) -> None:
        """The push-to-talk key went down: start an utterance."""
        transcriber = self._new_transcriber()
        with self._lock:
            if self._pressed:
                stale: StreamingTranscriber | None = transcriber
            else:
                self._pressed = True
                stale, self._transcriber = self._transcriber, transcriber
        if stale is not None:
            stop_in_background(stale)
        if stale is not transcriber:
            self._emit(VadStateChanged("speech"))

    def release(self) -> None:
        """The key came up: the utterance so far is sent on."""
        with self._lock:
            if not self._pressed:
                return
            self._pressed = False
            transcriber, self._transcriber = self._transcriber, None
        self._send(transcriber, None, 0.0, TurnEnd("push_to_talk", "key"))

    def close(self) -> None:
        """Forget an utterance in progress."""
        with self._lock:
            self._pressed = False
        self._drop_transcriber()

    def set_end_of_turn(self, vad: VoiceActivityDetector, policy: TurnPolicy) -> None:
        """Use another VAD and end-of-turn policy from the next utterance on (any thread)."""
        with self._lock:
            self._new_turn_setup = (vad, policy)

    def set_push_to_talk(self, on: bool) -> None:
        """Switch mode. To push-to-talk: an utterance in progress is forgotten. To hands-free:
        one recorded with the key down is sent on. The VAD starts afresh either way."""
        if on == self._push_to_talk:
            return
        if not on:
            self.release()
        with self._lock:
            self._push_to_talk = on
            self._reset_vad = True
            self._pressed = False
            stale, self._transcriber = self._transcriber, None
            early, self._early = self._early, None
        if early is not None:
            early.discard()
        if stale is not None:
            stop_in_background(stale)
