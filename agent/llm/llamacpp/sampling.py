"""llama.cpp's sampler chain built from :class:`SamplerSettings`, and exact per-token telemetry.

The chain follows llama.cpp's own order: token bias -> penalties -> top-k -> typical -> top-p ->
min-p -> temperature -> dist, or temperature -> mirostat, or greedy when the temperature is 0.
Telemetry is computed from the raw logits of the model (before bias, penalties and truncation), so
entropy and log-probabilities describe the model's own distribution.
"""

from __future__ import annotations

import ctypes
import math
from typing import Any

import numpy as np

from agent.errors import ModelError, UserError
from agent.llm.sampler import SamplerSettings, unsupported_fields
from agent.llm.telemetry import entropy_varentropy_logprob

MIROSTAT_M = 100  # llama.cpp's value for mirostat v1
BLOCK = 128  # logits per block when searching the top-k


class LogitsStats:
    """Telemetry from the raw logits llama.cpp left in its context for the last position.

    Sampling copies those logits into its own candidate array and changes only the copy, so after
    a token is sampled the context still holds the model's untouched distribution: read in place,
    no callback and no copy on the token path.
    """

    def __init__(self, n_vocab: int) -> None:
        import llama_cpp

        self._get_logits = llama_cpp.llama_get_logits_ith
        self.n_vocab = n_vocab
        self._shifted = np.empty(n_vocab, dtype=np.float32)
        self._e = np.empty(n_vocab, dtype=np.float32)
        self._d = np.empty(n_vocab, dtype=np.float32)
        self._ones = np.ones(n_vocab, dtype=np.float32)
        self._offsets = np.arange(BLOCK)
        self._address: int | None = None
        self._blocks = np.zeros(1, dtype=np.float32)
        self._lse = 0.0
        self._careful = False
        self.logits = np.zeros(n_vocab, dtype=np.float32)

    def read(self, ctx: Any) -> np.ndarray:
        """Point ``logits`` at the context's logits of the last evaluated position (float32 view)."""
        pointer = self._get_logits(ctx, -1)
        address = ctypes.cast(pointer, ctypes.c_void_p).value
        if not address:
            raise ModelError("llama.cpp returned no logits for the last position")
        if address != self._address:
            self.logits = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
            self._address = address
        return self.logits

    def stats(self, token: int, k: int) -> tuple[float, float, float, list[tuple[int, float]]]:
        """(entropy in nats, varentropy in nats², logprob of ``token``, top-``k`` (id, logprob)) of
        the current logits: :meth:`measure` then :meth:`finish`."""
        entropy, varentropy = self.measure()
        logprob, top = self.finish(token, k)
        return entropy, varentropy, logprob, top

    def measure(self) -> tuple[float, float]:
        """(entropy in nats, varentropy in nats²) of the current logits; :meth:`finish` then gives
        a token's logprob and the top-k from the same pass.

        Few passes over the vocabulary, all float32: block maxima (which give the maximum and
        where the top-k can be), ``x - max``, ``exp``, and BLAS dot products for the sums.
        Every exponent is <= 0, so nothing overflows, and entropy = log-sum-exp - E[x - max] adds
        two positive terms, so nothing cancels: within ~1e-5 nats of a float64 computation. The
        varentropy is the variance of ``x - max`` under p (log p differs from it by a constant),
        taken around its mean so that no large squares cancel.
        """
        x, shifted, e, d = self.logits, self._shifted, self._e, self._d
        self._blocks = blocks = self._block_max(x)
        m = float(blocks.max())
        np.subtract(x, m, out=shifted)
        np.exp(shifted, out=e)
        total = float(np.dot(e, self._ones))  # BLAS: much faster than numpy's pairwise sum here
        self._lse = math.log(total)
        mean = float(np.dot(e, shifted)) / total
        entropy = self._lse - mean
        np.subtract(shifted, mean, out=d)
        np.multiply(d, d, out=d)
        varentropy = float(np.dot(e, d)) / total
        self._careful = not (math.isfinite(entropy) and math.isfinite(varentropy))
        if self._careful:  # masked (-inf) logits: the careful, slower way
            entropy, varentropy, _ = entropy_varentropy_logprob(x, 0)
        return entropy, varentropy

    def finish(self, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
        """(logprob of ``token``, top-``k`` (id, logprob)) of the logits :meth:`measure` just read."""
        if self._careful:
            logprob = entropy_varentropy_logprob(self.logits, token)[2]
        else:
            logprob = float(self._shifted[token]) - self._lse
        return logprob, self._top(self._blocks, k, self._lse)

    def _block_max(self, x: np.ndarray) -> np.ndarray:
        """Maximum of each block; block ``j`` holds ids ``j, j + W, j + 2W, ...`` (W = width),
        which numpy reduces faster than runs of adjacent ids. Leftover ids form one more block."""
        rows = self.n_vocab // BLOCK
        blocks = x[: rows * BLOCK].reshape(BLOCK, rows).max(axis=0)
        if rows * BLOCK < self.n_vocab:
            blocks = np.append(blocks, x[rows * BLOCK :].max())
        return blocks

    def _top(self, blocks: np.ndarray, k: int, lse: float) -> list[tuple[int, float]]:
        """The ``k`` most likely ids, most likely first, searched only in the k blocks with the
        highest maxima: a block holding one of the top k has a maximum no lower than the k-th
        best logit, and at most k blocks can."""
        k = min(k, self.n_vocab)
        if k <= 0:
            return []
        chosen = np.argpartition(blocks, -k)[-k:] if k < blocks.size else np.arange(blocks.size)
        rows = self.n_vocab // BLOCK
        regular = chosen[chosen < rows]
        candidates = (regular[None, :] + rows * self._offsets[:, None]).ravel()
        if regular.size < chosen.size:  # the leftover block is among them
            candidates = np.concatenate([candidates, np.arange(rows * BLOCK, self.n_vocab)])
        values = self._shifted[candidates]
        pick = np.argpartition(values, -k)[-k:] if k < values.size else np.arange(values.size)
        pick = pick[np.argsort(-values[pick], kind="stable")]
        return [(int(candidates[i]), float(values[i]) - lse) for i in pick]


def check_supported(settings: SamplerSettings) -> None:
    """Refuse sampler values llama.cpp cannot honour, naming them."""
    refused = unsupported_fields(settings, frozenset())
    if refused:
        raise UserError(
            f"sampler setting{'s' if len(refused) > 1 else ''} {', '.join(refused)} "
            "only work with the exllamav2 backend; reset them to their defaults for llama_cpp"
        )
    if settings.repeat_penalty <= 0.0:
        raise UserError("sampler.repeat_penalty must be > 0 for llama_cpp (1 = off)")
    if settings.mode == "adaptive" and settings.mirostat_mode:
        raise UserError("sampler.mode = adaptive chooses the temperature per token; set mirostat_mode = 0 to use it")


def build_chain(settings: SamplerSettings, *, n_vocab: int, n_ctx: int, seed: int) -> Any:
    """A llama.cpp sampler chain for ``settings``."""
    from llama_cpp._internals import LlamaSampler

    chain = LlamaSampler()
    if settings.token_bias:
        chain.add_logit_bias(n_vocab, {int(t): float(b) for t, b in settings.token_bias.items()})
    last_n = n_ctx if settings.repeat_last_n < 0 else settings.repeat_last_n
    chain.add_penalties(n_vocab, last_n, settings.repeat_penalty, settings.frequency_penalty, settings.presence_penalty)
    _add_selection(chain, settings, n_vocab=n_vocab, seed=seed)
    return chain


def _add_selection(chain: Any, s: SamplerSettings, *, n_vocab: int, seed: int) -> None:
    if s.temperature == 0.0:
        chain.add_greedy()
    elif s.mirostat_mode == 1:
        chain.add_temp(s.temperature)
        chain.add_mirostat(n_vocab, seed, s.mirostat_tau, s.mirostat_eta, MIROSTAT_M)
    elif s.mirostat_mode == 2:
        chain.add_temp(s.temperature)
        chain.add_mirostat_v2(seed, s.mirostat_tau, s.mirostat_eta)
    else:
        chain.add_top_k(s.top_k)
        chain.add_typical(s.typical_p, 1)
        chain.add_top_p(s.top_p, 1)
        chain.add_min_p(s.min_p, 1)
        chain.add_temp(s.temperature)
        chain.add_dist(seed)
