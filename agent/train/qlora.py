"""QLoRA: the base loaded in 4-bit NF4 by bitsandbytes on a CUDA GPU, the LoRA trained on top of it.

Only the frozen base is quantised (NF4, double quantisation, bf16 compute where the GPU has it,
else fp16); the LoRA weights stay unquantised, so the PEFT adapter and the llama.cpp LoRA GGUF are
the same files a plain run writes. QLoRA quantises a transformers folder's 16/32-bit weights; a
GGUF base is first dequantised into such a folder (:mod:`agent.train.base_weights`, cached) and
that folder is quantised. bitsandbytes comes from the optional ``[qlora]`` extra, imported lazily.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from agent.errors import BackendUnavailable, MissingExtra
from agent.train.torch_env import import_peft, import_training

INSTALL = "pip install 'epistemic-engine[qlora]'"
NO_CUDA = "QLoRA needs a CUDA GPU; on the CPU train without --qlora"


def import_bitsandbytes() -> Any:
    """The bitsandbytes module; MissingExtra naming the [qlora] extra when absent."""
    try:
        return importlib.import_module("bitsandbytes")
    except ImportError as exc:
        raise MissingExtra(f"--qlora needs bitsandbytes from the optional [qlora] extra ({exc}): {INSTALL}") from None


def check_qlora() -> None:
    """Refuse a QLoRA run in one line before any heavy work: no CUDA GPU, or no bitsandbytes."""
    torch, _ = import_training()
    if not torch.cuda.is_available():
        raise BackendUnavailable(NO_CUDA)
    import_bitsandbytes()


def compute_dtype_name() -> str:
    """``bfloat16`` where the GPU supports it, else ``float16``."""
    torch, _ = import_training()
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def quantization() -> dict[str, Any]:
    """The quantisation of a QLoRA run, as training.json and the card record it."""
    bnb = import_bitsandbytes()
    return {"method": "qlora", "bits": 4, "quant_type": "nf4", "double_quant": True,
            "compute_dtype": compute_dtype_name(), "bitsandbytes": str(getattr(bnb, "__version__", "?"))}


def load_quantised(folder: Path) -> Any:
    """The base at ``folder`` in 4-bit NF4 on the current GPU, prepared for k-bit LoRA training."""
    check_qlora()
    torch, transformers = import_training()
    dtype = getattr(torch, compute_dtype_name())
    config = transformers.BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), quantization_config=config, dtype=dtype, device_map={"": torch.cuda.current_device()})
    return import_peft().prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False})
