"""Text-to-speech with Piper: any Piper voice by path, the starter English voice by default.

Text is made speakable first (:func:`audio.textprep.speakable`: no reasoning, code, Markdown or
emoji; numbers, dates and units spelled out), and each :class:`SpeechChunk` keeps both the written
and the spoken text. ``synthesize`` is a generator doing blocking work: iterate it in a worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from audio.errors import AudioModelError
from audio.pcm import write_wav
from audio.protocols import TextToSpeech as TextToSpeech  # re-exported
from audio.settings import TtsSettings
from audio.textprep import SpokenText, speakable

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class SpeechChunk:
    """Audio of one sentence Piper produced, with the text it came from."""

    written: str
    spoken: str
    pcm: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    compute_s: float
    index: int = 0  # sentence number within one synthesize() call

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.pcm) / self.sample_rate


def resolve_voice(spec: str | Path | None) -> Path:
    """The .onnx of a Piper voice: a path, or the starter voice for empty / "joe"."""
    from audio.starter import joe_voice_path

    if spec is None or str(spec).strip().lower() in ("", "joe", "starter", "en_us-joe-medium"):
        return joe_voice_path()
    path = Path(spec).expanduser()
    if not path.is_file():
        raise AudioModelError(f"{path}: Piper voice not found (give the path of its .onnx file)")
    if not Path(f"{path}.json").is_file():
        raise AudioModelError(f"{path}.json: Piper voice config missing (it must sit next to the .onnx)")
    return path


class PiperTts:
    """A loaded Piper voice behind the :class:`TextToSpeech` protocol."""

    def __init__(self, voice: Any, settings: TtsSettings, voice_path: Path) -> None:
        from piper import SynthesisConfig

        self.voice = voice
        self.settings = settings
        self.voice_path = voice_path
        self.sample_rate = int(voice.config.sample_rate)
        self.language = str(getattr(voice.config, "espeak_voice", "") or "")
        self._syn = SynthesisConfig(
            speaker_id=settings.speaker_id, length_scale=settings.length_scale, noise_scale=settings.noise_scale,
            noise_w_scale=settings.noise_w_scale, volume=settings.volume,
        )

    @classmethod
    def load(cls, settings: TtsSettings | None = None, *, voice: str | Path | None = None) -> PiperTts:
        """Load ``voice`` (or ``settings.voice``; empty = the starter English voice)."""
        from piper import PiperVoice

        settings = settings or TtsSettings()
        path = resolve_voice(settings.voice if voice is None else voice)
        try:
            loaded = PiperVoice.load(path)
        except Exception as exc:  # onnxruntime / json errors: one line for the user
            raise AudioModelError(f"{path}: cannot load Piper voice ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        log.info("Piper voice %s loaded (%d Hz)", path.name, loaded.config.sample_rate)
        return cls(loaded, settings, path)

    def speakable(self, text: str) -> SpokenText:
        """What will actually be said for ``text``."""
        return speakable(text, self.settings.language, normalise=self.settings.normalize)

    def synthesize(self, text: str, *, cancel: threading.Event | None = None) -> Iterator[SpeechChunk]:
        """One chunk per sentence; stops between sentences when ``cancel`` is set."""
        said = self.speakable(text)
        if not said.spoken:
            return
        started = time.perf_counter()
        for index, chunk in enumerate(self.voice.synthesize(said.spoken, syn_config=self._syn)):
            if cancel is not None and cancel.is_set():
                return
            now = time.perf_counter()
            pcm = np.asarray(chunk.audio_float_array, dtype=np.float32).reshape(-1)
            yield SpeechChunk(said.written, said.spoken, pcm, int(chunk.sample_rate), now - started, index)
            started = time.perf_counter()

    def synthesize_all(self, text: str) -> tuple[np.ndarray, SpokenText]:
        """The whole text as one array (float32 mono at ``sample_rate``) and what was said."""
        chunks = list(self.synthesize(text))
        pcm = np.concatenate([c.pcm for c in chunks]) if chunks else np.zeros(0, dtype=np.float32)
        return pcm, self.speakable(text)

    def synthesize_to_wav(self, text: str, path: str | Path) -> SpokenText:
        """Write the speech for ``text`` to a 16-bit WAV file."""
        pcm, said = self.synthesize_all(text)
        write_wav(path, pcm, self.sample_rate)
        return said
