"""One generation on llama.cpp: evaluate the prompt (reusing the cached prefix), then sample, measure
and evaluate token by token until an end token, a stop string, max_tokens, cancellation or a full
context. Kept lean: per token it costs one sampler call, one numpy pass over the logits and a few
dictionary look-ups on top of llama.cpp's own decode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError
from agent.llm.base import (
    GenerationResult,
    PreparedPrompt,
    StopReason,
    Timings,
    TokenStep,
    TopAlternative,
)
from agent.llm.llamacpp.adaptive import build_picker
from agent.llm.llamacpp.sampling import LogitsStats
from agent.llm.llamacpp.text import PieceDecoder, StopMatcher
from agent.llm.sampler import SamplerSettings

if TYPE_CHECKING:
    from agent.llm.llamacpp.model import LlamaCppModel


def eval_prompt(llm: Any, ids: list[int]) -> int:
    """Evaluate ``ids``, keeping the KV cache of the longest prefix shared with the last call.

    Returns how many prompt tokens were reused.
    """
    cached = llm.input_ids[: llm.n_tokens].tolist()
    reuse = 0
    for a, b in zip(cached, ids, strict=False):
        if a != b:
            break
        reuse += 1
    reuse = min(reuse, len(ids) - 1)  # the last prompt token must be evaluated for fresh logits
    if reuse > 0 and not llm._ctx.kv_cache_seq_rm(-1, reuse, -1):
        reuse = 0  # this model's memory cannot be cut (recurrent): start over
    if reuse == 0:
        llm.reset()
    llm.n_tokens = reuse
    try:
        llm.eval(ids[reuse:])
    except RuntimeError as exc:
        llm.reset()
        raise ModelError(f"llama.cpp failed to evaluate the prompt: {exc}") from None
    return reuse


class TokenLoop:
    """State of one generation; ``run`` is the generator that yields TokenSteps."""

    def __init__(self, model: LlamaCppModel, llm: Any, sampler: SamplerSettings, *, seed: int, cancel: threading.Event | None) -> None:
        self.model = model
        self.llm = llm
        self.sampler = sampler
        self.seed = seed
        self.cancel = cancel
        self.logits = LogitsStats(model.n_vocab)
        self.decoder = PieceDecoder()
        self.stops = StopMatcher(sampler.stop)
        self.steps: list[TokenStep] = []
        self.generated = 0

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _step(self, token: int, measured: tuple[float, float], action: str | None) -> TokenStep:
        entropy, varentropy = measured
        logprob, top = self.logits.finish(token, self.sampler.top_logprobs)
        label = self.model.token_label
        return TokenStep(
            index=self.generated - 1,
            token_id=token,
            text=self.decoder.feed(self.model.token_bytes(token)),
            logprob=logprob,
            entropy=entropy,
            top=tuple(TopAlternative(i, label(i), lp) for i, lp in top),
            varentropy=varentropy,
            action=action,
        )

    def run(self, prompt: PreparedPrompt) -> Generator[TokenStep, None, GenerationResult]:
        started = time.perf_counter()
        self.first_token_at: float | None = None
        reason: StopReason
        reused = 0
        ids = list(prompt.token_ids)
        if not ids:
            raise ModelError("the prompt is empty")
        if len(ids) >= self.model.n_ctx:
            reason = "context_full"
        elif self._cancelled():
            reason = "cancelled"
        else:
            reused = eval_prompt(self.llm, ids)
            pause = [t for t, _ in self.model.tokenize_pieces(self.sampler.pause_text)] if self.sampler.pause_text else []
            chain = build_picker(self.sampler, n_vocab=self.model.n_vocab, n_ctx=self.model.n_ctx, seed=self.seed, pause_tokens=pause)
            try:
                reason = yield from self._tokens(chain)
            finally:
                chain.close()
        return self._result(prompt, reason, started, time.perf_counter(), reused)

    def _tokens(self, chain: Any) -> Generator[TokenStep, None, StopReason]:
        llm, model, ctx, stops = self.llm, self.model, self.llm._ctx, self.stops
        max_tokens, n_ctx = self.sampler.max_tokens, model.n_ctx
        while True:
            self.logits.read(ctx.ctx)  # sampling leaves these raw logits as they are
            measured = self.logits.measure()
            token, action = chain.pick(ctx, *measured)
            if model.moe is not None:  # MoE routing of the pass that produced this token
                model.moe.take(self.generated)
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            if model.is_end_token(token):
                yield from self._emit(stops.flush())
                return "eos"
            self.generated += 1
            yield from self._emit(stops.feed(self._step(token, measured, action)))
            if stops.matched is not None:
                return "stop_string"
            if self.generated >= max_tokens or self._cancelled() or llm.n_tokens >= n_ctx:
                yield from self._emit(stops.flush())
                if self.generated >= max_tokens:
                    return "max_tokens"
                return "cancelled" if self._cancelled() else "context_full"
            try:
                llm.eval([token])
            except RuntimeError as exc:
                raise ModelError(f"llama.cpp failed while generating: {exc}") from None

    def _emit(self, steps: list[TokenStep]) -> Iterator[TokenStep]:
        for step in steps:
            self.steps.append(step)
            yield step

    def _result(self, prompt: PreparedPrompt, reason: StopReason, started: float, ended: float, reused: int) -> GenerationResult:
        n, first = self.generated, self.first_token_at
        decode_time = ended - first if first is not None else 0.0
        timings = Timings(
            prompt_tokens=prompt.token_count,
            completion_tokens=n,
            time_to_first_token=None if first is None else first - started,
            generation_seconds=ended - started,
            tokens_per_second=(n - 1) / decode_time if n > 1 and decode_time > 0 else None,
        )
        extra: dict[str, Any] = {"seed": self.seed, "n_ctx": self.model.n_ctx, "prompt_tokens_reused": reused}
        if self.stops.matched is not None:
            extra["stop_string"] = self.stops.matched
        text = "".join(s.text for s in self.steps)
        return GenerationResult(text=text, steps=tuple(self.steps), stop_reason=reason, timings=timings, prompt=prompt, extra=extra)
