"""Configuration models of the audio pipeline (the [audio], [vad], [stt] and [tts] sections)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioSettings(_Section):
    """Microphone and speaker."""

    input_device: str | int | None = Field(None, description="Input device name (substring) or index; None = system default.")
    output_device: str | int | None = Field(None, description="Output device name (substring) or index; None = system default.")


class VadSettings(_Section):
    """Voice activity detection."""

    aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad aggressiveness, 0 (lenient) to 3 (strict).")


class SttSettings(_Section):
    """Speech-to-text."""

    model: str = Field("", description="faster-whisper model: a folder path or a name; empty = the starter Whisper base.")
    language: str = Field("auto", description="Language code (ru, en) or auto.")


class TtsSettings(_Section):
    """Text-to-speech."""

    voice: str = Field("", description="Piper voice .onnx path; empty = the starter English voice.")
