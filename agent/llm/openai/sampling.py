"""Sampler settings as an OpenAI chat-completions request, and the values a remote server cannot take.

Standard fields go as they are; ``top_k``, ``min_p`` and the repetition penalty go in the request's
extra body (vLLM, TabbyAPI and llama.cpp's servers read them). The repetition penalty is sent under
both names in use: ``repetition_penalty`` (vLLM, TabbyAPI) and ``repeat_penalty`` (llama.cpp), with
``repeat_last_n`` (llama.cpp only; vLLM penalises the whole context). Everything else that is set
away from its default is refused by :func:`check_remote_sampler`, naming the fields.
"""

from __future__ import annotations

from typing import Any

from agent.errors import UserError
from agent.llm.sampler import SamplerSettings

# fields that shape sampling but have no meaning for an OpenAI-compatible server
UNSENDABLE: frozenset[str] = frozenset(
    {"typical_p", "mirostat_mode", "mirostat_tau", "mirostat_eta", "smoothing_factor", "min_temp", "max_temp",
     "temp_exponent", "top_a", "tfs", "skew", "temperature_last", "repeat_decay", "dry_multiplier", "dry_base",
     "dry_allowed_length", "dry_range", "dry_max_ngram", "dry_sequence_breakers", "xtc_probability",
     "xtc_threshold", "cfg_scale", "xtc_ignore_tokens", "mode"}
)
MAX_TOP_LOGPROBS = 20  # the OpenAI API's limit


def check_remote_sampler(sampler: SamplerSettings) -> None:
    """Refuse (UserError, naming them) values an OpenAI-compatible server cannot honour."""
    refused = sorted(k for k in sampler.changed_from_default() if k in UNSENDABLE)
    if refused:
        raise UserError(
            f"sampler {', '.join(refused)}: not available through an OpenAI-compatible server (backend openai); "
            "reset them to their defaults or use the llama_cpp / exllamav2 backend"
        )
    bad_bias = sorted(t for t, v in sampler.token_bias.items() if not -100.0 <= v <= 100.0)
    if bad_bias:
        raise UserError(f"sampler token_bias for token ids {bad_bias}: an OpenAI-compatible server takes biases from -100 to 100")


def request_fields(sampler: SamplerSettings, *, logprobs: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(standard keyword arguments, extra body) for ``chat.completions.create``."""
    fields: dict[str, Any] = {
        "temperature": sampler.temperature, "top_p": sampler.top_p, "max_tokens": sampler.max_tokens,
        "frequency_penalty": sampler.frequency_penalty, "presence_penalty": sampler.presence_penalty,
    }
    if sampler.stop:
        fields["stop"] = list(sampler.stop)
    if sampler.seed is not None:
        fields["seed"] = sampler.seed
    if sampler.token_bias:
        fields["logit_bias"] = {str(t): v for t, v in sampler.token_bias.items()}
    if logprobs:
        fields["logprobs"] = True
        if sampler.top_logprobs > 0:
            fields["top_logprobs"] = min(sampler.top_logprobs, MAX_TOP_LOGPROBS)
    return fields, _extensions(sampler)


def _extensions(sampler: SamplerSettings) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if sampler.top_k > 0:
        extra["top_k"] = sampler.top_k
    if sampler.min_p > 0.0:
        extra["min_p"] = sampler.min_p
    if sampler.repeat_penalty != 1.0:
        extra["repetition_penalty"] = extra["repeat_penalty"] = sampler.repeat_penalty
        extra["repeat_last_n"] = sampler.repeat_last_n
    return extra
