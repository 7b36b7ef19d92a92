"""Sampler settings shared by every backend.

One model, one set of names: where llama.cpp and exllamav2 mean the same thing the field has one
name here, and each backend maps it to its own parameter. Fields that only one backend
understands say so in their description; a backend that cannot honour a non-default value of
such a field refuses it with a clear message (see ``unsupported_fields``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

SamplerMode = Literal["fixed", "adaptive"]
AdaptiveAction = Literal["argmax", "sample", "explore", "pause"]
ADAPTIVE_ACTIONS: tuple[AdaptiveAction, ...] = ("argmax", "sample", "explore", "pause")
ADAPTIVE_FIELDS = ("mode", "entropy_low", "entropy_high", "varentropy_low", "varentropy_high",
                   "explore_temp", "explore_top_k", "pause_text", "pause_max")


class SamplerSettings(BaseModel):
    """Every variable that shapes how the next token is chosen; logged with each turn."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=5.0, description="Softmax temperature; 0 means greedy.")
    top_k: int = Field(40, ge=0, description="Keep only the k most likely tokens (0 = off).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling: smallest set with this mass (1 = off).")
    min_p: float = Field(0.05, ge=0.0, le=1.0, description="Drop tokens below min_p x the top token's probability (0 = off).")
    typical_p: float = Field(1.0, gt=0.0, le=1.0, description="Locally typical sampling mass (1 = off).")
    repeat_penalty: float = Field(1.1, ge=0.0, description="Divide logits of recently seen tokens by this (1 = off).")
    repeat_last_n: int = Field(64, ge=-1, description="How many recent tokens the repeat penalty looks at (-1 = whole context).")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Subtract this x the count of a token seen before.")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="Subtract this once from every token seen before.")
    mirostat_mode: int = Field(0, ge=0, le=2, description="Mirostat: 0 off, 1 v1 (llama.cpp only), 2 v2.")
    mirostat_tau: float = Field(5.0, gt=0.0, description="Mirostat target surprise (cross-entropy).")
    mirostat_eta: float = Field(0.1, gt=0.0, description="Mirostat learning rate.")
    seed: int | None = Field(None, description="RNG seed for reproducible sampling (None = random each turn).")
    max_tokens: int = Field(512, ge=1, description="Most tokens to generate in one reply.")
    stop: tuple[str, ...] = Field((), description="Extra strings that end the reply (the template's end token always does).")
    # exllamav2-only samplers (llama.cpp refuses non-default values)
    smoothing_factor: float = Field(0.0, ge=0.0, description="Quadratic sampling smoothing factor (exllamav2 only, 0 = off).")
    min_temp: float = Field(0.0, ge=0.0, description="Dynamic temperature lower bound (exllamav2 only; used when max_temp > 0).")
    max_temp: float = Field(0.0, ge=0.0, description="Dynamic temperature upper bound (exllamav2 only, 0 = off).")
    temp_exponent: float = Field(1.0, gt=0.0, description="Dynamic temperature exponent (exllamav2 only).")
    top_a: float = Field(0.0, ge=0.0, description="Top-a truncation (exllamav2 only, 0 = off).")
    tfs: float = Field(0.0, ge=0.0, le=1.0, description="Tail-free sampling z (exllamav2 only, 0 = off).")
    skew: float = Field(0.0, description="Skew sampling (exllamav2 only, 0 = off).")
    temperature_last: bool = Field(False, description="Apply temperature after truncation (exllamav2 only).")
    repeat_decay: int = Field(0, ge=0, description="Repetition penalty fades over this many tokens (exllamav2 only).")
    dry_multiplier: float = Field(0.0, ge=0.0, description="DRY repetition penalty strength (exllamav2 only, 0 = off).")
    dry_base: float = Field(1.75, gt=0.0, description="DRY penalty base (exllamav2 only).")
    dry_allowed_length: int = Field(2, ge=0, description="Longest repeated sequence DRY allows unpenalised (exllamav2 only).")
    dry_range: int = Field(0, ge=0, description="How far back DRY looks (exllamav2 only, 0 = whole context).")
    dry_max_ngram: int = Field(20, ge=1, description="Longest n-gram DRY matches (exllamav2 only).")
    dry_sequence_breakers: tuple[str, ...] = Field(("\n", ":", "\"", "*"), description="Strings that break DRY sequences (exllamav2 only).")
    xtc_probability: float = Field(0.0, ge=0.0, le=1.0, description="XTC: chance to exclude top choices (exllamav2 only, 0 = off).")
    xtc_threshold: float = Field(0.1, ge=0.0, le=1.0, description="XTC probability threshold (exllamav2 only).")
    token_bias: dict[int, float] = Field(default_factory=dict, description="Add this value to the logit of these token ids.")
    cfg_scale: float | None = Field(None, description="Classifier-free guidance scale (exllamav2 only; None = off).")
    top_logprobs: int = Field(5, ge=0, le=20, description="How many top alternatives to record per token in telemetry.")
    xtc_ignore_tokens: tuple[int, ...] | None = Field(None, description="Token ids XTC never excludes (exllamav2 only; None = newline and special tokens).")
    # entropy-adaptive sampling (llama.cpp only; see ``adaptive_action``)
    mode: SamplerMode = Field("fixed", description="fixed: the sampler above for every token; adaptive: per token, entropy and varentropy choose argmax / sample / explore / pause (llama_cpp only).")
    entropy_low: float = Field(0.5, ge=0.0, description="Adaptive: entropy (nats) at or below which, with varentropy <= varentropy_low, the token is argmax.")
    entropy_high: float = Field(3.0, ge=0.0, description="Adaptive: entropy (nats) at or above which the token is explored (raised temperature, wider top-k).")
    varentropy_low: float = Field(1.5, ge=0.0, description="Adaptive: varentropy (nats²) at or below which, with entropy <= entropy_low, the token is argmax.")
    varentropy_high: float = Field(6.0, ge=0.0, description="Adaptive: varentropy (nats²) at or above which the token is explored; with entropy >= entropy_high too, pause.")
    explore_temp: float = Field(1.2, gt=0.0, le=5.0, description="Adaptive: the temperature of an explored token.")
    explore_top_k: int = Field(100, ge=0, description="Adaptive: the top-k of an explored token (0 = off).")
    pause_text: str = Field("", description="Adaptive: text inserted into the reply when entropy and varentropy are both high ('' = never).")
    pause_max: int = Field(1, ge=0, le=8, description="Adaptive: at most this many pauses per reply.")

    @field_validator("stop", "dry_sequence_breakers", mode="before")
    @classmethod
    def _tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("entropy_high", "varentropy_high")
    @classmethod
    def _at_least_low(cls, value: float, info: ValidationInfo) -> float:
        low_name = info.field_name.replace("_high", "_low") if info.field_name else ""
        low = info.data.get(low_name)
        if low is not None and value < low:
            raise PydanticCustomError("threshold_order", "{value} is below {low_name} ({low}); a high threshold must not be below its low one",
                                      {"value": value, "low_name": low_name, "low": low})
        return value

    def adaptive_action(self, entropy: float, varentropy: float, *, may_pause: bool) -> AdaptiveAction:
        """What adaptive mode does with a token whose full distribution has this entropy and
        varentropy: argmax when both are low (confident), pause (insert ``pause_text``) when both
        are high and ``may_pause``, explore when either is high, else the normal sampler."""
        high_h, high_v = entropy >= self.entropy_high, varentropy >= self.varentropy_high
        if high_h and high_v and may_pause and self.pause_text:
            return "pause"
        if high_h or high_v:
            return "explore"
        if entropy <= self.entropy_low and varentropy <= self.varentropy_low:
            return "argmax"
        return "sample"

    def merged(self, overrides: dict[str, Any] | None) -> SamplerSettings:
        """Return a copy with ``overrides`` applied and validated."""
        if not overrides:
            return self
        return SamplerSettings.model_validate({**self.model_dump(), **overrides})

    def changed_from_default(self) -> dict[str, Any]:
        """The fields whose value differs from the default."""
        default = SamplerSettings()
        return {k: v for k, v in self.model_dump().items() if getattr(default, k) != getattr(self, k)}


EXLLAMAV2_ONLY: frozenset[str] = frozenset(
    {
        "smoothing_factor", "min_temp", "max_temp", "temp_exponent", "top_a", "tfs", "skew",
        "temperature_last", "repeat_decay", "dry_multiplier", "dry_base", "dry_allowed_length",
        "dry_range", "dry_max_ngram", "dry_sequence_breakers", "xtc_probability", "xtc_threshold",
        "cfg_scale", "xtc_ignore_tokens",
    }
)


def unsupported_fields(settings: SamplerSettings, supported_extra: frozenset[str]) -> list[str]:
    """Names of backend-specific fields set away from their default that a backend can't honour."""
    changed = settings.changed_from_default()
    return sorted(k for k in changed if k in EXLLAMAV2_ONLY and k not in supported_extra)
