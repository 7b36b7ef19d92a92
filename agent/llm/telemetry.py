"""Per-token numbers computed from a full logits vector (numpy, float64 for accuracy).

For a distribution ``p = softmax(logits)`` the *surprisal* of a token is ``-log p``. Entropy is its
expectation ``H = -sum p log p`` (nats) and *varentropy* its variance ``V = sum p (log p + H)^2``
(nats squared): low ``V`` with high ``H`` means the model is evenly unsure among many tokens, high
``V`` means a few strong candidates stand out from a long tail.
"""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax of a 1-D logits vector, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    m = np.max(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0
    shifted = x - m
    return shifted - np.log(np.sum(np.exp(shifted)))


def entropy_varentropy_logprob(logits: np.ndarray, token_id: int) -> tuple[float, float, float]:
    """(entropy in nats, varentropy in nats², log-probability of ``token_id``) of softmax(logits).

    One log-softmax in float64; masked (-inf) logits have zero probability and add nothing.
    """
    logp = log_softmax(logits)
    finite = np.isfinite(logp)
    lp = logp[finite]
    p = np.exp(lp)
    entropy = float(-np.dot(p, lp))
    centred = lp + entropy
    varentropy = float(np.dot(p, centred * centred))
    return entropy, varentropy, float(logp[token_id])


def entropy_and_logprob(logits: np.ndarray, token_id: int) -> tuple[float, float]:
    """Shannon entropy (nats) of softmax(logits) and the log-probability of ``token_id``."""
    entropy, _, logprob = entropy_varentropy_logprob(logits, token_id)
    return entropy, logprob


def top_k(logits: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` most likely token ids with their log-probabilities, most likely first."""
    if k <= 0:
        return []
    logp = log_softmax(logits)
    k = min(k, logp.shape[0])
    idx = np.argpartition(-logp, k - 1)[:k]
    idx = idx[np.argsort(-logp[idx])]
    return [(int(i), float(logp[i])) for i in idx]
