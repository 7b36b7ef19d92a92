"""Per-token numbers computed from a full logits vector (numpy, float64 for accuracy)."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax of a 1-D logits vector, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    m = np.max(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted)))


def entropy_and_logprob(logits: np.ndarray, token_id: int) -> tuple[float, float]:
    """Shannon entropy (nats) of softmax(logits) and the log-probability of ``token_id``."""
    logp = log_softmax(logits)
    p = np.exp(logp)
    finite = np.isfinite(logp)
    entropy = float(-np.sum(p[finite] * logp[finite]))
    return entropy, float(logp[token_id])


def top_k(logits: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most likely token ids with their log-probabilities, most likely first."""
    if k <= 0:
        return []
    logp = log_softmax(logits)
    k = min(k, logp.shape[0])
    idx = np.argpartition(-logp, k - 1)[:k]
    idx = idx[np.argsort(-logp[idx])]
    return [(int(i), float(logp[i])) for i in idx]
