"""Events the audio building blocks emit: small frozen dataclasses, safe to pass between threads.

Producers call a plain ``emit(event)`` callback that must only enqueue (it may run on a PortAudio
thread). Events holding audio keep it as float32 mono numpy arrays and compare by identity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from audio.stt import Transcript


@dataclass(frozen=True)
class SpeechStarted:
    """The VAD heard speech begin; ``at_s`` is the stream time (seconds) of the first voiced frame."""

    at_s: float


@dataclass(frozen=True, eq=False)
class SpeechEnded:
    """An utterance ended: ``pcm`` is 16 kHz mono float32 including the pre-roll."""

    pcm: np.ndarray
    start_s: float
    end_s: float
    sample_rate: int = 16000

    @property
    def duration_s(self) -> float:
        """Length of the utterance audio in seconds."""
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True)
class SpeechRejected:
    """A started utterance turned out to be noise (too short, or Silero disagreed)."""

    reason: str
    at_s: float


@dataclass(frozen=True)
class PartialTranscript:
    """Best guess of what is being said so far (shown, never logged as the turn)."""

    text: str
    audio_s: float


@dataclass(frozen=True)
class FinalTranscript:
    """The transcript of a whole utterance."""

    transcript: Transcript


@dataclass(frozen=True)
class DeviceLost:
    """The microphone or speaker stopped working; the caller should fall back to typing."""

    kind: str  # "input" or "output"
    message: str


@dataclass(frozen=True)
class PlaybackFinished:
    """Playback ended, drained or stopped; ``report`` says what was actually heard."""

    report: Any  # audio.playback.PlaybackReport
    stopped: bool = field(default=False)


AudioEvent = (
    SpeechStarted | SpeechEnded | SpeechRejected | PartialTranscript | FinalTranscript | DeviceLost | PlaybackFinished
)
AudioEventSink = Callable[[AudioEvent], None]
