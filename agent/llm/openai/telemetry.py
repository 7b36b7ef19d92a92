"""Entropy from a server's top-k logprobs: a lower bound on the full distribution's entropy.

A remote server returns, per token, the log-probabilities of at most k alternatives. With known
probabilities ``p_1..p_m`` (distinct tokens) and the unseen mass ``r = 1 - sum(p_i)`` spread over
tokens of probability at most ``cap`` each, every unseen token adds at least ``-q log cap``, so

    H >= -sum(p_i log p_i) - r log cap

``cap`` is the k-th largest known probability when the server returned a complete top-k (every
unseen token ranks below it), else ``r`` itself (true of any unseen token). llama.cpp's server keys
its alternatives by token *text*, so byte-fragment tokens (common in Russian) collide and fewer than
k come back: the bound then falls back to ``cap = r`` and stays a true lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from agent.llm.base import LOWER_BOUND

ENTROPY_KIND = LOWER_BOUND  # what GenerationResult.extra["entropy"] says for this backend


def top_k_entropy_lower_bound(logprobs: Sequence[float], requested: int) -> float | None:
    """A lower bound (nats) on the entropy, from the logprobs of distinct top alternatives.

    ``requested`` is the k asked for; None when no alternative came back.
    """
    probs = sorted((math.exp(lp) for lp in logprobs if math.isfinite(lp)), reverse=True)
    if not probs:
        return None
    known = sum(-p * math.log(p) for p in probs if p > 0.0)
    rest = max(0.0, 1.0 - sum(probs))
    if rest <= 1e-12:
        return known
    cap = min(rest, probs[requested - 1]) if 0 < requested <= len(probs) else rest
    return known - rest * math.log(cap)
