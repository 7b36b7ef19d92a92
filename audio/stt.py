"""Speech-to-text with faster-whisper: utterances, files, and a guard against phantom text.

``WhisperStt.load(settings)`` loads the model (default: the starter Whisper base, int8 on CPU).
``transcribe(pcm)`` takes 16 kHz mono float32 and returns a :class:`Transcript` with its
confidence; the lazy segment generator is consumed here, so call it from a worker thread.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.errors import AudioModelError
from audio.files import (
    load_audio_file as load_audio_file,  # re-exported: callers import it from here
)
from audio.pcm import STT_RATE, loudest_dbfs, to_float32
from audio.phantom import PhantomGuard, SegmentStats
from audio.protocols import SpeechToText as SpeechToText  # re-exported
from audio.settings import SttSettings
from audio.vad import speech_spans

log = logging.getLogger(__name__)

STARTER_NAMES = ("", "base", "starter", "whisper-base")
WORKERS = 2  # CPU model replicas: a final transcript never queues behind an abandoned partial one (on a GPU one is quick)


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
            loaded = WhisperModel(spec, device=settings.device, compute_type=settings.compute_type, cpu_threads=threads,
                                  num_workers=WORKERS if settings.device == "cpu" else 1)
        except Exception as exc:  # ctranslate2/hub raise many types; the user needs one line
            raise AudioModelError(f"cannot load Whisper model {spec!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        log.info("Whisper model %s loaded (%s, %s)", spec, settings.device, settings.compute_type)
        return cls(loaded, settings, Path(spec).name or spec)

    def options(self, *, final: bool = True, language: str | None = None, recording: bool = False) -> dict[str, Any]:
        """Keyword arguments for ``WhisperModel.transcribe``.

        final: full quality (``beam_size``); partial: greedy and cheap; recording (a file or voice
        message, not latency-bound): ``file_beam_size``, faster-whisper's own default of 5.
        """
        s = self.settings
        beam = s.file_beam_size if recording else s.beam_size if final else 1
        opts: dict[str, Any] = dict(
            language=language_arg(language if language is not None else s.language),
            beam_size=beam,
            condition_on_previous_text=False,
            initial_prompt=s.initial_prompt or None,
            hotwords=s.hotwords or None,
            no_speech_threshold=s.no_speech_threshold,
            log_prob_threshold=s.logprob_threshold,
            compression_ratio_threshold=s.compression_ratio_threshold,
        )
        if not final and not recording:
            opts.update(temperature=0.0, without_timestamps=True)
        return opts

    def transcribe(self, pcm: np.ndarray, *, final: bool = True, language: str | None = None,
                   cancel: threading.Event | None = None, vad_filter: bool = False) -> Transcript:
        """Transcribe a 16 kHz mono utterance (blocking; iterate in a worker thread).

        ``vad_filter`` skips long stretches without speech (see :func:`audio.vad.speech_spans`);
        for a whole recording use :meth:`transcribe_audio`, which also takes the file beam.
        """
        opts = self.options(final=final, language=language)
        return self._run(to_float32(pcm), opts, final=final, cancel=cancel, skip_silence=vad_filter)

    def transcribe_audio(self, audio: np.ndarray, *, language: str | None = None,
                         cancel: threading.Event | None = None) -> Transcript:
        """Transcribe a whole recording (a decoded file or voice message) at file quality (blocking)."""
        opts = self.options(language=language, recording=True)
        return self._run(to_float32(audio), opts, final=True, cancel=cancel, skip_silence=self.settings.file_vad_filter)

    def transcribe_file(self, path: str | os.PathLike[str], *, language: str | None = None) -> Transcript:
        """Transcribe an audio file (wav, flac, mp3, ogg/opus...; any rate or channel count)."""
        return self.transcribe_audio(load_audio_file(path), language=language)

    def _run(self, audio: np.ndarray, opts: dict[str, Any], *, final: bool, cancel: threading.Event | None,
             skip_silence: bool) -> Transcript:
        started = time.perf_counter()
        if len(audio) == 0 or (cancel is not None and cancel.is_set()):
            return self._empty(audio, final, started, cancelled=len(audio) > 0)
        level = loudest_dbfs(audio)
        if level < self.settings.silence_dbfs:
            return self._empty(audio, final, started, dropped=(f"near-silent audio ({level:.0f} dBFS)",))
        if skip_silence:
            spans = speech_spans(audio)
            if not spans:
                return self._empty(audio, final, started, dropped=("no speech found by the VAD",))
            if spans != [(0.0, len(audio) / STT_RATE)]:
                opts = opts | {"clip_timestamps": [t for span in spans for t in span]}
        segments, info = self.model.transcribe(audio, **opts)
        raw: list[Any] = []
        for seg in segments:  # the lazy generator does the decoding work here
            raw.append(seg)
            if cancel is not None and cancel.is_set():
                break
        return self._build(audio, raw, info, final, started, cancelled=bool(cancel and cancel.is_set()))

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
