"""Loading a GGUF model into llama-cpp-python quietly, with clear errors.

llama.cpp's own log lines go to this module's logger (DEBUG, warnings and errors above that),
and anything the C library writes straight to file descriptor 2 while loading is captured into
the log too, so nothing reaches the user's terminal.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import ModelError

log = logging.getLogger(__name__)

_LEVELS = {2: logging.WARNING, 3: logging.ERROR}
_callback_ref: Any = None  # keep the ctypes callback alive for the process's lifetime


def route_llama_logs() -> None:
    """Send llama.cpp / ggml log lines to :mod:`logging` instead of stderr (idempotent)."""
    global _callback_ref
    if _callback_ref is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def _forward(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", errors="replace").rstrip()
        if message:
            log.log(_LEVELS.get(level, logging.DEBUG), "llama.cpp: %s", message)

    _callback_ref = _forward
    llama_cpp.llama_log_set(_forward, ctypes.c_void_p(0))


@contextlib.contextmanager
def stderr_into_log() -> Iterator[None]:
    """Capture what C code writes to fd 2 during the block and log it at DEBUG."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable stderr (embedded, closed): nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured = sink.read().decode("utf-8", errors="replace").strip()
            if captured:
                log.debug("llama.cpp stderr while loading:\n%s", captured)


def pick_gguf(path: Path) -> Path:
    """``path`` itself, or the one .gguf file inside a folder; ModelError otherwise."""
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.gguf") if "mmproj" not in p.name.lower())
        if len(found) == 1:
            return found[0]
        what = "no .gguf file" if not found else f"{len(found)} .gguf files ({', '.join(p.name for p in found[:4])})"
        raise ModelError(f"{path}: folder holds {what}; set [llm] model to one .gguf file (see `epistemic models list`)")
    raise ModelError(
        f"{path}: model file not found; set [llm] model to an existing .gguf file, leave it empty for "
        "the embedded model, or see `epistemic models list`"
    )


def open_llama(path: Path, *, n_ctx: int, threads: int, gpu_layers: int, batch_size: int) -> Any:
    """A ``llama_cpp.Llama`` for ``path`` with nothing printed; ModelError when llama.cpp refuses it."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelError(f"llama-cpp-python is not installed ({exc}); pip install llama-cpp-python") from None
    route_llama_logs()
    n_threads = threads or os.cpu_count() or 1
    try:
        with stderr_into_log():
            return Llama(
                model_path=str(path), n_ctx=n_ctx, n_batch=min(batch_size, n_ctx), n_threads=n_threads,
                n_threads_batch=n_threads, n_gpu_layers=gpu_layers, logits_all=False, verbose=False,
            )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelError(
            f"{path}: llama.cpp cannot load this model ({exc}); the file may be corrupt or of an "
            "unsupported architecture: download it again or set [llm] model to another file"
        ) from None
