"""The listening half of the voice loop: microphone frames -> utterances.

Runs in one worker thread. Hands-free: the VAD opens and closes utterances. Push-to-talk:
:meth:`Listener.press` / :meth:`Listener.release` do. Partial transcripts stream while the user
speaks. While ``is_muted()`` (the agent speaking in half-duplex) frames are dropped and the VAD is
reset, so the agent never hears itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.voice.events import MicLevel, PartialTranscriptUpdated, VadStateChanged
from agent.voice.waterfall import WaterfallClock
from audio.events import PartialTranscript, SpeechEnded, SpeechRejected, SpeechStarted
from audio.pcm import rms_dbfs
from audio.streaming import StreamingTranscriber

log = logging.getLogger(__name__)

LEVEL_EVERY_S = 0.1


@dataclass
class Utterance:
    """A finished utterance waiting for its final transcript."""

    pcm: np.ndarray
    transcriber: StreamingTranscriber
    clock: WaterfallClock


class Listener:
    """Turns microphone blocks into :class:`Utterance` objects (``on_utterance``)."""

    def __init__(
        self,
        *,
        vad: Any,  # audio.vad.VadSegmenter
        stt: Any,  # audio.stt.WhisperStt
        language: str | None,
        push_to_talk: bool,
        emit: Callable[[Any], None],
        on_utterance: Callable[[Utterance], None],
        on_speech_started: Callable[[float], None],
        is_muted: Callable[[], bool],
    ) -> None:
        self.vad = vad
        self.stt = stt
        self.language = language
        self.push_to_talk = push_to_talk
        self._emit = emit
        self._on_utterance = on_utterance
        self._on_speech_started = on_speech_started
        self._is_muted = is_muted
        self._transcriber: StreamingTranscriber | None = None
        self._pressed = threading.Event()
        self._lock = threading.Lock()
        self._muted = False
        self._level: list[np.ndarray] = []
        self._level_at = 0.0

    def initial_state(self) -> str:
        """The VAD state shown before anything was heard."""
        return "push_to_talk" if self.push_to_talk else "idle"

    # -- the capture thread --------------------------------------------------------------

    def feed(self, block: np.ndarray) -> None:
        """One block of 16 kHz mono microphone audio."""
        self._meter(block)
        if self._check_muted():
            return
        if self.push_to_talk:
            with self._lock:
                if self._pressed.is_set() and self._transcriber is not None:
                    self._transcriber.append(block)
            return
        had = self._transcriber is not None
        for event in self.vad.feed(block):
            self._vad_event(event)
        if had and self._transcriber is not None and self.vad.in_speech:
            self._transcriber.append(block)

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
        elif isinstance(event, SpeechEnded):
            self._close(event.pcm, self.vad.settings.end_silence_ms / 1000.0)
        elif isinstance(event, SpeechRejected):
            log.info("utterance rejected: %s", event.reason)
            self._drop_transcriber()
            self._emit(VadStateChanged("idle"))

    def _open(self, audio: np.ndarray) -> None:
        transcriber = StreamingTranscriber(self.stt, language=self.language, emit=self._partial)
        transcriber.append(audio)
        self._transcriber = transcriber.start()
        self._emit(VadStateChanged("speech"))

    def _close(self, pcm: np.ndarray | None, end_silence_s: float) -> None:
        clock = WaterfallClock(time.perf_counter(), end_silence_s)
        with self._lock:
            transcriber, self._transcriber = self._transcriber, None
        self._emit(VadStateChanged(self.initial_state()))
        if transcriber is None:
            return
        audio = transcriber.audio() if pcm is None else pcm
        if len(audio) == 0:
            transcriber.stop()
            return
        self._on_utterance(Utterance(audio, transcriber, clock))

    def _partial(self, event: Any) -> None:  # the partial-transcript thread
        if isinstance(event, PartialTranscript):
            self._emit(PartialTranscriptUpdated(event.text))

    def _drop_transcriber(self) -> None:
        with self._lock:
            transcriber, self._transcriber = self._transcriber, None
        if transcriber is not None:
            threading.Thread(target=transcriber.stop, name="stt-partials-stop", daemon=True).start()

    # -- push-to-talk (any thread) -------------------------------------------------------

    def press(self) -> None:
        """The push-to-talk key went down: start an utterance."""
        with self._lock:
            if self._pressed.is_set():
                return
            self._pressed.set()
            self._transcriber = StreamingTranscriber(self.stt, language=self.language, emit=self._partial).start()
        self._emit(VadStateChanged("speech"))

    def release(self) -> None:
        """The key came up: the utterance so far is sent on."""
        if not self._pressed.is_set():
            return
        self._pressed.clear()
        self._close(None, 0.0)

    def close(self) -> None:
        """Forget an utterance in progress."""
        self._pressed.clear()
        self._drop_transcriber()
