"""Speak a reply sentence by sentence while the rest is still being generated.

``SpeechOutput.say(sentence)`` only enqueues; a worker thread synthesizes each sentence with the
TTS and queues its audio on the :class:`~audio.playback.Player`. ``stop()`` (barge-in) cancels
synthesis between sentences, silences playback at once and reports what was actually heard.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from audio.events import AudioEventSink
from audio.playback import PlaybackReport, Player
from audio.tts import TextToSpeech

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(frozen=True)
class SentenceReady:
    """A sentence's audio is synthesized and queued for playback."""

    written: str
    spoken: str
    audio_s: float
    compute_s: float
    at: float  # time.monotonic() when it was queued


@dataclass(frozen=True)
class SpokenReply:
    """What a reply sounded like: everything queued, and the part the listener heard."""

    written: tuple[str, ...]
    spoken: tuple[str, ...]
    heard: tuple[str, ...]  # written sentences of which at least part was played
    interrupted: bool
    report: PlaybackReport

    @property
    def heard_text(self) -> str:
        """The heard sentences joined, as written."""
        return " ".join(self.heard)


class SpeechOutput:
    """One reply's speech: ``say`` sentences, then ``finish`` and ``wait``, or ``stop`` to cut it off."""

    def __init__(self, tts: TextToSpeech, player: Player, *, emit: AudioEventSink | None = None) -> None:
        self.tts = tts
        self.player = player
        self._emit = emit or (lambda event: None)
        self._sentences: queue.SimpleQueue = queue.SimpleQueue()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._synthesized = threading.Event()
        self._ready: list[SentenceReady] = []
        self.player.reset()
        self._thread = threading.Thread(target=self._run, name="tts-worker", daemon=True)
        self._thread.start()

    def say(self, sentence: str) -> None:
        """Queue a sentence to speak (returns at once)."""
        if not self._cancel.is_set():
            self._sentences.put(sentence)

    def finish(self) -> None:
        """No more sentences for this reply."""
        self._sentences.put(_DONE)

    def _run(self) -> None:
        while not self._cancel.is_set():
            sentence = self._sentences.get()
            if sentence is _DONE:
                break
            try:
                self._speak(sentence)
            except Exception:  # one bad sentence must not silence the rest of the reply
                log.exception("could not synthesize %r", sentence)
        self._synthesized.set()

    def _speak(self, sentence: str) -> None:
        for chunk in self.tts.synthesize(sentence, cancel=self._cancel):
            with self._lock:  # never queue audio after stop() has silenced the player
                if self._cancel.is_set():
                    return
                self.player.enqueue(chunk.pcm, chunk.sample_rate, tag=chunk.written)
            ready = SentenceReady(chunk.written, chunk.spoken, chunk.duration_s, chunk.compute_s, time.monotonic())
            self._ready.append(ready)
            self._emit(ready)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until everything said so far is synthesized and played (call ``finish`` first)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._synthesized.wait(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.player.wait(left)

    def stop(self) -> SpokenReply:
        """Barge-in: cancel synthesis, silence playback now, and report what was heard."""
        with self._lock:
            self._cancel.set()
        self._sentences.put(_DONE)
        report = self.player.stop()
        return self._reply(report, interrupted=True)

    def result(self) -> SpokenReply:
        """What was spoken, after ``wait`` returned (not interrupted)."""
        return self._reply(self.player.report(), interrupted=False)

    def _reply(self, report: PlaybackReport, interrupted: bool) -> SpokenReply:
        heard = tuple(dict.fromkeys(tag for tag in report.heard_tags() if tag))
        written = tuple(dict.fromkeys(r.written for r in self._ready))
        spoken = tuple(dict.fromkeys(r.spoken for r in self._ready))
        return SpokenReply(written=written, spoken=spoken, heard=heard, interrupted=interrupted, report=report)
