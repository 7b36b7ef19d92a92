"""Small helpers on PCM arrays: mono mix, resampling (soxr), levels, WAV files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

STT_RATE = 16000


def to_float32(pcm: np.ndarray) -> np.ndarray:
    """Samples as float32 in [-1, 1] (int16 input is scaled)."""
    if pcm.dtype == np.int16:
        return pcm.astype(np.float32) / 32768.0
    return np.asarray(pcm, dtype=np.float32)


def to_int16(pcm: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] as int16 (clipped)."""
    if pcm.dtype == np.int16:
        return pcm
    return (np.clip(pcm, -1.0, 1.0) * 32767.0).astype(np.int16)


def to_mono(pcm: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; 1-D input is returned as is."""
    return pcm if pcm.ndim == 1 else pcm.mean(axis=1, dtype=np.float32)


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole mono float32 signal with soxr (high quality)."""
    if from_rate == to_rate or len(pcm) == 0:
        return np.asarray(pcm, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(pcm, dtype=np.float32), from_rate, to_rate, quality="HQ")


class StreamResampler:
    """Resample a stream of blocks without clicks at block edges (soxr's stateful stream)."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        import soxr

        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1, dtype="float32")

    def process(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """The resampled part of ``block`` that is ready now (``last`` flushes the tail)."""
        block = np.asarray(block, dtype=np.float32)
        if self._stream is None:
            return block
        return self._stream.resample_chunk(block, last=last)


def rms_dbfs(pcm: np.ndarray) -> float:
    """Loudness as RMS in dBFS (-inf for digital silence)."""
    if len(pcm) == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(to_float32(pcm), dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def loudest_dbfs(pcm: np.ndarray, window: int = STT_RATE // 10) -> float:
    """RMS level (dBFS) of the loudest ``window``-sample stretch: speech anywhere shows up here."""
    data = to_float32(pcm)
    if len(data) == 0:
        return -math.inf
    n = max(1, len(data) // window)
    frames = data[: n * window].reshape(n, -1) if len(data) >= window else data.reshape(1, -1)
    power = float(np.max(np.mean(np.square(frames, dtype=np.float64), axis=1)))
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate: int) -> Path:
    """Write mono PCM as a 16-bit WAV file."""
    import soundfile

    path = Path(path)
    soundfile.write(str(path), to_int16(to_float32(pcm)), sample_rate, subtype="PCM_16")
    return path
