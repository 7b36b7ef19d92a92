"""Events of the voice loop, for the TUI and the plain-terminal consumer.

Small frozen dataclasses. The loop calls its ``on_event`` callback from worker threads (never
from a PortAudio callback); the callback must be quick and thread-safe (the TUI posts a message).
The engine's own events (:mod:`agent.events`) reach the same callback during a reply;
``DeviceLost`` is the audio package's own event, passed on as it is, and what the user should
see (no device, nothing heard...) is the engine's :class:`agent.events.Notice`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.events import Notice
from audio.events import (
    DeviceLost,  # the microphone or speaker is gone: the loop stops, typing continues
)

VadState = Literal["idle", "speech", "muted", "push_to_talk", "off"]


@dataclass(frozen=True)
class MicLevel:
    """Microphone loudness (RMS, dBFS) over the last ~100 ms."""

    dbfs: float


@dataclass(frozen=True)
class VadStateChanged:
    """idle: listening for speech; speech: an utterance is in progress; muted: the agent is
    speaking in half-duplex; push_to_talk: waiting for the key; off: the loop stopped."""

    state: VadState


@dataclass(frozen=True)
class PartialTranscriptUpdated:
    """The best guess so far of what the user is saying (shown, never logged)."""

    text: str


@dataclass(frozen=True)
class UserUtterance:
    """A final transcript that is about to be answered; ``audio_path`` is None when not kept."""

    text: str
    audio_path: str | None
    stt: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SpeakingChanged:
    """The agent started or stopped speaking."""

    speaking: bool


@dataclass(frozen=True)
class BargedIn:
    """The user interrupted the reply: playback stopped and generation was cancelled."""

    heard_text: str


@dataclass(frozen=True)
class WaterfallReady:
    """A spoken reply ended: its latency waterfall (see :class:`agent.voice.waterfall.Waterfall`)."""

    turn_id: int | None
    waterfall: Any  # agent.voice.waterfall.Waterfall


VoiceEvent = (
    MicLevel | VadStateChanged | PartialTranscriptUpdated | UserUtterance | SpeakingChanged | BargedIn
    | WaterfallReady | Notice | DeviceLost
)
VoiceEventSink = Callable[[Any], None]  # receives VoiceEvent and agent.events.EngineEvent
