"""Before/after evaluation: loss, perplexity and the entropy profile of the reference replies.

For every validation conversation the reference (assistant) tokens are scored twice, by the base
model (the adapter switched off) and with the adapter: the mean cross-entropy per token (and its
perplexity), and the mean entropy of the model's full next-token distribution at those tokens,
which shows how training changed the model's certainty, not only its fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

from agent.train.data import IGNORE, Example


@dataclass(frozen=True)
class Scores:
    """One model's fit to the reference replies: per-token loss (nats), perplexity, mean entropy (nats)."""

    loss: float
    perplexity: float
    entropy: float


@dataclass(frozen=True)
class EvalReport:
    """Base vs adapter on one split."""

    split: str
    examples: int
    tokens: int
    base: Scores
    adapter: Scores

    def rows(self) -> list[tuple[str, float, float]]:
        """(metric, base, adapter) rows of the table."""
        return [
            ("loss (nats/token)", self.base.loss, self.adapter.loss),
            ("perplexity", self.base.perplexity, self.adapter.perplexity),
            ("mean entropy (nats)", self.base.entropy, self.adapter.entropy),
        ]

    def table(self) -> str:
        """A Markdown table for the CLI and the training card."""
        lines = [f"{self.split} split: {self.examples} conversations, {self.tokens} reference tokens", "",
                 "| metric | base | adapter | change |", "|---|---:|---:|---:|"]
        for name, base, adapted in self.rows():
            lines.append(f"| {name} | {base:.4f} | {adapted:.4f} | {adapted - base:+.4f} |")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sums(model: Any, example: Example, device: str) -> tuple[float, float, int]:
    """(sum of token losses, sum of entropies, reference tokens) of one conversation."""
    import torch

    ids = torch.tensor([example.input_ids], device=device)
    labels = torch.tensor(example.labels[1:], device=device)
    logits = model(input_ids=ids).logits[0, :-1].float()
    keep = labels != IGNORE
    logp = torch.log_softmax(logits[keep], dim=-1)
    picked = logp.gather(1, labels[keep].unsqueeze(1)).squeeze(1)
    entropy = -(logp.exp() * logp).sum(dim=-1)
    return float(-picked.sum()), float(entropy.sum()), int(keep.sum())


def score(model: Any, examples: Sequence[Example], device: str, *, adapter: bool) -> tuple[Scores, int]:
    """Scores of ``model`` with its adapter on or off; (scores, reference tokens)."""
    import torch

    loss_sum = entropy_sum = 0.0
    tokens = 0
    switch: Callable[[], Any] = nullcontext if adapter else model.disable_adapter
    model.eval()
    with torch.no_grad(), switch():
        for example in examples:
            loss, entropy, n = _sums(model, example, device)
            loss_sum, entropy_sum, tokens = loss_sum + loss, entropy_sum + entropy, tokens + n
    mean = loss_sum / max(1, tokens)
    return Scores(loss=mean, perplexity=math.exp(min(mean, 50.0)), entropy=entropy_sum / max(1, tokens)), tokens


def evaluate(model: Any, examples: Sequence[Example], device: str, split: str = "validation") -> EvalReport:
    """Base vs adapter on ``examples`` (a PEFT model; the base is the same model, adapter disabled)."""
    base, tokens = score(model, examples, device, adapter=False)
    adapted, _ = score(model, examples, device, adapter=True)
    return EvalReport(split=split, examples=len(examples), tokens=tokens, base=base, adapter=adapted)
