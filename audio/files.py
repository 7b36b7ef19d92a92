"""Audio files decoded to 16 kHz mono float32, with one clear line for anything that isn't audio.

Decoding is faster-whisper's own (PyAV with its resampler), so a file reaches Whisper exactly as
raw faster-whisper hears it when given the path. Everything that can go wrong with a file (missing,
empty, not audio, truncated, too long) is an :class:`~audio.errors.AudioFileError` with one line.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from audio.errors import AudioFileError
from audio.pcm import STT_RATE

log = logging.getLogger(__name__)

MAX_FILE_S = 3 * 3600.0  # longer recordings would not fit in memory comfortably (~700 MB of float32)
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what tools streaming WAV to a pipe write: length unknown


def load_audio_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode any audio file to 16 kHz mono float32 (AudioFileError with one line when it can't)."""
    p = Path(path)
    _check_exists(p)
    declared = declared_seconds(p)
    if declared is not None and declared > MAX_FILE_S:
        raise AudioFileError(f"{p}: too long ({declared / 60:.0f} min; at most {MAX_FILE_S / 60:.0f} min)")
    audio = _decode(p)
    if len(audio) == 0:
        raise AudioFileError(f"{p}: no audio in file (empty or truncated)")
    _check_complete(p, len(audio) / STT_RATE, declared)
    return audio


def _check_exists(p: Path) -> None:
    if not p.exists():
        raise AudioFileError(f"{p}: file not found")
    if not p.is_file():
        raise AudioFileError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: empty file")


def _decode(p: Path) -> np.ndarray:
    from faster_whisper import decode_audio

    try:
        audio = decode_audio(str(p), sampling_rate=STT_RATE)
    except MemoryError:
        raise AudioFileError(f"{p}: too large to decode in memory") from None
    except Exception as exc:  # PyAV raises many error types for broken input
        raise AudioFileError(f"{p}: not a readable audio file ({_one_line(exc)})") from None
    return np.asarray(audio, dtype=np.float32).reshape(-1)


def _one_line(exc: Exception) -> str:
    """A decoder error without errno noise, the repeated file name or FFmpeg's call details."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return re.sub(r":\s*'.*$", "", text) or type(exc).__name__


def _check_complete(path: Path, decoded_s: float, declared: float | None) -> None:
    """AudioFileError when the file's header promises much more audio than could be decoded."""
    if declared and decoded_s < 0.9 * declared - 0.05:
        raise AudioFileError(f"{path}: truncated file (header says {declared:.1f} s, only {decoded_s:.1f} s present)")
    promised = _wav_promised_bytes(path)
    size = path.stat().st_size
    if promised is not None and size < promised - 64:
        raise AudioFileError(f"{path}: truncated WAV file ({size} of {promised} bytes)")


def _wav_promised_bytes(path: Path) -> int | None:
    """The file size a WAV's RIFF and data chunk headers promise; None for other files or unknown sizes."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    riff = int.from_bytes(head[4:8], "little")
    promised = riff + 8 if riff not in _UNKNOWN_SIZES else 0
    pos = 12
    while pos + 8 <= len(head):  # walk the chunks up to "data"
        size = int.from_bytes(head[pos + 4:pos + 8], "little")
        if head[pos:pos + 4] == b"data":
            if size not in _UNKNOWN_SIZES:
                promised = max(promised, pos + 8 + size)
            break
        pos += 8 + size + (size & 1)
    return promised or None


def declared_seconds(path: Path) -> float | None:
    """Duration stored in the stream header (e.g. FLAC's sample count), when there is a usable one."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001 - a header we cannot read just has no declared duration
        return None
    return None
