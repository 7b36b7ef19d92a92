"""Configuration models: every section of config.toml, validated and frozen once loaded.

Defaults here equal the documented ``config.toml`` at the repository root (a test keeps them in
step). Loading, file discovery, environment overrides and provenance live in
:mod:`agent.config_load`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.llm.exllamav2.settings import ExLlamaV2Settings
from agent.llm.sampler import SamplerSettings
from audio.settings import AudioSettings, SttSettings, TtsSettings, VadSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LlmSettings(_Section):
    """Which language model runs and how it is loaded."""

    backend: str = Field("llama_cpp", description="Backend name: llama_cpp or exllamav2.")
    model: str = Field("", description="Model file/folder path or a starter model name; empty = the embedded default (SmolLM2-135M-Instruct).")
    context_size: int = Field(4096, ge=256, description="Context window in tokens (capped at the model's trained length).")
    threads: int = Field(0, ge=0, description="CPU threads for llama.cpp; 0 = all cores.")
    gpu_layers: int = Field(0, ge=-1, description="Layers llama.cpp offloads to a GPU (-1 = all, 0 = CPU only).")
    batch_size: int = Field(512, ge=1, description="Prompt-processing batch size.")


class ChatSettings(_Section):
    """The conversation itself."""

    persona: str = Field("assistant", description="Persona used when none is chosen on the command line.")
    personas_dir: str = Field("personas", description="Folder of persona TOML files, relative to the config file (missing is fine).")


class LogSettings(_Section):
    """The dialogue log (SQLite)."""

    enabled: bool = Field(True, description="Record every turn in the dialogue log.")
    path: str = Field("", description="Database file; empty = <data dir>/dialogues.sqlite3.")
    keep_audio: bool = Field(True, description="Keep each spoken utterance as a WAV file referenced from the log.")


class PathsSettings(_Section):
    """Where user data and models live."""

    data_dir: str = Field("", description="User data folder; empty = $XDG_DATA_HOME/epistemic-engine (~/.local/share/epistemic-engine).")
    models_dir: str = Field("models", description="Folder scanned for your own models, relative to the config file.")


class AdapterRef(_Section):
    """A LoRA adapter a persona applies (PEFT folder or GGUF LoRA file)."""

    path: str = Field(description="Adapter folder (PEFT) or .gguf file.")
    scale: float = Field(1.0, description="How strongly the adapter is applied.")


class PersonaSettings(_Section):
    """A persona: who the model is in this conversation."""

    description: str = Field("", description="One line shown in lists.")
    system_prompt: str = Field("", description="The system message that opens every prompt.")
    language: str = Field("en", description="The persona's language (ru, en): speech recognition and voice follow it.")
    sampler: dict[str, Any] = Field(default_factory=dict, description="Sampler values that override [sampler] for this persona.")
    adapters: tuple[AdapterRef, ...] = Field((), description="LoRA adapters applied while this persona speaks.")
    voice: str = Field("", description="Piper voice .onnx for this persona; empty = [tts] voice.")


class Settings(_Section):
    """The whole configuration."""

    llm: LlmSettings = LlmSettings()
    sampler: SamplerSettings = SamplerSettings()
    chat: ChatSettings = ChatSettings()
    log: LogSettings = LogSettings()
    paths: PathsSettings = PathsSettings()
    audio: AudioSettings = AudioSettings()
    vad: VadSettings = VadSettings()
    stt: SttSettings = SttSettings()
    tts: TtsSettings = TtsSettings()
    exllamav2: ExLlamaV2Settings = ExLlamaV2Settings()
    personas: dict[str, PersonaSettings] = Field(default_factory=dict, description="Personas defined inline ([personas.NAME]).")
