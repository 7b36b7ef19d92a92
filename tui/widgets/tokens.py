"""Token pieces drawn as coloured chips: by entropy / log-probability, or alternating by id."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual.content import Content

from agent.llm.base import TokenStep, token_id_label

# green (sure) -> yellow -> red (unsure); background colours that keep text readable
_SCALE = ("#1f5f3a", "#3f6a2a", "#6b6a1f", "#7a4a1a", "#7a2626")
_ALTERNATE = ("#2a3f5f", "#4a2f5a")


def visible_piece(text: str) -> str:
    """A token piece with whitespace made visible (so "␣the" and "the" differ on screen)."""
    return text.replace(" ", "·").replace("\n", "↵\n").replace("\t", "→") or "∅"


def uncertainty(step: TokenStep, max_entropy: float = 4.0) -> float | None:
    """0 (certain) .. 1 (very unsure) from entropy, else from the chosen token's probability."""
    if step.entropy is not None:
        return min(1.0, step.entropy / max_entropy)
    if step.logprob is not None:
        return 1.0 - math.exp(step.logprob)
    return None


def colour_for(value: float | None) -> str:
    if value is None:
        return "#444444"
    return _SCALE[min(len(_SCALE) - 1, int(value * len(_SCALE)))]


def steps_content(steps: Sequence[TokenStep]) -> Content:
    """The reply as chips coloured by each token's uncertainty."""
    return Content.assemble(*[(visible_piece(s.text), f"#ffffff on {colour_for(uncertainty(s))}") for s in steps])


def pieces_content(pieces: Sequence[tuple[int, str]]) -> Content:
    """Tokenized text as chips in alternating colours, so the boundaries show."""
    return Content.assemble(
        *[(visible_piece(text), f"#ffffff on {_ALTERNATE[i % 2]}") for i, (_, text) in enumerate(pieces)]
    )


def step_row(step: TokenStep) -> tuple[str, str, str, str, str, str]:
    """A table row: index, id, piece, logprob, entropy, top alternatives."""
    logprob = f"{step.logprob:.3f}" if step.logprob is not None else "-"
    entropy = f"{step.entropy:.3f}" if step.entropy is not None else "-"
    top = "  ".join(f"{visible_piece(t.text)} {math.exp(t.logprob):.0%}" for t in step.top[:3])
    return str(step.index), token_id_label(step.token_id), visible_piece(step.text), logprob, entropy, top
