"""Speak a reply while it is still being generated.

Answer tokens -> :class:`FenceFilter` (code blocks out) -> :class:`audio.chunker.SentenceChunker`
-> a TTS worker thread (Piper; Markdown, emoji and reasoning removed, numbers spelled out) -> the
audio output's queue. The first sentence plays while the rest is still generating. Reasoning
tokens are never fed here. :meth:`SpokenReply.stop` silences the reply at once (barge-in) and the
:class:`SpokenOutcome` says what was actually heard.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from agent.voice.fences import FenceFilter
from agent.voice.waterfall import WaterfallClock
from audio.chunker import SentenceChunker
from audio.playback import PlaybackReport
from audio.protocols import TextToSpeech

log = logging.getLogger(__name__)

_DONE = object()
FIRST_AUDIO_POLL_S = 0.002


class AudioOut(Protocol):
    """Where a spoken reply goes: :class:`audio.playback.Player` or :class:`agent.voice.wavout.WavCollector`."""

    def reset(self) -> None:
        """Forget the played-chunk log (start of a reply)."""
        ...

    def enqueue(self, pcm: np.ndarray, sample_rate: int, tag: Any = None) -> None:
        """Queue audio to play; ``tag`` comes back in the report."""
        ...

    def stop(self) -> PlaybackReport:
        """Silence now; what was heard. May block briefly (a device abort)."""
        ...

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue has played out; False on timeout."""
        ...

    def report(self, stopped: bool = False) -> PlaybackReport:
        """What was played since the last reset."""
        ...


@dataclass
class _Sentence:
    written: str
    spoken: str
    index: int


@dataclass(frozen=True)
class SpokenOutcome:
    """What became of one spoken reply."""

    spoken_text: str  # normalised text sent to the voice
    heard_text: str  # written text of what was actually played (cut at the word where it stopped)
    interrupted: bool  # stopped before the end (barge-in)
    played_s: float  # seconds of audio played
    sentences: int  # sentences synthesized


