"""Turn exllamav2 ``iterate()`` results into :class:`TokenStep` records (torch on CPU, no CUDA needed).

One streaming result may carry several tokens (speculative decoding accepts a few per step, and
text is held back while it might still become a stop string) with one text for all of them;
:func:`split_chunk_text` shares that text out so the steps' texts always join to the reply.
:func:`chunk_telemetry` computes entropy, varentropy, chosen-token logprob and top-k alternatives for all
tokens of a result in one vectorised pass; :class:`DraftFlags` remembers which tokens came from
the drafter.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from agent.llm.base import StopReason

EOS_REASONS: dict[str, StopReason] = {
    "stop_token": "eos",
    "stop_string": "stop_string",
    "max_new_tokens": "max_tokens",
    "end_filter": "eos",
}


def split_chunk_text(pieces: Sequence[str], text: str) -> list[str]:
    """Share ``text`` out over tokens whose decoded pieces are ``pieces``; the parts join to ``text``.

    A piece that matches the start of what is left gets its own text; at the first piece that
    doesn't (a character split over byte tokens, a cut stop string) the rest goes to that token.
    """
    parts: list[str] = []
    rest = text
    for piece in pieces:
        if piece and rest.startswith(piece):
            parts.append(piece)
            rest = rest[len(piece):]
        else:
            parts.append(rest)
            rest = ""
    if parts and rest:
        parts[-1] += rest
    return parts


Telemetry = tuple[float, float, float, list[tuple[int, float]]]


def chunk_telemetry(logits: Any, token_ids: Sequence[int], top_k: int) -> list[Telemetry]:
    """(entropy in nats, varentropy in nats², logprob of chosen token, top-k (id, logprob)) for
    each row of ``logits``.

    ``logits`` is a torch tensor of shape (n, vocab) or (1, n, vocab), as exllamav2 returns it.
    Masked entries (-inf, exllamav2's vocabulary padding) carry no probability mass.
    """
    import torch

    x = logits.reshape(-1, logits.shape[-1]).to(torch.float64)
    logp = torch.log_softmax(x, dim=-1)
    finite = torch.isfinite(logp)
    zero = torch.zeros((), dtype=logp.dtype)
    p = logp.exp()
    plogp = torch.where(finite, p * logp, zero)
    entropy_t = -plogp.sum(dim=-1)
    centred = torch.where(finite, logp + entropy_t.unsqueeze(-1), zero)
    varentropy = (p * centred * centred).sum(dim=-1).tolist()
    entropy = entropy_t.tolist()
    ids = torch.tensor(list(token_ids), dtype=torch.long).unsqueeze(-1)
    chosen = logp.gather(-1, ids).squeeze(-1).tolist()
    if top_k > 0:
        values, indices = torch.topk(logp, min(top_k, logp.shape[-1]), dim=-1)
        tops = [list(zip(i, v, strict=True)) for i, v in zip(indices.tolist(), values.tolist(), strict=True)]
    else:
        tops = [[] for _ in entropy]
    return list(zip(entropy, varentropy, chosen, tops, strict=True))


class DraftFlags:
    """Which generated tokens came from the drafter, recorded per iteration, consumed per emitted token.

    After each ``iterate()`` the job's counters say how many tokens it accepted from the draft
    (``accepted_draft_tokens``) and how many it generated in all (``new_tokens``); within one
    step the accepted drafts come first and the model's own token last.
    """

    def __init__(self) -> None:
        self._flags: deque[bool] = deque()
        self._accepted = 0
        self._generated = 0

    def record(self, accepted_total: int, generated_total: int) -> None:
        accepted = accepted_total - self._accepted
        generated = generated_total - self._generated
        self._accepted, self._generated = accepted_total, generated_total
        self._flags.extend([True] * accepted + [False] * max(generated - accepted, 0))

    def take(self) -> bool | None:
        return self._flags.popleft() if self._flags else None
