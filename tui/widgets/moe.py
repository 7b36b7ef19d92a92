"""Text for the token inspector's mixture-of-experts panel: one token's routing and the reply's
expert-usage histogram (Unicode bars)."""

from __future__ import annotations

from agent.llm.base import MoERouting

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
