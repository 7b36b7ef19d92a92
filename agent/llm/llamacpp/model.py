"""The llama.cpp backend (llama-cpp-python): the embedded default that runs any GGUF on a CPU.

``load(config, progress)`` opens ``[llm] model`` (empty = the SmolLM2 starter model) and returns a
:class:`LlamaCppModel`. Its own token loop drives llama.cpp's sampler chain directly; the first
link of that chain copies the raw logits, so every token carries its exact log-probability, the
entropy of the full distribution and the top alternatives, at close to raw speed.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError
from agent.llm.base import (
    ChatMessage,
    GenerationResult,
    LoadProgress,
    ModelInfo,
    PreparedPrompt,
    ProgressCallback,
    TokenStep,
)
from agent.llm.chat_template import render_chat_template
from agent.llm.llamacpp.gguf import context_length, model_name, read_metadata
from agent.llm.llamacpp.loop import TokenLoop
from agent.llm.llamacpp.sampling import check_supported
from agent.llm.llamacpp.text import piece_label
from agent.llm.sampler import SamplerSettings

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig
    from agent.llm.llamacpp.adapters import AdapterBank
    from agent.llm.llamacpp.moe import RoutingCapture

log = logging.getLogger(__name__)

BACKEND = "llama_cpp"
BUSY_TIMEOUT_S = 60.0


class LlamaCppModel:
    """A loaded GGUF model; one generation at a time (other callers wait), usable from any thread.

    ``moe`` captures mixture-of-experts routing (``[llm] moe_routing`` on a MoE model), else None;
    ``moe_status`` ("captured", "off", "unavailable" or "dense") goes into every reply's ``extra["moe_routing"]``.
    """

    def __init__(self, llm: Any, info: ModelInfo, *, moe: RoutingCapture | None = None, moe_status: str = "dense") -> None:
        import llama_cpp

        self._llm = llm
        self.info = info
        self._lib = llama_cpp
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._lock = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self._labels: dict[int, str] = {}
        self.n_ctx = int(llm.n_ctx())
        self.n_vocab = int(llm.n_vocab())
        self._adapters: AdapterBank | None = None  # created on the first set_adapters
        self.moe = moe
        self.moe_status = moe_status

    # --- tokens --------------------------------------------------------------------------

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for (special tokens as their text)."""
        data = self._pieces.get(token_id)
        if data is None:
            data = self._llm.detokenize([token_id], special=True)
            self._pieces[token_id] = data
        return data

    def token_label(self, token_id: int) -> str:
        """A token as display text (stray UTF-8 bytes as ``<0xD0>``), cached."""
        label = self._labels.get(token_id)
        if label is None:
            label = self._labels[token_id] = piece_label(self.token_bytes(token_id))
        return label

    def is_end_token(self, token_id: int) -> bool:
        """End of generation (eos, the template's end-of-turn token, ...)."""
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token_id))

    def _special_text(self, token_id: int) -> str:
        return "" if token_id < 0 else self.token_bytes(token_id).decode("utf-8", errors="replace")

    def _tokenize(self, text: str, *, special: bool) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without special tokens."""
        return len(self._tokenize(text, special=False))

    def tokenize_pieces(self, text: str) -> list[tuple[int, str]]:
        """How the model splits ``text``: (token id, piece), stray UTF-8 bytes shown as ``<0xD0>``."""
        return [(t, self.token_label(t)) for t in self._tokenize(text, special=False)]

    # --- prompt --------------------------------------------------------------------------

    def special_tokens(self) -> dict[str, str]:
        """``bos_token`` / ``eos_token`` texts for the chat template, from the model's vocabulary."""
        return {
            "bos_token": self._special_text(self._llm.token_bos()),
            "eos_token": self._special_text(self._llm.token_eos()),
        }

    def render_prompt(self, messages: Sequence[ChatMessage]) -> PreparedPrompt:
        """Render with the GGUF's own chat template, then tokenize (special tokens parsed, one BOS)."""
        template = self.info.chat_template
        if not template:
            raise ModelError(
                f"{self.info.path}: this GGUF has no chat template (tokenizer.chat_template), so it "
                "cannot hold a conversation; use an instruct/chat model (see `epistemic models list`)"
            )
        text = render_chat_template(
            template, [{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True, special_tokens=self.special_tokens(),
        )
        return PreparedPrompt(text=text, token_ids=tuple(self._prompt_ids(text)))

    def _prompt_ids(self, text: str) -> list[int]:
        ids = self._tokenize(text, special=True)
        bos = self._llm.token_bos()
        if bos >= 0 and self._lib.llama_vocab_get_add_bos(self._vocab) and (not ids or ids[0] != bos):
            ids.insert(0, bos)
        return ids

    # --- generation ----------------------------------------------------------------------

    def check_sampler(self, sampler: SamplerSettings) -> None:
        """Refuse sampler values llama.cpp cannot honour (exllamav2-only samplers), naming them."""
        check_supported(sampler)

    def generate(
        self, prompt: PreparedPrompt, sampler: SamplerSettings, *, cancel: threading.Event | None = None
    ) -> Generator[TokenStep, None, GenerationResult]:
        """Stream TokenSteps; the iterator returns the GenerationResult (see ``run_generation``).

        Sampler values llama.cpp cannot honour are refused here, before anything runs.
        """
        check_supported(sampler)
        if self._llm is None:
            raise ModelError(f"{self.info.model_id} was closed; load it again")
        return self._stream(prompt, sampler, cancel)

    def _stream(
        self, prompt: PreparedPrompt, sampler: SamplerSettings, cancel: threading.Event | None
    ) -> Generator[TokenStep, None, GenerationResult]:
        if not self._lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise ModelError("the llama.cpp model is still busy with another reply")
        try:
            seed = sampler.seed if sampler.seed is not None else random.SystemRandom().randrange(2**31)
            loop = TokenLoop(self, self._llm, sampler, seed=seed, cancel=cancel)
            if self.moe is not None:
                self.moe.begin()
            result: GenerationResult = yield from loop.run(prompt)
            routing = self.moe.finish({s.index for s in result.steps}) if self.moe is not None else None
            return replace(result, moe_routing=routing, extra={**result.extra, "moe_routing": self.moe_status})
        finally:
            self._lock.release()

    # --- LoRA personas -------------------------------------------------------------------

    def set_adapters(self, adapters: Sequence[tuple[str | Path, float]]) -> float:
        """Apply these (GGUF LoRA or adapter folder, scale) adapters from the next reply on; the seconds it took.

        The base stays loaded; each adapter is loaded once and switched with llama.cpp's adapter
        API, and the KV cache is cleared when the set changes. A misfit raises ModelError and
        changes nothing. Waits for a running generation to finish.
        """
        from agent.llm.llamacpp.adapters import AdapterBank

        if not self._lock.acquire(timeout=BUSY_TIMEOUT_S):
            raise ModelError("the llama.cpp model is still busy with another reply")
        try:
            started = time.perf_counter()
            if self._adapters is None:
                self._adapters = AdapterBank(self._llm, self.info.path)
            records, changed = self._adapters.apply(adapters)
            if changed:
                self._llm.reset()
            seconds = time.perf_counter() - started
        finally:
            self._lock.release()
        self.info = replace(self.info, adapters=tuple(records))
        log.info("adapters %s applied in %.4f s", [r["id"] for r in records], seconds)
        return seconds

    def clear_cache(self) -> None:
        """Forget the evaluated tokens (KV cache), e.g. after an adapter change; the next prompt is evaluated in full."""
        with self._lock:
            self._llm.reset()

    def close(self) -> None:
        """Free the model (waits for a running generation to finish first)."""
        with self._lock:
            if self._llm is not None:
                if self._adapters is not None:
                    self._adapters.clear()
                self._llm.close()
                self._llm = None


def _report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    log.debug("load %.0f%%: %s", fraction * 100, message)
    if progress is not None:
        progress(LoadProgress(fraction, message))


def load(config: LoadedConfig, progress: ProgressCallback | None = None) -> LlamaCppModel:
    """Load ``[llm] model`` (a .gguf path, a starter name, or empty for SmolLM2) with llama.cpp."""
    from agent.file_hash import file_sha256
    from agent.llm.llamacpp.load import open_llama, pick_gguf
    from agent.models import resolve_model_path

    settings = config.settings.llm
    _report(progress, 0.0, "finding the model")
    path = pick_gguf(resolve_model_path(config))
    meta = read_metadata(path)
    trained = context_length(meta)
    n_ctx = min(settings.context_size, trained) if trained else settings.context_size
    _report(progress, 0.1, f"loading {path.name}")
    started = time.perf_counter()
    llm = open_llama(path, n_ctx=n_ctx, threads=settings.threads, gpu_layers=settings.gpu_layers, batch_size=settings.batch_size)
    moe, moe_status = _moe_capture(llm, meta, settings.moe_routing)
    log.info("loaded %s in %.2fs (n_ctx=%d, trained=%s)", path, time.perf_counter() - started, n_ctx, trained)
    _report(progress, 0.8, "hashing the weights")
    template = meta.get("tokenizer.chat_template")
    info = ModelInfo(
        backend=BACKEND, model_id=model_name(meta, path), path=str(path), file_hash=file_sha256(path),
        context_size=int(llm.n_ctx()), chat_template=template if isinstance(template, str) else None,
    )
    if info.chat_template is None:
        log.warning("%s has no chat template; it can tokenize and complete but not chat", path)
    _report(progress, 1.0, f"{info.model_id} ready")
    return LlamaCppModel(llm, info, moe=moe, moe_status=moe_status)


def _moe_capture(llm: Any, meta: dict[str, Any], wanted: bool) -> tuple[RoutingCapture | None, str]:
    """Attach MoE routing capture when asked for and the model has experts: (capture, status)."""
    from agent.llm.llamacpp.load import stderr_into_log
    from agent.llm.llamacpp.moe import RoutingCapture, attach, moe_shape

    shape = moe_shape(meta)
    if shape is None:
        return None, "dense"
    if not wanted:
        return None, "off"
    try:
        capture = RoutingCapture(shape)
    except AttributeError as exc:  # a llama.cpp build without the ggml symbols the callback reads
        log.warning("MoE routing capture is not available with this llama-cpp-python build (%s)", exc)
        return None, "unavailable"
    try:
        with stderr_into_log():
            attach(llm, capture)
    except ModelError:
        llm.close()
        raise
    log.info("MoE routing capture on (%d layers, %d experts, top %d)", shape.n_layers, shape.n_experts, shape.n_used)
    return capture, "captured"

