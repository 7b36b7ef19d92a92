"""The capabilities of the audio package as small Protocols: speech-to-text, text-to-speech, VAD.

Code outside ``audio`` (the voice loop, the CLI, the TUI) types its collaborators against these,
not against the concrete classes: :class:`audio.stt.WhisperStt`, :class:`audio.tts.PiperTts` and
:class:`audio.vad.VadSegmenter` satisfy them, and so does any test double that subclasses them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from audio.settings import SttSettings, VadSettings
    from audio.stt import Transcript, WhisperStt
    from audio.textprep import SpokenText
    from audio.tts import PiperTts, SpeechChunk
    from audio.vad import VadEvent, VadSegmenter


class SpeechToText(Protocol):
    """Turns 16 kHz mono audio (or an audio file) into a :class:`~audio.stt.Transcript`."""

    @property
    def settings(self) -> SttSettings:
        """The ``[stt]`` settings it was loaded with (language, partials, partial interval)."""
        ...

    @property
    def model_name(self) -> str:
        """Name of the loaded model, for the dialogue log."""
        ...

    def transcribe(self, pcm: np.ndarray, *, final: bool = True, language: str | None = None,
                   cancel: threading.Event | None = None) -> Transcript:
        """An utterance from the microphone (final: full quality; partial: cheap). Blocking."""
        ...

    def transcribe_audio(self, audio: np.ndarray, *, language: str | None = None,
                         cancel: threading.Event | None = None) -> Transcript:
        """A whole recording (a voice message decoded by :func:`audio.files.load_audio_file`) at file
        quality: the file beam, stretches without speech skipped. Blocking."""
        ...

    def transcribe_file(self, path: str | os.PathLike[str], *, language: str | None = None) -> Transcript:
        """An audio file of any format, rate and channel count (AudioFileError when unreadable)."""
        ...


class TextToSpeech(Protocol):
    """Speaks text sentence by sentence."""

    @property
    def sample_rate(self) -> int:
        """Sample rate of the audio it produces."""
        ...

    def speakable(self, text: str) -> SpokenText:
        """What will actually be said for ``text`` (numbers spelled out, Markdown dropped)."""
        ...

    def synthesize(self, text: str, *, cancel: threading.Event | None = None) -> Iterator[SpeechChunk]:
        """One chunk per sentence, stopping between sentences when ``cancel`` is set. Blocking."""
        ...


class VoiceActivityDetector(Protocol):
    """Cuts a 16 kHz mono stream into utterance events."""

    @property
    def settings(self) -> VadSettings:
        """The ``[vad]`` settings (frame length, end silence)."""
        ...

    @property
    def in_speech(self) -> bool:
        """True while an utterance is in progress."""
        ...

    @property
    def frames_seen(self) -> int:
        """Frames fed since creation (time = frames_seen * frame_ms)."""
        ...

    def feed(self, pcm: np.ndarray) -> list[VadEvent]:
        """Add audio; return the events it completes."""
        ...

    def flush(self) -> list[VadEvent]:
        """End of stream: close an utterance in progress."""
        ...

    def reset(self) -> None:
        """Forget any utterance in progress."""
        ...

    def current_audio(self) -> np.ndarray:
        """Audio of the utterance in progress, float32."""
        ...

    @property
    def last_silence_ms(self) -> int:
        """Silence that ended the last utterance."""
        ...

    def end_now(self) -> VadEvent | None:
        """End the utterance in progress now (the turn-end model says it is finished)."""
        ...


if TYPE_CHECKING:  # mypy checks that the concrete classes keep satisfying the protocols

    def _conforms(stt: WhisperStt, tts: PiperTts, vad: VadSegmenter) -> tuple[SpeechToText, TextToSpeech, VoiceActivityDetector]:
        return stt, tts, vad
