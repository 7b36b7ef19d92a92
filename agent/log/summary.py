"""One-line human summaries of stored turns: sampler, model, timings, telemetry."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from agent.llm.base import TokenStep, token_id_label
from agent.llm.sampler import SamplerSettings

# the sampler values worth a glance; the rest are shown only when changed from their default
_HEADLINE = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed", "max_tokens")


def when(ts: float, *, seconds: bool = False) -> str:
    """Local date and time of a unix timestamp."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def sampler_line(sampler: dict[str, Any] | None) -> str:
    """``temperature=0.7 top_k=40 ... (+ dry_multiplier=0.8)``: headline values plus non-defaults."""
    if not sampler:
        return "(not recorded)"
    defaults = SamplerSettings().model_dump(mode="json")
    parts = [f"{k}={_fmt(sampler[k])}" for k in _HEADLINE if k in sampler]
    changed = [f"{k}={_fmt(v)}" for k, v in sampler.items()
               if k not in _HEADLINE and k in defaults and defaults[k] != v]
    unknown = [f"{k}={_fmt(v)}" for k, v in sampler.items() if k not in _HEADLINE and k not in defaults]
    return " ".join(parts + changed + unknown)


def model_line(data: dict[str, Any]) -> str:
    """``llama_cpp SmolLM2-135M · adapters: pirate×0.8``."""
    line = f"{data.get('backend') or '?'} {data.get('model_id') or '?'}"
    adapters = data.get("adapters") or []
    if adapters:
        names = [f"{a.get('id', '?')}×{_fmt(a.get('scale', 1.0))}" for a in adapters if isinstance(a, dict)]
        line += " · adapters: " + ", ".join(names)
    return line


def timing_line(data: dict[str, Any]) -> str:
    """``stop eos · 23 tokens · ttft 0.12 s · 19.5 tok/s · speculative 12/20``."""
    timings = data.get("timings") or {}
    parts = [f"stop {data.get('stop_reason') or '?'}"]
    tokens = timings.get("completion_tokens", data.get("token_count"))
    if tokens is not None:
        parts.append(f"{tokens} tokens")
    if timings.get("time_to_first_token") is not None:
        parts.append(f"ttft {timings['time_to_first_token']:.2f} s")
    if timings.get("tokens_per_second"):
        parts.append(f"{timings['tokens_per_second']:.1f} tok/s")
    spec = data.get("speculative")
    if spec:
        parts.append(f"speculative {spec.get('method', '?')} {spec.get('accepted', '?')}/{spec.get('proposed', '?')} accepted")
    return " · ".join(parts)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return sum(known) / len(known) if known else None


def telemetry_line(steps: Sequence[TokenStep]) -> str:
    """``telemetry: 23 tokens · mean entropy 1.23 nats · mean logprob -0.87``."""
    parts = [f"telemetry: {len(steps)} tokens"]
    entropy = _mean([s.entropy for s in steps])
    logprob = _mean([s.logprob for s in steps])
    if entropy is not None:
        parts.append(f"mean entropy {entropy:.2f} nats")
    if logprob is not None:
        parts.append(f"mean logprob {logprob:.2f}")
    drafts = [s.accepted_draft for s in steps if s.accepted_draft is not None]
    if drafts:
        parts.append(f"{sum(drafts)}/{len(drafts)} from draft")
    return " · ".join(parts)


def _num(value: float | None, width: int) -> str:
    return f"{value:>{width}.3f}" if value is not None else " " * (width - 1) + "-"


def token_table(steps: Sequence[TokenStep], top: int = 3, *, lower_bound: bool = False) -> list[str]:
    """Per-token rows: index, id, piece, logprob, entropy, draft flag, the top alternatives.

    ``lower_bound``: the entropies come from the top-k only (a remote server); the header says so."""
    head = "entropy>=" if lower_bound else "entropy"
    lines = [f"{'#':>5} {'id':>7}  {'piece':<16} {'logprob':>8} {head:>9} {'draft':>5}  top"]
    for s in steps:
        draft = "" if s.accepted_draft is None else ("yes" if s.accepted_draft else "no")
        alts = ", ".join(f"{a.text!r} {a.logprob:.2f}" for a in s.top[:top])
        lines.append(f"{s.index:>5} {token_id_label(s.token_id):>7}  {s.text!r:<16} {_num(s.logprob, 8)} "
                     f"{_num(s.entropy, 9)} {draft:>5}  {alts}".rstrip())
    return lines
