"""The exllamav2 GPU backend: EXL2/FP16 models, LoRA personas, speculative decoding, full-logit telemetry.

Generation runs one ``ExLlamaV2DynamicJob`` per reply and calls ``generator.iterate()`` in the
calling (worker) thread; ``cancel`` is checked between iterations and cancels the job.

What the telemetry measures
---------------------------
Jobs run with ``return_logits=True``. The logits exllamav2 returns for a token are the model's
output *after* the in-place logit edits of its sampler — repetition / frequency / presence penalty,
``token_bias``, DRY, and the vocabulary-padding mask — and *before* temperature, smoothing and every
truncation sampler (top-k/p/a, min-p, TFS, typical, XTC, Mirostat). :class:`TokenStep` ``entropy``
is the Shannon entropy (nats) of the softmax of those logits over the whole vocabulary, ``varentropy``
the variance of the surprisal under it, ``logprob`` the chosen token's log-probability under it,
``top`` the most likely alternatives under it. With
all penalties off and no bias this is the raw model distribution. exllamav2's own ``token_probs``
/ ``top_k_probs`` are *after* truncation and renormalisation (1.0 under greedy), so they are not
used. With ``cfg_scale`` the logits are the conditional prompt's, before CFG mixing and penalties.
With ``[exllamav2] full_logits = false`` no logits are returned and entropy/logprob are None.

``accepted_draft`` marks tokens the model accepted from the drafter; :class:`SpeculativeStats`
counts proposed (accepted + rejected) and accepted draft tokens per reply.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError, ModelError
from agent.llm.base import (
    ChatMessage,
    GenerationResult,
    ModelInfo,
    PreparedPrompt,
    SpeculativeStats,
    StopReason,
    Timings,
    TokenStep,
    TopAlternative,
)
from agent.llm.exllamav2.adapters import AdapterSet
from agent.llm.exllamav2.stream import EOS_REASONS, DraftFlags, chunk_telemetry, split_chunk_text
from agent.llm.hf_template import HfChatTemplate
from agent.llm.sampler import SamplerSettings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


class ExLlamaV2Model:
    """A model loaded by exllamav2 behind the :class:`~agent.llm.base.LanguageModel` interface."""

    def __init__(self, parts: Any, tokenizer: Any, generator: Any, template: HfChatTemplate,
                 info: ModelInfo, settings: Any) -> None:
        self.parts, self.tokenizer, self.generator = parts, tokenizer, generator
        self.template, self.info, self.settings = template, info, settings
        self._lock = threading.Lock()  # guards the generator: iterate() vs set_loras()
        self._negatives: dict[str, PreparedPrompt] = {}
        self._adapters = AdapterSet(parts.model, Path(info.path), keep_loaded=settings.keep_adapters_loaded)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exl2-telemetry")
        self._pieces = tokenizer.get_id_to_piece_list(False)
        self.last_switch_seconds: float | None = None

    # -- prompt -----------------------------------------------------------------------------
    def _encode(self, text: str, special: bool) -> list[int]:
        return self.tokenizer.encode(text, add_bos=False, encode_special_tokens=special)[0].tolist()

    def render_prompt(self, messages: Sequence[ChatMessage]) -> PreparedPrompt:
        dicts = [{"role": m.role, "content": m.content} for m in messages]
        text = self.template.render(dicts)
        prompt = PreparedPrompt(text=text, token_ids=tuple(self._encode(text, True)))
        if dicts and dicts[0]["role"] == "system" and len(dicts) > 1:  # unconditioned prompt for CFG
            neg = self.template.render(dicts[1:])
            self._negatives = {text: PreparedPrompt(neg, tuple(self._encode(neg, True)))}
        return prompt

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text, False))

    def tokenize_pieces(self, text: str) -> list[tuple[int, str]]:
        return [(i, self._pieces[i]) for i in self._encode(text, False)]

    # -- LoRA personas ----------------------------------------------------------------------
    def set_adapters(self, adapters: Sequence[tuple[str | Path, float]]) -> float:
        """Apply these (PEFT folder, scale) adapters from the next reply on; returns the switch cost in seconds.

        The base model stays loaded. A reply still running (in another thread) is cancelled first,
        as exllamav2 changes LoRAs only with an empty queue; it ends with stop reason "cancelled".
        A misfitting adapter raises AdapterError and changes nothing.
        """
        with self._lock:
            start = time.perf_counter()
            loras, records = self._adapters.prepare(adapters)
            if self.generator.num_remaining_jobs():
                log.info("cancelling %d unfinished job(s) before switching adapters", self.generator.num_remaining_jobs())
                self.generator.clear_queue()
            self.generator.set_loras(loras or None)
            self._adapters.release_unused()
            self.last_switch_seconds = time.perf_counter() - start
        self.info = replace(self.info, adapters=tuple(records))
        log.info("adapters %s applied in %.3f s", [r["id"] for r in records], self.last_switch_seconds)
        return self.last_switch_seconds

    # -- generation -------------------------------------------------------------------------

    def check_sampler(self, sampler: SamplerSettings) -> None:
        """Refuse values exllamav2 cannot honour (Mirostat v1, DRY range, CFG without paging, ...)."""
        from agent.llm.exllamav2.sampler import settings_mapping

        settings_mapping(sampler)
        if sampler.cfg_scale is not None and not self.settings.paged:
            raise ConfigError("sampler.cfg_scale needs [exllamav2] paged = true (flash-attn): CFG runs two sequences at once")

    def _job(self, prompt: PreparedPrompt, sampler: SamplerSettings, max_new: int) -> Any:
        import torch
        from exllamav2.generator import ExLlamaV2DynamicJob

        from agent.llm.exllamav2.sampler import build_exl2_settings

        settings = build_exl2_settings(sampler, self.tokenizer, self.parts.config.vocab_size)
        ids: Any = torch.tensor([prompt.token_ids], dtype=torch.long)
        if sampler.cfg_scale is not None:
            ids = [ids, torch.tensor([self._negative(prompt).token_ids], dtype=torch.long)]
        stops: list[int | str] = [*self.template.stop_token_ids, *sampler.stop]
        if self.tokenizer.eos_token_id is not None:
            stops.append(self.tokenizer.eos_token_id)
        return ExLlamaV2DynamicJob(
            input_ids=ids, max_new_tokens=max_new, gen_settings=settings, seed=sampler.seed,
            stop_conditions=list(dict.fromkeys(stops)), return_logits=self.settings.full_logits,
            identifier="reply",
        )

    def _negative(self, prompt: PreparedPrompt) -> PreparedPrompt:
        if not self.settings.paged:
            raise ConfigError("sampler.cfg_scale needs [exllamav2] paged = true (flash-attn): CFG runs two sequences at once")
        negative = self._negatives.get(prompt.text)
        if negative is None:
            raise ConfigError("sampler.cfg_scale needs a system prompt: CFG contrasts the prompt with and without it")
        return negative

    def _budget(self, prompt: PreparedPrompt, sampler: SamplerSettings) -> tuple[int, bool]:
        """(max_new_tokens for the job, whether the context rather than max_tokens limits it)."""
        draft = self.settings.num_draft_tokens if self.settings.speculative_method else 0
        room = self.parts.config.max_seq_len - prompt.token_count - draft - 1
        if room <= 0:
            raise ModelError(f"the prompt has {prompt.token_count} tokens and does not fit the context of {self.parts.config.max_seq_len}")
        limit = min(sampler.max_tokens, room)
        # exllamav2 stops num_draft_tokens early when drafting: ask for that much more
        return limit + draft, limit < sampler.max_tokens

    def _steps(self, chunks: list[dict], first_index: int, flags: DraftFlags, top_k: int) -> Future | list[TokenStep]:
        """TokenSteps for this iteration's results of our job; a Future when telemetry has logits to crunch."""
        ids: list[int] = []
        texts: list[str] = []
        logits = []
        for r in chunks:
            chunk_ids = r["token_ids"][0].tolist() if "token_ids" in r else []
            ids += chunk_ids
            texts += split_chunk_text([self._piece(i) for i in chunk_ids], r.get("text", ""))
            if chunk_ids and r.get("logits") is not None:
                logits.append(r["logits"].reshape(-1, r["logits"].shape[-1]))
        drafted = [flags.take() for _ in ids]
        full = len(logits) == len([r for r in chunks if "token_ids" in r]) and bool(ids)

        def build() -> list[TokenStep]:
            import torch

            tele: Sequence[tuple[float | None, float | None, float | None, list[tuple[int, float]]]] = (
                chunk_telemetry(torch.cat(logits), ids, top_k) if full else [(None, None, None, [])] * len(ids)
            )
            return [
                TokenStep(index=first_index + n, token_id=t, text=texts[n], logprob=lp, entropy=h,
                          top=tuple(TopAlternative(a, self._piece(a), v) for a, v in alts), accepted_draft=drafted[n],
                          varentropy=ve)
                for n, (t, (h, ve, lp, alts)) in enumerate(zip(ids, tele, strict=True))
            ]

        return self._pool.submit(build) if full else build()

    def _iterate(self) -> list[dict]:
        with self._lock:
            try:
                return self.generator.iterate()
            except RuntimeError as exc:  # CUDA errors (out of memory, device lost)
                first = (str(exc).strip().splitlines() or ["runtime error"])[0]
                raise ModelError(f"exllamav2 generation failed on the GPU: {first}") from None

    def _queued(self, job: Any) -> bool:
        return job in self.generator.active_jobs or job in self.generator.pending_jobs

    def _piece(self, token_id: int) -> str:
        return self._pieces[token_id] if token_id < len(self._pieces) else ""

    def generate(self, prompt: PreparedPrompt, sampler: SamplerSettings, *,
                 cancel: threading.Event | None = None) -> Generator[TokenStep, None, GenerationResult]:
        """Stream the reply; telemetry for one iteration is computed while the GPU runs the next."""
        max_new, context_bound = self._budget(prompt, sampler)
        start = time.perf_counter()
        steps: list[TokenStep] = []
        pending: Future | list[TokenStep] | None = None
        flags, final = DraftFlags(), None
        reason: StopReason | None = None
        first_token_at: float | None = None
        job = self._job(prompt, sampler, max_new)
        with self._lock:
            self.generator.enqueue(job)
        try:
            while final is None:
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
                results = self._iterate()
                if self.settings.speculative_method:
                    flags.record(job.accepted_draft_tokens, job.new_tokens)
                ours = [r for r in results if r.get("stage") == "streaming" and r.get("job") is job]
                final = next((r for r in ours if r.get("eos")), None)
                ready = _done(pending)
                pending = self._steps(ours, len(steps) + len(ready), flags, sampler.top_logprobs)
                for step in ready:
                    first_token_at = first_token_at or time.perf_counter()
                    steps.append(step)
                    yield step
                if final is None and not self._queued(job):
                    reason = "cancelled"  # the queue was cleared under us (adapter switch)
                    break
            for step in _done(pending):
                first_token_at = first_token_at or time.perf_counter()
                steps.append(step)
                yield step
        finally:
            with self._lock:
                if self._queued(job):
                    self.generator.cancel(job)
        stop: StopReason = reason or EOS_REASONS.get((final or {}).get("eos_reason", ""), "eos")
        if stop == "max_tokens" and context_bound:
            stop = "context_full"
        return self._result(prompt, steps, stop, start, first_token_at, job, final or {})

    def _result(self, prompt: PreparedPrompt, steps: list[TokenStep], stop: StopReason, start: float,
                first: float | None, job: Any, final: dict) -> GenerationResult:
        end = time.perf_counter()
        decode = end - first if first else 0.0
        timings = Timings(
            prompt_tokens=prompt.token_count, completion_tokens=len(steps),
            time_to_first_token=(first - start) if first else None, generation_seconds=end - start,
            tokens_per_second=(len(steps) - 1) / decode if decode > 0 and len(steps) > 1 else None,
        )
        spec = None
        if self.settings.speculative_method:
            accepted, rejected = job.accepted_draft_tokens, job.rejected_draft_tokens
            spec = SpeculativeStats(self.settings.speculative_method, accepted + rejected, accepted)
        extra = {k: final[k] for k in ("eos_reason", "time_prefill", "time_generate", "cached_tokens") if k in final}
        if self.last_switch_seconds is not None:
            extra["adapter_switch_seconds"] = self.last_switch_seconds
        text = "".join(s.text for s in steps)
        return GenerationResult(text=text, steps=tuple(steps), stop_reason=stop, timings=timings,
                                prompt=prompt, speculative=spec, extra=extra)

    def close(self) -> None:
        """Free the GPU: cancel jobs, unload adapters, draft and main model."""
        with self._lock:
            self.generator.clear_queue()
            self._adapters.unload_all()
            for model in (self.parts.draft_model, self.parts.model):
                if model is not None:
                    model.unload()
        self._pool.shutdown(wait=False)
        import torch

        torch.cuda.empty_cache()


def _done(pending: Future | list[TokenStep] | None) -> list[TokenStep]:
    if pending is None:
        return []
    return pending.result() if isinstance(pending, Future) else pending


__all__ = ["ExLlamaV2Model"]
