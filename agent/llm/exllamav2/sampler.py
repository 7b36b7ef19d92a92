"""Map :class:`SamplerSettings` onto exllamav2's ``ExLlamaV2Sampler.Settings``.

:func:`settings_mapping` builds a plain dict keyed by exllamav2's own attribute names, so the
mapping and its validation are testable without CUDA; :func:`build_exl2_settings` turns it into
the real object on the GPU machine (token bias as a tensor, DRY breakers as token ids).

Every field of ``ExLlamaV2Sampler.Settings`` is either in the mapping or in
:data:`RUNTIME_STATE` (state exllamav2 keeps while sampling, reset by a fresh object per reply).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from agent.errors import ConfigError
from agent.llm.sampler import SamplerSettings

# exllamav2 attribute -> our field (for messages and the documentation of the mapping)
FIELD_NAMES: dict[str, str] = {
    "temperature": "temperature",
    "smoothing_factor": "smoothing_factor",
    "min_temp": "min_temp",
    "max_temp": "max_temp",
    "temp_exponent": "temp_exponent",
    "top_k": "top_k",
    "top_p": "top_p",
    "top_a": "top_a",
    "min_p": "min_p",
    "tfs": "tfs",
    "typical": "typical_p",
    "skew": "skew",
    "temperature_last": "temperature_last",
    "token_repetition_penalty": "repeat_penalty",
    "token_repetition_range": "repeat_last_n",
    "token_repetition_decay": "repeat_decay",
    "token_frequency_penalty": "frequency_penalty",
    "token_presence_penalty": "presence_penalty",
    "mirostat": "mirostat_mode",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
    "token_bias": "token_bias",
    "cfg_scale": "cfg_scale",
    "dry_allowed_length": "dry_allowed_length",
    "dry_base": "dry_base",
    "dry_multiplier": "dry_multiplier",
    "dry_sequence_breakers": "dry_sequence_breakers",
    "dry_range": "dry_range",
    "dry_max_ngram": "dry_max_ngram",
    "xtc_probability": "xtc_probability",
    "xtc_threshold": "xtc_threshold",
    "xtc_ignore_tokens": "xtc_ignore_tokens",
}

# Settings fields that are sampler state or code, not choices: a new Settings per reply resets them.
RUNTIME_STATE: dict[str, str] = {
    "mirostat_mu": "Mirostat's running surprise target, initialised from mirostat_tau",
    "ngram_trie": "DRY's n-gram index of the context",
    "ngram_index": "DRY's position in that index",
    "ngram_history": "DRY's window of indexed positions",
    "post_sampling_hooks": "Python callbacks, not configuration",
}

# Fields of this backend's jobs (not of Settings) that the sampler also controls.
JOB_FIELDS: frozenset[str] = frozenset({"seed", "max_tokens", "stop", "top_logprobs"})


def _validate(s: SamplerSettings) -> None:
    if s.mode == "adaptive":
        raise ConfigError("sampler.mode = adaptive: entropy-adaptive sampling runs on the llama_cpp backend only; use mode = fixed with exllamav2")
    if s.mirostat_mode == 1:
        raise ConfigError("sampler.mirostat_mode = 1: exllamav2 has Mirostat v2 only; use 2 (or 0 for off)")
    if s.dry_multiplier > 0 and 0 < s.dry_range <= s.dry_max_ngram:
        raise ConfigError(
            f"sampler.dry_range = {s.dry_range}: must be 0 (whole context) or larger than dry_max_ngram ({s.dry_max_ngram})"
        )
    if s.max_temp and s.max_temp < s.min_temp:
        raise ConfigError(f"sampler.max_temp = {s.max_temp}: dynamic temperature needs max_temp >= min_temp ({s.min_temp})")


def settings_mapping(s: SamplerSettings) -> dict[str, Any]:
    """exllamav2 attribute name -> value, validated; raises ConfigError for values it can't honour."""
    _validate(s)
    values: dict[str, Any] = {exl2: getattr(s, ours) for exl2, ours in FIELD_NAMES.items()}
    values["mirostat"] = s.mirostat_mode == 2
    values["token_bias"] = dict(s.token_bias) or None
    values["dry_sequence_breakers"] = tuple(s.dry_sequence_breakers)
    values["xtc_ignore_tokens"] = None if s.xtc_ignore_tokens is None else frozenset(s.xtc_ignore_tokens)
    return values


def breaker_token_ids(pieces: Sequence[str], breakers: Iterable[str], special_ids: Iterable[int] = ()) -> set[int]:
    """Token ids DRY treats as sequence breakers: pieces containing any breaker string, plus special tokens.

    exllamav2 wants token ids; the config speaks in strings (as llama.cpp and most UIs do).
    """
    wanted = [b for b in breakers if b]
    ids = {i for i, piece in enumerate(pieces) if any(b in piece for b in wanted)}
    return ids | set(special_ids)


def bias_vector(bias: dict[int, float], vocab_size: int) -> list[float]:
    """Dense token-bias vector padded to a multiple of 32 (as exllamav2 pads its logits)."""
    bad = sorted(t for t in bias if not 0 <= t < vocab_size)
    if bad:
        raise ConfigError(f"sampler.token_bias: token ids {bad} are outside the model's vocabulary (0..{vocab_size - 1})")
    vector = [0.0] * (vocab_size + (-vocab_size % 32))
    for token, value in bias.items():
        vector[token] = float(value)
    return vector


def build_exl2_settings(s: SamplerSettings, tokenizer: Any, vocab_size: int) -> Any:
    """The real ``ExLlamaV2Sampler.Settings`` for one reply (imports exllamav2; CUDA machines only)."""
    import torch
    from exllamav2.generator import ExLlamaV2Sampler

    values = settings_mapping(s)
    bias = values.pop("token_bias")
    breakers = values.pop("dry_sequence_breakers")
    settings = ExLlamaV2Sampler.Settings(**values)
    if bias:
        settings.token_bias = torch.tensor(bias_vector(bias, vocab_size), dtype=torch.float)
    if s.dry_multiplier > 0:
        pieces = tokenizer.get_id_to_piece_list(True)
        specials = getattr(tokenizer, "extended_id_to_piece", {}) or {}
        settings.dry_sequence_breakers = breaker_token_ids(pieces, breakers, specials.keys())
    return settings
