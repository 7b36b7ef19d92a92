"""Mixture-of-experts routing as text, for the token inspector (F4) and ``epistemic log show --moe``:
one token's routing, the reply's expert-usage histogram (Unicode bars), a JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agent.llm.base import MoERouting, TokenStep
from agent.log.moe_codec import MoECodecError, read_routing

if TYPE_CHECKING:
    from agent.log.db import DialogueLog
    from agent.records import StoredTurn

Stored = MoERouting | str | None  # a turn's routing, why it cannot be read, or none

NOT_MOE = "not a mixture-of-experts model"
_BARS = " ▁▂▃▄▅▆▇█"
_LIST_ALL = 16  # up to this many experts every count is written out; above, the three most used


def moe_status_line(status: str | None) -> str:
    """Why a reply has no routing, from its ``extra["moe_routing"]``."""
    if status == "off":
        return "mixture-of-experts model; routing not recorded ([llm] moe_routing = false)"
    if status == "captured":
        return "mixture-of-experts model; no routing was recorded for this reply"
    if status == "dense":
        return NOT_MOE
    if status == "unavailable":
        return "mixture-of-experts model; this llama-cpp-python build cannot report routing"
    return f"{NOT_MOE} (or a backend that does not report routing)"


def token_routing(routing: MoERouting, step_index: int) -> str:
    """Per layer: the chosen experts with their gate weights, and the router's entropy."""
    try:
        row = routing.token_index.index(step_index)
    except ValueError:
        return f"token #{step_index}: no routing recorded"
    lines = [f"token #{step_index}: experts chosen per layer (gate weight) · router entropy"]
    for column, layer in enumerate(routing.layers):
        chosen = "  ".join(f"e{int(e)} {float(w):.2f}" for e, w in zip(routing.experts[row, column], routing.weights[row, column], strict=True))
        lines.append(f"  L{layer:<3} {chosen}   H {float(routing.entropy[row, column]):.2f}")
    return "\n".join(lines)


def _bar(count: int, most: int) -> str:
    if count <= 0 or most <= 0:
        return _BARS[0]
    return _BARS[max(1, round(count / most * (len(_BARS) - 1)))]


def usage_histogram(routing: MoERouting) -> str:
    """One line per layer: a bar per expert (height = times chosen in this reply) and the counts."""
    usage = routing.usage()
    tokens = len(routing.token_index)
    lines = [f"expert usage over {tokens} tokens (top-{routing.top_k} of {routing.n_experts} experts)"]
    for column, layer in enumerate(routing.layers):
        counts = [int(c) for c in usage[column]]
        most = max(counts, default=0)
        bars = "".join(_bar(c, most) for c in counts)
        if routing.n_experts <= _LIST_ALL:
            detail = " ".join(f"e{i}:{c}" for i, c in enumerate(counts))
        else:
            top = sorted(range(len(counts)), key=lambda i: -counts[i])[:3]
            detail = "most used " + " ".join(f"e{i}:{counts[i]}" for i in top)
        lines.append(f"  L{layer:<3} {bars}  {detail}")
    return "\n".join(lines)


def routing_lines(routing: MoERouting, steps: Sequence[TokenStep]) -> list[str]:
    """The usage histogram, then one line per token: its piece and, per layer, experts and entropy."""
    pieces = {s.index: s.text for s in steps}
    lines = usage_histogram(routing).splitlines()
    for row, index in enumerate(routing.token_index):
        layers = " | ".join(
            f"L{layer} " + " ".join(f"e{int(e)} {float(w):.2f}" for e, w in zip(routing.experts[row, c], routing.weights[row, c], strict=True))
            + f" H{float(routing.entropy[row, c]):.2f}"
            for c, layer in enumerate(routing.layers))
        lines.append(f"  #{index:<4} {pieces.get(index, '')!r:<12} {layers}")
    return lines


def routing_json(routing: MoERouting) -> dict[str, Any]:
    """Everything stored, as JSON-ready lists."""
    return {
        "n_experts": routing.n_experts, "top_k": routing.top_k, "layers": list(routing.layers),
        "normalized": routing.normalized, "token_index": list(routing.token_index),
        "experts": routing.experts.tolist(), "weights": routing.weights.round(6).tolist(),
        "entropy": routing.entropy.round(6).tolist(), "usage": routing.usage().tolist(),
    }


# --- epistemic log show --moe ------------------------------------------------------------------


def read_or_reason(log: DialogueLog, turn: StoredTurn) -> Stored:
    """The turn's stored routing, None if it has none, or the reason it cannot be read."""
    try:
        return read_routing(log, turn.id)
    except MoECodecError as exc:
        return str(exc)


def _status(turn: StoredTurn) -> str | None:
    extra = turn.data.get("extra")
    return extra.get("moe_routing") if isinstance(extra, dict) else None


def turn_lines(routing: dict[int, Stored], turn: StoredTurn, steps: object) -> list[str]:
    """Lines for one turn of ``log show --moe`` (nothing for user turns or without --moe)."""
    if turn.id not in routing:
        return []
    found = routing[turn.id]
    if isinstance(found, str):
        return [f"    [MoE routing unreadable: {found}]"]
    if found is None:
        return [f"    [MoE: {moe_status_line(_status(turn))}]"]
    return ["    " + line for line in routing_lines(found, steps if isinstance(steps, list) else [])]


def turn_json(routing: dict[int, Stored], turn: StoredTurn) -> dict[str, Any]:
    """``{"moe_routing": ...}`` for one turn of ``log show --moe --json`` ({} without --moe)."""
    if turn.id not in routing:
        return {}
    found = routing[turn.id]
    if isinstance(found, str):
        return {"moe_routing_error": found}
    return {"moe_routing": None if found is None else routing_json(found)}
