"""Importing the training stack (torch, transformers, peft) with a clear error when it is missing."""

from __future__ import annotations

import os
import warnings
from typing import Any

from agent.errors import MissingExtra

INSTALL = "pip install 'epistemic-engine[train]'"


def import_training() -> tuple[Any, Any]:
    """``(torch, transformers)``; MissingExtra naming the [train] extra when either is absent."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingExtra(f"training needs the optional [train] extra ({exc}): {INSTALL}") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # our own progress line says what is loading
    warnings.filterwarnings("ignore", message=".*deprecated and will be removed in v6", category=FutureWarning)
    return torch, transformers


def import_peft() -> Any:
    """The peft module; MissingExtra naming the [train] extra when absent."""
    try:
        import peft
    except ImportError as exc:
        raise MissingExtra(f"LoRA training needs the optional [train] extra ({exc}): {INSTALL}") from None
    return peft


def set_threads(threads: int) -> int:
    """Use ``threads`` CPU threads in torch (0 = all cores); the number in use."""
    torch, _ = import_training()
    wanted = threads or os.cpu_count() or 1
    torch.set_num_threads(wanted)
    return wanted


def device_and_dtype() -> tuple[str, Any]:
    """``("cuda", bfloat16)`` where a GPU is usable, else ``("cpu", float32)``."""
    torch, _ = import_training()
    if torch.cuda.is_available():
        return "cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return "cpu", torch.float32
