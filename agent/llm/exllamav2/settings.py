"""The [exllamav2] configuration section (GPU backend).

The model folder itself is ``[llm] model``; this section says how it is placed on the GPU(s):
sequence length, KV-cache precision, how layers are split across cards, and speculative decoding.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CacheType = Literal["fp16", "q4", "q6", "q8"]
CACHE_TYPES: tuple[str, ...] = ("fp16", "q4", "q6", "q8")


class ExLlamaV2Settings(BaseModel):
    """How the exllamav2 backend loads the model on the GPU."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_seq_len: int = Field(0, ge=0, description="Longest prompt + reply in tokens; 0 = [llm] context_size.")
    cache_size: int = Field(0, ge=0, description="KV-cache size in tokens shared by all jobs; 0 = max_seq_len.")
    cache_type: CacheType = Field("fp16", description="KV cache precision: fp16, q8, q6 or q4 (smaller = more context, slightly less exact).")
    gpu_split: tuple[float, ...] = Field((), description="GB of weights per GPU, e.g. [20, 24]; empty = autosplit.")
    reserve_vram_mb: int = Field(512, ge=0, description="Autosplit: VRAM in MB left free on each GPU (activations, LoRAs, other programs).")
    max_chunk_size: int = Field(2048, ge=64, description="Most prompt tokens processed in one forward pass while reading the prompt.")
    paged: bool = Field(False, description="Paged attention (needs flash-attn): batching and CFG; off = one job at a time.")
    full_logits: bool = Field(True, description="Return full logits per token so entropy and logprob are exact (costs a little speed).")
    draft_model: str = Field("", description="Folder of a small model of the same tokenizer used for speculative decoding; empty = none.")
    draft_cache_type: CacheType = Field("fp16", description="KV cache precision of the draft model: fp16, q8, q6 or q4.")
    ngram_draft: bool = Field(False, description="Speculative decoding from n-grams of the context itself (no draft model needed).")
    max_ngram: int = Field(4, ge=2, le=16, description="Longest n-gram the n-gram drafter matches.")
    num_draft_tokens: int = Field(4, ge=1, le=16, description="Tokens drafted ahead per step (draft model or n-gram).")
    keep_adapters_loaded: bool = Field(True, description="Keep LoRA adapters of earlier personas in VRAM so switching back is instant.")

    @field_validator("cache_type", "draft_cache_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("gpu_split", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            return (value,)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("gpu_split")
    @classmethod
    def _positive_split(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(gb <= 0 for gb in value):
            raise ValueError("every gpu_split entry must be a positive number of GB")
        return value

    @model_validator(mode="after")
    def _one_drafter(self) -> ExLlamaV2Settings:
        if self.draft_model and self.ngram_draft:
            raise ValueError("draft_model and ngram_draft exclude each other: choose one way of drafting")
        return self

    @property
    def speculative_method(self) -> str | None:
        """``"draft_model"``, ``"ngram"`` or None."""
        if self.draft_model:
            return "draft_model"
        return "ngram" if self.ngram_draft else None
