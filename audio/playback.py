"""Playback: a queue of PCM chunks played through a PortAudio output stream, stoppable at once.

``enqueue`` resamples to the device's rate in the caller's thread; the PortAudio callback only
copies queued samples out. ``stop()`` drops the queue and the device buffer and returns a
:class:`PlaybackReport` of what was actually played, so the log can keep the part heard.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from audio.devices import AudioDevice, find_device
from audio.errors import DeviceError
from audio.events import AudioEventSink, DeviceLost, PlaybackFinished
from audio.pcm import resample, to_float32
from audio.streams import abort_stream, close_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlayedChunk:
    """One queued chunk and how much of it reached the speaker."""

    tag: Any
    samples: int
    played: int

    @property
    def complete(self) -> bool:
        """True when the whole chunk was played."""
        return self.played >= self.samples


@dataclass(frozen=True)
class PlaybackReport:
    """What was played since the last :meth:`Player.reset`."""

    chunks: tuple[PlayedChunk, ...]
    sample_rate: int
    stopped: bool = False

    @property
    def played_s(self) -> float:
        """Seconds of audio played."""
        return sum(c.played for c in self.chunks) / self.sample_rate

    def heard_tags(self) -> list[Any]:
        """Tags of chunks of which at least something was played, in order."""
        return [c.tag for c in self.chunks if c.played > 0]


def _is_active(stream: Any) -> bool:
    """``stream.active``; False when asking fails (the device is gone)."""
    try:
        return bool(stream.active)
    except Exception:  # PortAudio error from a vanished device
        return False


class _Entry:
    __slots__ = ("pcm", "pos", "tag")

    def __init__(self, pcm: np.ndarray, tag: Any) -> None:
        self.pcm, self.pos, self.tag = pcm, 0, tag


class Player:
    """Plays queued chunks on an output device; ``stop()`` silences it at once.

    Threads: ``enqueue``/``stop``/``reset``/``close`` are called by one owner (the speaker's TTS
    worker or the voice loop); ``_on_audio``/``_on_finished`` run on PortAudio's thread. ``_lock``
    guards the queue, the played-chunk log and ``_buffered``. The stream is aborted through
    :func:`abort_stream`, so a vanished device cannot hang ``stop()``: it is abandoned and a
    :class:`DeviceLost` is emitted instead.
    """

    def __init__(self, device: str | int | None = None, *, block_ms: int = 20, latency_s: float = 0.1,
                 emit: AudioEventSink | None = None) -> None:
        self.device_spec = device
        self.block_ms = block_ms
        self.latency_s = latency_s
        self._emit = emit or (lambda event: None)
        self._lock = threading.Lock()
        self._queue: collections.deque[_Entry] = collections.deque()
        self._log: list[_Entry] = []
        self._idle = threading.Event()
        self._idle.set()
        self._stream: Any = None  # sounddevice.OutputStream (untyped library)
        self._closing = False
        self._stopping = False
        self.first_audio_at: float | None = None  # time.monotonic() of the first block since reset()
        self._buffered = 0  # samples handed to the device but not yet heard (from PortAudio's DAC time)
        self.device: AudioDevice | None = None
        self.rate = 0

    def start(self) -> None:
        """Open the output device (DeviceError when there is none)."""
        self.device = find_device(self.device_spec, "output")
        self.rate = int(self.device.default_samplerate) or 48000
        self._open(self.device)

    def _open(self, device: AudioDevice) -> None:
        import sounddevice as sd

        try:
            self._stream = sd.OutputStream(
                device=device.index, samplerate=self.rate, channels=1, dtype="float32",
                blocksize=self.rate * self.block_ms // 1000, latency=self.latency_s,
                callback=self._on_audio, finished_callback=self._on_finished,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot open output device {device.name!r}: {exc}") from None

    def enqueue(self, pcm: np.ndarray, sample_rate: int, tag: Any = None) -> None:
        """Queue mono audio at ``sample_rate`` for playback (resampled here, not in the callback)."""
        data = resample(to_float32(pcm).reshape(-1), sample_rate, self.rate)
        entry = _Entry(data, tag)
        with self._lock:
            self._queue.append(entry)
            self._log.append(entry)
            self._idle.clear()
        if self._stream is not None and not self._stream.active and not self._closing:
            self._stream.start()  # restarted after a stop()

    def _on_audio(self, outdata, frames, time_info, status) -> None:  # PortAudio thread
        out = outdata[:, 0]
        filled = 0
        ahead = max(0.0, time_info.outputBufferDacTime - time_info.currentTime)
        with self._lock:
            self._buffered = int(ahead * self.rate) + frames
            while filled < frames and self._queue:
                entry = self._queue[0]
                n = min(frames - filled, len(entry.pcm) - entry.pos)
                out[filled:filled + n] = entry.pcm[entry.pos:entry.pos + n]
                entry.pos += n
                filled += n
                if entry.pos >= len(entry.pcm):
                    self._queue.popleft()
            drained = filled > 0 and not self._queue
        if filled and self.first_audio_at is None:
            self.first_audio_at = time.monotonic()
        out[filled:] = 0.0
        if drained:
            self._idle.set()
            self._emit(PlaybackFinished(report=self.report()))

    def _on_finished(self) -> None:  # PortAudio thread
        if not self._closing and self._stream is not None and not self._stopping:
            self._idle.set()
            self._emit(DeviceLost(kind="output", message="the output stream ended unexpectedly (device lost)"))

    def stop(self) -> PlaybackReport:
        """Silence now: drop queued audio and the device buffer; report what was heard."""
        with self._lock:
            playing = not self._idle.is_set()
            self._queue.clear()
            self._discount(self._buffered if playing else 0)
        self._stopping = True
        lost = False
        try:
            stream = self._stream
            if stream is not None and _is_active(stream) and not abort_stream(stream, "output"):
                self._stream, lost = None, True  # it hung in PortAudio: abandoned to its thread
        finally:
            self._stopping = False
            self._idle.set()
        if lost:
            self._emit(DeviceLost(kind="output", message="the output device did not stop (device lost)"))
        report = self.report(stopped=True)
        self._emit(PlaybackFinished(report=report, stopped=True))
        return report

    def _discount(self, samples: int) -> None:
        """Take back samples handed to the device but still in its buffer when stopped."""
        for entry in reversed(self._log):
            take = min(samples, entry.pos)
            entry.pos -= take
            samples -= take
            if samples <= 0:
                return

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the queue has played out; False on timeout."""
        return self._idle.wait(timeout)

    @property
    def playing(self) -> bool:
        """True while queued audio remains."""
        return not self._idle.is_set()

    def report(self, stopped: bool = False) -> PlaybackReport:
        """What was played since the last reset."""
        chunks = tuple(PlayedChunk(e.tag, len(e.pcm), e.pos) for e in self._log)
        return PlaybackReport(chunks=chunks, sample_rate=self.rate, stopped=stopped)

    def reset(self) -> None:
        """Forget the played-chunk log (call at the start of each reply)."""
        with self._lock:
            self._log = [e for e in self._log if e in self._queue]
            self.first_audio_at = None

    def close(self) -> None:
        """Stop and close the device."""
        self._closing = True
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream, "output")

    def __enter__(self) -> Player:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
