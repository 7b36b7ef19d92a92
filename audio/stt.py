"""Speech-to-text with faster-whisper: utterances, files, and a guard against phantom text.

``WhisperStt.load(settings)`` loads the model (default: the starter Whisper base, int8 on CPU).
``transcribe(pcm)`` takes 16 kHz mono float32 and returns a :class:`Transcript` with its
confidence; the lazy segment generator is consumed here, so call it from a worker thread.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from audio.errors import AudioFileError, AudioModelError
from audio.pcm import STT_RATE, loudest_dbfs, to_float32
from audio.phantom import PhantomGuard, SegmentStats
from audio.settings import SttSettings

log = logging.getLogger(__name__)

STARTER_NAMES = ("", "base", "starter", "whisper-base")


@dataclass(frozen=True)
class TranscriptSegment:
    """One Whisper segment that survived the phantom guard."""

    text: str
    start_s: float
    end_s: float
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float


@dataclass(frozen=True)
class Transcript:
    """What was said, and how sure Whisper was of it."""

    text: str
    language: str
    language_probability: float
    confidence: float  # duration-weighted mean of exp(avg_logprob) over kept segments, 0..1
    no_speech_prob: float  # duration-weighted mean over all segments Whisper produced
    audio_s: float
    compute_s: float
    model: str
    is_final: bool = True
    segments: tuple[TranscriptSegment, ...] = ()
    dropped: tuple[str, ...] = ()  # why text was removed by the phantom guard
    cancelled: bool = False

    def as_record(self) -> dict[str, Any]:
        """Plain dict for the dialogue log (no segment list)."""
        data = asdict(self)
        data.pop("segments")
        data["dropped"] = list(self.dropped)
        return data


class SpeechToText(Protocol):
    """The speech-to-text capability."""

    def transcribe(self, pcm: np.ndarray, *, final: bool = True, language: str | None = None,
                   cancel: threading.Event | None = None) -> Transcript: ...

    def transcribe_file(self, path: str | os.PathLike[str], *, language: str | None = None) -> Transcript: ...


def resolve_model(spec: str) -> str:
    """A faster-whisper model argument: the starter folder, an existing folder, or a model name."""
    from audio.starter import whisper_base_dir

    if spec.strip().lower() in STARTER_NAMES:
        return str(whisper_base_dir())
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_absolute() or spec.startswith((".", "~")) or path.suffix == ".bin":
        raise AudioModelError(f"{spec}: Whisper model folder not found")
    return spec  # a model name faster-whisper downloads (needs a network once)


def language_arg(language: str | None) -> str | None:
    """None for automatic detection, else the code."""
    return None if not language or language.lower() == "auto" else language.lower()


class WhisperStt:
    """faster-whisper behind the :class:`SpeechToText` protocol."""

    def __init__(self, model: Any, settings: SttSettings, model_name: str) -> None:
        self.model = model
        self.settings = settings
        self.model_name = model_name
        self.guard = PhantomGuard(settings)

    @classmethod
    def load(cls, settings: SttSettings | None = None, *, model: str | None = None) -> WhisperStt:
        """Load the model named by ``model`` or ``settings.model`` (AudioModelError on failure)."""
        from faster_whisper import WhisperModel

        settings = settings or SttSettings()
        spec = resolve_model(settings.model if model is None else model)
        threads = settings.threads or os.cpu_count() or 1
        try:
            loaded = WhisperModel(spec, device=settings.device, compute_type=settings.compute_type, cpu_threads=threads)
        except Exception as exc:  # ctranslate2/hub raise many types; the user needs one line
            raise AudioModelError(f"cannot load Whisper model {spec!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        log.info("Whisper model %s loaded (%s, %s)", spec, settings.device, settings.compute_type)
        return cls(loaded, settings, Path(spec).name or spec)

    def options(self, *, final: bool = True, language: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``WhisperModel.transcribe`` (final: full quality; partial: cheap)."""
        s = self.settings
        opts: dict[str, Any] = dict(
            language=language_arg(language if language is not None else s.language),
            beam_size=s.beam_size if final else 1,
            condition_on_previous_text=False,
            initial_prompt=s.initial_prompt or None,
            hotwords=s.hotwords or None,
            no_speech_threshold=s.no_speech_threshold,
            log_prob_threshold=s.logprob_threshold,
            compression_ratio_threshold=s.compression_ratio_threshold,
        )
        if not final:
            opts.update(temperature=0.0, without_timestamps=True)
        return opts

    def transcribe(self, pcm: np.ndarray, *, final: bool = True, language: str | None = None,
                   cancel: threading.Event | None = None, vad_filter: bool = False) -> Transcript:
        """Transcribe 16 kHz mono audio (blocking; iterate in a worker thread)."""
        audio = to_float32(pcm)
        started = time.perf_counter()
        if len(audio) == 0 or (cancel is not None and cancel.is_set()):
            return self._empty(audio, final, started, cancelled=len(audio) > 0)
        level = loudest_dbfs(audio)
        if level < self.settings.silence_dbfs:
            return self._empty(audio, final, started, dropped=(f"near-silent audio ({level:.0f} dBFS)",))
        segments, info = self.model.transcribe(audio, vad_filter=vad_filter, **self.options(final=final, language=language))
        raw: list[Any] = []
        for seg in segments:  # the lazy generator does the decoding work here
            raw.append(seg)
            if cancel is not None and cancel.is_set():
                break
        return self._build(audio, raw, info, final, started, cancelled=bool(cancel and cancel.is_set()))

    def transcribe_file(self, path: str | os.PathLike[str], *, language: str | None = None) -> Transcript:
        """Transcribe an audio file (wav, flac, mp3, ogg/opus...; any rate or channel count)."""
        audio = load_audio_file(path)
        return self.transcribe(audio, language=language, vad_filter=self.settings.file_vad_filter)

    def _empty(self, audio: np.ndarray, final: bool, started: float, cancelled: bool = False,
               dropped: tuple[str, ...] = ()) -> Transcript:
        return Transcript("", "", 0.0, 0.0, 1.0, len(audio) / STT_RATE, time.perf_counter() - started, self.model_name,
                          is_final=final, dropped=dropped, cancelled=cancelled)

    def _build(self, audio: np.ndarray, raw: list[Any], info: Any, final: bool, started: float, cancelled: bool) -> Transcript:
        kept, dropped = self._filter(raw)
        text = "".join(s.text for s in kept).strip()
        confidence = _weighted([(s.end_s - s.start_s, math.exp(s.avg_logprob)) for s in kept], default=0.0)
        no_speech = _weighted([(s.end - s.start, s.no_speech_prob) for s in raw], default=1.0)
        reason = self.guard.transcript_reason(text, loudest_dbfs(audio), no_speech, confidence) if text else None
        if reason:
            log.info("dropped phantom transcript: %s", reason)
            kept, text, confidence, dropped = [], "", 0.0, [*dropped, reason]
        return Transcript(
            text=text, language=info.language or "", language_probability=float(info.language_probability or 0.0),
            confidence=confidence, no_speech_prob=no_speech, audio_s=len(audio) / STT_RATE,
            compute_s=time.perf_counter() - started, model=self.model_name, is_final=final,
            segments=tuple(kept), dropped=tuple(dropped), cancelled=cancelled,
        )

    def _filter(self, raw: list[Any]) -> tuple[list[TranscriptSegment], list[str]]:
        kept: list[TranscriptSegment] = []
        dropped: list[str] = []
        for s in raw:
            stats = SegmentStats(s.text, s.no_speech_prob, s.avg_logprob, s.compression_ratio)
            reason = self.guard.segment_reason(stats)
            if reason:
                dropped.append(f"{s.text.strip()!r}: {reason}")
                continue
            kept.append(TranscriptSegment(s.text, s.start, s.end, s.avg_logprob, s.no_speech_prob, s.compression_ratio))
        return kept, dropped


