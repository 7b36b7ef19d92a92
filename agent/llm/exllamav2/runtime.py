"""Bring exllamav2 up on the GPU: check CUDA, import (which compiles kernels once), load model + cache.

Nothing here imports torch or exllamav2 at module level: on a machine without CUDA
:func:`require_cuda` raises :class:`BackendUnavailable` with one clear line *before* exllamav2 is
imported (its import JIT-compiles CUDA code and fails obscurely without CUDA).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import BackendUnavailable, ModelError
from agent.llm.base import LoadProgress, ProgressCallback
from agent.llm.exllamav2.settings import ExLlamaV2Settings

log = logging.getLogger(__name__)

PAGE = 256  # exllamav2's cache page size: cache lengths are multiples of it
INSTEAD = "set llm.backend = llama_cpp (or EPISTEMIC_LLM__BACKEND=llama_cpp) to run on the CPU"


def require_cuda() -> None:
    """Check that torch is installed and sees a CUDA GPU; BackendUnavailable (one line) otherwise."""
    try:
        import torch
    except ImportError:
        raise BackendUnavailable(
            "backend exllamav2 needs PyTorch with CUDA, which is not installed: install the [gpu] extra "
            f"(pip install 'epistemic-engine[gpu]') on a machine with an NVIDIA GPU, or {INSTEAD}"
        ) from None
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise BackendUnavailable(
            f"backend exllamav2 needs an NVIDIA GPU, but CUDA is not available here (torch {torch.__version__}, {build}); {INSTEAD}"
        )


def import_exllamav2() -> str:
    """Import exllamav2 (the first import compiles its CUDA kernels: minutes); returns its version."""
    try:
        import exllamav2
    except ImportError:
        raise BackendUnavailable(f"exllamav2 is not installed: install the [gpu] extra, or {INSTEAD}") from None
    except Exception as exc:  # kernel compilation failures come as many exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendUnavailable(f"exllamav2 could not compile or load its CUDA kernels ({first}); {INSTEAD}") from None
    return str(exllamav2.__version__)


def round_to_page(tokens: int) -> int:
    """Smallest multiple of the cache page size that holds ``tokens``."""
    return max(PAGE, -(-tokens // PAGE) * PAGE)


def cache_class(cache_type: str) -> Any:
    """The exllamav2 cache class for ``fp16`` / ``q4`` / ``q6`` / ``q8``."""
    import exllamav2

    return {
        "fp16": exllamav2.ExLlamaV2Cache, "q4": exllamav2.ExLlamaV2Cache_Q4,
        "q6": exllamav2.ExLlamaV2Cache_Q6, "q8": exllamav2.ExLlamaV2Cache_Q8,
    }[cache_type]


@dataclass
class LoadedParts:
    """A model on the GPU with its cache; the draft model and cache when speculative decoding uses one."""

    config: Any
    model: Any
    cache: Any
    draft_model: Any = None
    draft_cache: Any = None


def _stage(progress: ProgressCallback | None, lo: float, hi: float, what: str) -> Callable[[int, int], None]:
    def callback(done: int, total: int) -> None:
        if progress is not None and total:
            progress(LoadProgress(lo + (hi - lo) * done / total, f"{what}: {done}/{total} modules"))

    return callback


def load_one(folder: Path, max_seq_len: int, cache_type: str, settings: ExLlamaV2Settings,
             callback: Callable[[int, int], None]) -> tuple[Any, Any, Any]:
    """(config, model, cache) for one model folder, split as the settings say."""
    from exllamav2 import ExLlamaV2, ExLlamaV2Config

    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: not a model folder (config.json missing); exllamav2 loads EXL2 or FP16 safetensors folders")
    try:
        config = ExLlamaV2Config(str(folder))
        config.max_seq_len = max_seq_len
        config.max_input_len = min(config.max_input_len, max(settings.max_chunk_size, PAGE))
        config.max_attention_size = config.max_input_len ** 2
        model = ExLlamaV2(config)
        size = round_to_page(max(settings.cache_size, max_seq_len))
        if settings.gpu_split:
            model.load(gpu_split=list(settings.gpu_split), callback=callback)
            cache = cache_class(cache_type)(model, max_seq_len=size)
        else:
            cache = cache_class(cache_type)(model, max_seq_len=size, lazy=True)
            model.load_autosplit(cache, reserve_vram=settings.reserve_vram_mb * 1024**2, callback=callback)
    except (AssertionError, ValueError, KeyError, OSError) as exc:
        raise ModelError(f"{folder}: exllamav2 cannot load this model ({exc or type(exc).__name__})") from None
    except RuntimeError as exc:  # CUDA out of memory and friends
        first = (str(exc).strip().splitlines() or ["runtime error"])[0]
        raise ModelError(f"{folder}: loading on the GPU failed ({first}); try a smaller cache_type, max_seq_len or model") from None
    return config, model, cache


def load_parts(folder: Path, max_seq_len: int, settings: ExLlamaV2Settings, draft_folder: Path | None,
               progress: ProgressCallback | None) -> LoadedParts:
    """Load the draft model (if any) and the main model, reporting progress per module."""
    seq = round_to_page(max_seq_len)
    draft = None
    lo = 0.05
    if draft_folder is not None:
        draft = load_one(draft_folder, seq, settings.draft_cache_type, settings, _stage(progress, 0.05, 0.2, "draft model"))
        lo = 0.2
    config, model, cache = load_one(folder, seq, settings.cache_type, settings, _stage(progress, lo, 0.95, "loading"))
    parts = LoadedParts(config=config, model=model, cache=cache)
    if draft is not None:
        _, parts.draft_model, parts.draft_cache = draft
    return parts


def make_generator(parts: LoadedParts, tokenizer: Any, settings: ExLlamaV2Settings) -> Any:
    """The dynamic generator, built the same way for our backend and for the raw benchmark."""
    from exllamav2.generator import ExLlamaV2DynamicGenerator

    drafting = settings.speculative_method is not None
    q_size = max(8, settings.num_draft_tokens + 1) if drafting else 8
    chunk = min(settings.max_chunk_size, parts.config.max_input_len)
    if settings.paged:
        chunk = max(PAGE, chunk // PAGE * PAGE)
    try:
        return ExLlamaV2DynamicGenerator(
            model=parts.model, cache=parts.cache, tokenizer=tokenizer,
            max_batch_size=4 if settings.paged else 1, max_seq_len=parts.config.max_seq_len,
            max_chunk_size=chunk, max_q_size=q_size,
            draft_model=parts.draft_model, draft_cache=parts.draft_cache,
            num_draft_tokens=settings.num_draft_tokens, use_ngram_draft=settings.ngram_draft,
            max_ngram=settings.max_ngram, paged=settings.paged,
        )
    except AssertionError as exc:
        hint = " (paged = true needs flash-attn 2.5.7 or later)" if settings.paged else ""
        raise ModelError(f"exllamav2 generator: {exc}{hint}") from None
