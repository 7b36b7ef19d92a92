"""An audio output that collects the reply into memory (for ``epistemic reply -o answer.wav``).

It has the same shape as :class:`audio.playback.Player` (enqueue, wait, stop, report, reset), so
the same :class:`agent.voice.speaker.Speaker` writes a file or talks through a device.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from audio.pcm import resample, to_float32, write_wav
from audio.playback import PlaybackReport, PlayedChunk


class WavCollector:
    """Keeps every queued chunk; "played" the moment it is queued."""

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self._chunks: list[tuple[np.ndarray, Any]] = []
        self._lock = threading.Lock()

    def enqueue(self, pcm: np.ndarray, sample_rate: int, tag: Any = None) -> None:
        """Keep ``pcm`` (resampled to the collector's rate)."""
        data = resample(to_float32(pcm).reshape(-1), sample_rate, self.rate)
        with self._lock:
            self._chunks.append((data, tag))

    def wait(self, timeout: float | None = None) -> bool:
        """Nothing to wait for: the audio is already "played"."""
        return True

    @property
    def playing(self) -> bool:
        """Never busy."""
        return False

    def report(self, stopped: bool = False) -> PlaybackReport:
        """Every chunk, completely played."""
        with self._lock:
            chunks = tuple(PlayedChunk(tag, len(pcm), len(pcm)) for pcm, tag in self._chunks)
        return PlaybackReport(chunks=chunks, sample_rate=self.rate, stopped=stopped)

    def stop(self) -> PlaybackReport:
        """What was collected so far."""
        return self.report(stopped=True)

    def reset(self) -> None:
        """Forget the collected audio."""
        with self._lock:
            self._chunks = []

    def audio(self) -> np.ndarray:
        """All collected audio, float32 mono at ``rate``."""
        with self._lock:
            parts = [pcm for pcm, _ in self._chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def write(self, path: str | Path) -> Path:
        """Write the collected audio as a 16-bit WAV file."""
        return write_wav(path, self.audio(), self.rate)