def _weighted(pairs: list[tuple[float, float]], default: float) -> float:
    """Mean of values weighted by durations (each at least 10 ms); ``default`` when empty."""
    if not pairs:
        return default
    weights = [max(duration, 0.01) for duration, _ in pairs]
    return float(sum(w * v for w, (_, v) in zip(weights, pairs, strict=True)) / sum(weights))


def _one_line(exc: Exception) -> str:
    """A decoder error without errno noise or the repeated file name."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return re.sub(r":\s*'[^']*'$", "", text)


def load_audio_file(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode any audio file to 16 kHz mono float32 (AudioFileError with one line when it can't)."""
    from faster_whisper import decode_audio

    p = Path(path)
    if not p.is_file():
        raise AudioFileError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise AudioFileError(f"{p}: empty file")
    try:
        audio = decode_audio(str(p), sampling_rate=STT_RATE)
    except Exception as exc:  # PyAV raises many error types for broken input
        detail = _one_line(exc)
        raise AudioFileError(f"{p}: not a readable audio file ({detail})") from None
    if len(audio) == 0:
        raise AudioFileError(f"{p}: no audio in file (empty or truncated)")
    _check_complete(p, len(audio) / STT_RATE)
    return audio


def _check_complete(path: Path, decoded_s: float) -> None:
    """AudioFileError when the file's header promises much more audio than could be decoded."""
    declared = _declared_seconds(path)
    if declared and decoded_s < 0.9 * declared - 0.05:
        raise AudioFileError(f"{path}: truncated file (header says {declared:.1f} s, only {decoded_s:.1f} s present)")
    with path.open("rb") as f:
        head = f.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        riff_size = int.from_bytes(head[4:8], "little") + 8
        if path.stat().st_size < riff_size - 64:
            raise AudioFileError(f"{path}: truncated WAV file ({path.stat().st_size} of {riff_size} bytes)")


def _declared_seconds(path: Path) -> float | None:
    """Duration stored in the stream header (e.g. FLAC's sample count), when there is one."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, IndexError):
        return None
    return None