@dataclass
class SpokenReply:
    """One reply being spoken; created by :meth:`Speaker.begin`.

    Threads: the engine's worker calls :meth:`feed` and :meth:`finish`; any thread may call
    :meth:`stop` (barge-in, Esc); the TTS worker synthesizes. ``_lock`` makes "stop" and
    "enqueue a chunk" exclusive, so nothing is queued after a stop, and guards ``_stopped_report``.
    """

    tts: TextToSpeech
    out: AudioOut
    clock: WaterfallClock
    on_speaking: Callable[[bool], None]  # called with True when the first audio is queued
    _fences: FenceFilter = field(default_factory=FenceFilter)
    _chunker: SentenceChunker = field(default_factory=SentenceChunker)
    _sentences: list[_Sentence] = field(default_factory=list)
    _queue: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    _cancel: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped_report: PlaybackReport | None = None
    _speaking: bool = False
    _worker: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.out.reset()
        self._worker = threading.Thread(target=self._synthesize_all, name="tts-worker", daemon=True)
        self._worker.start()

    # -- producer side (the engine's worker thread) ------------------------------------------

    def feed(self, text: str) -> None:
        """Add answer text (never reasoning); complete sentences go to the voice at once."""
        for sentence in self._chunker.feed(self._fences.feed(text)):
            self._push(sentence)

    def _push(self, sentence: str) -> None:
        said = self.tts.speakable(sentence)
        if not said.spoken or self._cancel.is_set():
            return
        item = _Sentence(sentence, said.spoken, len(self._sentences))
        self._sentences.append(item)
        self.clock.mark("first_sentence")
        self._queue.put(item)

    def finish(self, timeout: float | None = None) -> SpokenOutcome:
        """The reply is complete: speak the rest and wait until it has played (or was stopped)."""
        tail = self._fences.flush()
        for sentence in [*self._chunker.feed(tail), *self._chunker.flush()]:
            self._push(sentence)
        self._queue.put(_DONE)
        assert self._worker is not None
        self._worker.join(timeout)
        if not self._cancel.is_set():
            self.out.wait(timeout)
        return self._outcome()

    # -- barge-in ----------------------------------------------------------------------------

    def stop(self) -> SpokenOutcome:
        """Silence now and drop what is still queued or being synthesized."""
        with self._lock:
            self._cancel.set()
            if self._stopped_report is None:
                self._stopped_report = self.out.stop()
        self._queue.put(_DONE)
        return self._outcome()

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._cancel.is_set()

    # -- the TTS worker ----------------------------------------------------------------------

    def _synthesize_all(self) -> None:
        try:
            while (item := self._queue.get()) is not _DONE and not self._cancel.is_set():
                self._synthesize(item)
        except Exception:  # a failed synthesis must not end the conversation
            log.exception("speech synthesis failed")

    def _synthesize(self, item: _Sentence) -> None:
        for chunk in self.tts.synthesize(item.written, cancel=self._cancel):
            with self._lock:
                if self._cancel.is_set():
                    return
                self.out.enqueue(chunk.pcm, chunk.sample_rate, tag=item.index)
            if not self._speaking:
                self._speaking = True
                self.clock.duration("tts", chunk.compute_s)
                self.on_speaking(True)
                threading.Thread(target=self._watch_first_audio, name="first-audio", daemon=True).start()

    def _watch_first_audio(self) -> None:
        """Mark the waterfall when the output device has taken the first samples."""
        deadline = time.perf_counter() + 30.0
        while not self._cancel.is_set() and time.perf_counter() < deadline:
            if any(c.played > 0 for c in self.out.report().chunks):
                self.clock.mark("first_audio")
                return
            time.sleep(FIRST_AUDIO_POLL_S)

    # -- results -----------------------------------------------------------------------------

    def _outcome(self) -> SpokenOutcome:
        report = self._stopped_report or self.out.report()
        played: dict[int, list[int]] = {}
        for chunk in report.chunks:
            total = played.setdefault(chunk.tag, [0, 0])
            total[0] += chunk.played
            total[1] += chunk.samples
        heard = [_heard_part(s.written, *played.get(s.index, (0, 0))) for s in self._sentences]
        return SpokenOutcome(
            spoken_text=" ".join(s.spoken for s in self._sentences),
            heard_text=" ".join(h for h in heard if h),
            interrupted=self._stopped_report is not None,
            played_s=report.played_s,
            sentences=len(self._sentences),
        )


def _heard_part(written: str, played: int, samples: int) -> str:
    """The whole sentence when fully played; else the words up to where playback stopped."""
    if samples == 0 or played == 0:
        return ""
    if played >= samples:
        return written
    words = written.split()
    return " ".join(words[: int(len(words) * played / samples)])


class Speaker:
    """Turns replies into speech on one audio output."""

    def __init__(self, tts: TextToSpeech, out: AudioOut, on_speaking: Callable[[bool], None] | None = None) -> None:
        self.tts = tts
        self.out = out
        self.on_speaking = on_speaking or (lambda speaking: None)

    def begin(self, clock: WaterfallClock | None = None) -> SpokenReply:
        """Start speaking a new reply (the previous one must be finished or stopped)."""
        return SpokenReply(self.tts, self.out, clock or WaterfallClock(), self.on_speaking)


def speech_events(clock: WaterfallClock, reply: SpokenReply, forward: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
    """The engine's event sink for a spoken reply: waterfall marks, answer text to the voice, then ``forward``.

    Reasoning tokens never reach the voice; the first-token mark is taken once, not per token.
    """
    from agent.events import ReplyToken, TurnStarted

    first = [True]

    def on_event(event: Any) -> None:
        if isinstance(event, ReplyToken):
            if first:
                clock.mark("first_token")
                first.clear()
            if event.channel == "answer" and event.text:
                reply.feed(event.text)
        elif isinstance(event, TurnStarted):
            clock.mark("turn_started")
        if forward is not None:
            forward(event)

    return on_event
