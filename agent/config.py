"""Configuration models: every section of config.toml, validated and frozen once loaded.

Defaults here equal the documented ``config.toml`` at the repository root (a test keeps them in
step). Loading, file discovery, environment overrides and provenance live in
:mod:`agent.config_load`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.knowledge.settings import KnowledgeSettings
from agent.llm.exllamav2.settings import ExLlamaV2Settings
from agent.llm.openai.settings import OpenAISettings
from agent.llm.sampler import SamplerSettings
from agent.train.settings import TrainSettings
from audio.settings import AudioSettings, SttSettings, TtsSettings, VadSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LlmSettings(_Section):
    """Which language model runs and how it is loaded."""

    backend: str = Field("llama_cpp", description="Backend name: llama_cpp, exllamav2 or openai.")
    model: str = Field("", description="Model file/folder path or a starter model name; empty = the embedded default (SmolLM2-135M-Instruct).")
    context_size: int = Field(4096, ge=256, le=1 << 24, description="Context window in tokens (capped at the model's trained length).")
    threads: int = Field(0, ge=0, le=4096, description="CPU threads for llama.cpp; 0 = all cores.")
    gpu_layers: int = Field(0, ge=-1, le=100_000, description="Layers llama.cpp offloads to a GPU (-1 = all, 0 = CPU only).")
    batch_size: int = Field(512, ge=1, le=1 << 24, description="Prompt-processing batch size.")
    moe_routing: bool = Field(False, description="llama.cpp, mixture-of-experts models: record each token's chosen experts, gate weights and router entropy (costs speed, see bench/bench_moe.py).")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from agent.llm import BACKENDS

        if value not in BACKENDS:
            raise ValueError(f"unknown backend; choose one of {', '.join(sorted(BACKENDS))}")
        return value


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
    retrieve: Literal["none", "knowledge", "memory", "both"] = Field("none", description="What each turn retrieves into the prompt as numbered sources: none, knowledge (your documents), memory (past dialogues) or both.")


class Settings(_Section):
    """The whole configuration."""

    llm: LlmSettings = Field(default_factory=LlmSettings, description="[llm] which language model runs and how it is loaded.")
    sampler: SamplerSettings = Field(default_factory=SamplerSettings, description="[sampler] how the next token is chosen.")
    chat: ChatSettings = Field(default_factory=ChatSettings, description="[chat] the conversation: default persona, personas folder.")
    log: LogSettings = Field(default_factory=LogSettings, description="[log] the dialogue log (SQLite).")
    paths: PathsSettings = Field(default_factory=PathsSettings, description="[paths] where user data and models live.")
    audio: AudioSettings = Field(default_factory=AudioSettings, description="[audio] microphone, speaker and turn taking.")
    vad: VadSettings = Field(default_factory=VadSettings, description="[vad] when speech starts and ends.")
    stt: SttSettings = Field(default_factory=SttSettings, description="[stt] speech-to-text (Whisper).")
    tts: TtsSettings = Field(default_factory=TtsSettings, description="[tts] text-to-speech (Piper).")
    exllamav2: ExLlamaV2Settings = Field(default_factory=ExLlamaV2Settings, description="[exllamav2] the GPU backend's cache, splits and speculative decoding.")
    openai: OpenAISettings = Field(default_factory=OpenAISettings, description="[openai] the remote OpenAI-compatible server (vLLM, TabbyAPI, llama.cpp) the openai backend talks to.")
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings, description="[knowledge] your documents and past dialogues, retrieved per turn.")
    train: TrainSettings = Field(default_factory=TrainSettings, description="[train] LoRA training defaults for `epistemic train sft|dpo`.")
    personas: dict[str, PersonaSettings] = Field(default_factory=dict, description="Personas defined inline ([personas.NAME]).")
