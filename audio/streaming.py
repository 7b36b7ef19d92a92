"""Partial transcripts while the user is still speaking, then the final one.

A worker thread re-transcribes the growing utterance every ``interval_ms`` with cheap settings and
emits :class:`PartialTranscript`; :meth:`StreamingTranscriber.finish` abandons a partial still in
progress (its result is dropped; it is never waited for) and transcribes the whole utterance with
full settings at once, on Whisper's second worker. A language detected confidently by a partial is
reused. :meth:`hold` pauses the partials while something better is being transcribed (the voice
loop's early start at a pause).
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from audio.events import AudioEventSink, FinalTranscript, PartialTranscript
from audio.pcm import STT_RATE, to_float32
from audio.protocols import SpeechToText
from audio.stt import Transcript, language_arg

log = logging.getLogger(__name__)

MIN_PARTIAL_S = 0.5
PIN_LANGUAGE_PROB = 0.9


class StreamingTranscriber:
    """One utterance: ``start()``, ``append(pcm)`` as audio arrives, ``finish()`` for the final text."""

    def __init__(self, stt: SpeechToText, *, interval_ms: int | None = None, language: str | None = None,
                 emit: AudioEventSink | None = None, partials: bool | None = None) -> None:
        self.stt = stt
        self.interval_s = (interval_ms or stt.settings.partial_interval_ms) / 1000.0
        self.language = language_arg(language if language is not None else stt.settings.language)
        self.partials = stt.settings.partials if partials is None else partials
        self._emit = emit or (lambda event: None)
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._held = threading.Event()
        self._busy = threading.Event()  # set while a partial is being transcribed
        self._thread: threading.Thread | None = None
        self.last_partial = ""

    def start(self) -> StreamingTranscriber:
        """Start the partial-transcript worker (no-op when partials are off)."""
        if self.partials and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stt-partials", daemon=True)
            self._thread.start()
        return self

    def append(self, pcm: np.ndarray) -> None:
        """Add audio of the utterance (16 kHz mono); cheap, safe from any thread."""
        block = to_float32(pcm)
        with self._lock:
            self._chunks.append(block)
            self._samples += len(block)

    def audio(self) -> np.ndarray:
        """All audio appended so far."""
        with self._lock:
            return np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)

    def _run(self) -> None:
        done = 0
        while not self._stop.wait(self.interval_s):
            if self._samples - done < STT_RATE * 0.2 or self._samples < STT_RATE * MIN_PARTIAL_S or self._held.is_set():
                continue
            audio = self.audio()
            done = len(audio)
            self._busy.set()
            try:
                result = self.stt.transcribe(audio, final=False, language=self.language, cancel=self._stop)
            except Exception:  # a failed partial must never end the conversation
                log.exception("partial transcript failed")
                continue
            finally:
                self._busy.clear()
            self._pin_language(result)
            if result.text and result.text != self.last_partial and not self._stop.is_set():
                self.last_partial = result.text
                self._emit(PartialTranscript(text=result.text, audio_s=result.audio_s))

    def _pin_language(self, result: Transcript) -> None:
        if self.language is None and result.language and result.language_probability >= PIN_LANGUAGE_PROB:
            self.language = result.language

    def stop(self) -> None:
        """Stop the partial worker (waits for a partial in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def abandon(self) -> bool:
        """Stop the partial worker without waiting; True if a partial was still being transcribed
        (it finishes in the background and its result is dropped)."""
        self._stop.set()
        return self._busy.is_set()

    def hold(self, on: bool = True) -> None:
        """Pause (or resume) the partials; one in progress finishes."""
        if on:
            self._held.set()
        else:
            self._held.clear()

    def finish(self, pcm: np.ndarray | None = None, cancel: threading.Event | None = None) -> Transcript:
        """Final transcript of ``pcm`` (default: the appended audio), started at once (a partial in
        progress is abandoned, not waited for); emits :class:`FinalTranscript`."""
        self.abandon()
        audio = self.audio() if pcm is None else to_float32(pcm)
        result = self.stt.transcribe(audio, final=True, language=self.language, cancel=cancel)
        self._emit(FinalTranscript(transcript=result))
        return result
