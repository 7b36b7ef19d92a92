"""PEFT LoRA adapter -> llama.cpp LoRA GGUF, written by our own code with ``gguf.GGUFWriter``.

The file holds ``general.type = adapter``, ``adapter.type = lora``, ``adapter.lora.alpha`` and, per
adapted linear layer, ``blk.N.<name>.weight.lora_a`` / ``.lora_b``: PEFT's A (``[r, in]``) and B
(``[out, r]``) as they are (llama.cpp applies ``scale * alpha / r`` itself). llama.cpp's HF converter
permutes the rows of Llama's q/k projections (rotary pairs interleaved), so the same permutation
is applied to the rows of their B matrices: ``(B @ A)`` permuted by rows is ``(permuted B) @ A``.
Tensor names come from gguf's own HF -> GGUF name map, so other architectures map too.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.errors import ModelError
from agent.llm.peft_adapter import WEIGHTS_FILE, AdapterError, read_adapter

log = logging.getLogger(__name__)

# GGUF architectures whose HF converter permutes q/k rows (LlamaModel.modify_tensors)
PERMUTE_QK_ARCHS = frozenset({"llama"})
_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<half>[AB])(?:\.[A-Za-z0-9_]+)?\.weight$")
# HF model_type -> GGUF architecture name, where they differ
_HF_TO_GGUF_ARCH = {"mistral": "llama", "smollm3": "smollm3"}


@dataclass(frozen=True)
class BaseShape:
    """What the conversion needs to know of the base model: its GGUF architecture and head counts."""

    arch: str
    n_head: int
    n_head_kv: int
    n_layers: int


def base_shape_from_gguf_meta(meta: dict[str, Any]) -> BaseShape:
    """The BaseShape of a GGUF model from its header (``llama.attention.head_count`` ...)."""
    arch = str(meta.get("general.architecture") or "")
    try:
        heads = int(meta[f"{arch}.attention.head_count"])
        layers = int(meta[f"{arch}.block_count"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(f"the GGUF header of this {arch or 'unknown'} model lacks head or block counts") from None
    kv = meta.get(f"{arch}.attention.head_count_kv")
    return BaseShape(arch, heads, int(kv) if kv else heads, layers)


def base_shape_from_hf_config(config: dict[str, Any], arch: str | None = None) -> BaseShape:
    """The BaseShape of a Hugging Face model from its ``config.json`` (``arch`` overrides the GGUF name)."""
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    model_type = str(text.get("model_type") or config.get("model_type") or "")
    heads = int(text["num_attention_heads"])
    return BaseShape(
        arch or _HF_TO_GGUF_ARCH.get(model_type, model_type), heads,
        int(text.get("num_key_value_heads") or heads), int(text["num_hidden_layers"]),
    )


def permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k permutation (convert_hf_to_gguf ``LlamaModel.permute``) applied to rows."""
    rows = weight.shape[0]
    if rows % (2 * n_head):
        raise AdapterError(f"a q/k LoRA with {rows} output rows does not fit a model with {n_head} heads")
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _load_tensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as float32 numpy (bf16 through torch when present)."""
    try:
        from safetensors.numpy import load_file

        return {k: v.astype(np.float32) for k, v in load_file(str(path)).items()}
    except (TypeError, ValueError):  # bf16 has no numpy dtype
        from safetensors.torch import load_file as load_torch

        return {k: v.float().numpy() for k, v in load_torch(str(path)).items()}


def _tensor_name_map(arch: str, n_layers: int) -> Any:
    import gguf

    by_name = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}
    if arch not in by_name:
        raise AdapterError(f"architecture {arch!r} is unknown to the gguf package; cannot name its LoRA tensors")
    return gguf.get_tensor_name_map(by_name[arch], n_layers)


def gguf_lora_tensors(peft: dict[str, np.ndarray], base: BaseShape) -> dict[str, np.ndarray]:
    """PEFT tensors (``...q_proj.lora_A.weight``) -> llama.cpp names (``blk.0.attn_q.weight.lora_a``)."""
    names = _tensor_name_map(base.arch, base.n_layers)
    out: dict[str, np.ndarray] = {}
    for key, value in sorted(peft.items()):
        match = _PEFT_KEY.match(key)
        if match is None:
            raise AdapterError(f"tensor {key!r} is not a LoRA matrix; a GGUF LoRA cannot carry it")
        module, half = match["module"], match["half"]
        gguf_name = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if gguf_name is None:
            raise AdapterError(f"no llama.cpp tensor for {module} of a {base.arch} model")
        if half == "B" and base.arch in PERMUTE_QK_ARCHS:
            if module.endswith("q_proj"):
                value = permute_rows(value, base.n_head)
            elif module.endswith("k_proj"):
                value = permute_rows(value, base.n_head_kv)
        out[f"{gguf_name}.lora_{half.lower()}"] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def convert_peft_to_gguf(adapter_dir: str | Path, out_path: str | Path, base: BaseShape, *, name: str = "") -> Path:
    """Write the PEFT adapter in ``adapter_dir`` as a llama.cpp LoRA GGUF at ``out_path`` (F32)."""
    try:
        import gguf
    except ImportError as exc:
        from agent.errors import MissingExtra

        raise MissingExtra(f"converting a LoRA to GGUF needs the gguf package ({exc}): pip install 'epistemic-engine[train]'") from None
    info = read_adapter(adapter_dir)
    # llama.cpp scales by alpha / r; rsLoRA's alpha / sqrt(r) is the same with alpha * sqrt(r)
    alpha = info.alpha * math.sqrt(info.rank) if info.use_rslora else info.alpha
    tensors = gguf_lora_tensors(_load_tensors(info.path / WEIGHTS_FILE), base)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".gguf.tmp")
    writer = gguf.GGUFWriter(str(tmp), base.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    writer.add_name(name or info.path.name)
    writer.add_string("adapter.peft.sha256", info.sha256)
    for tensor_name, value in tensors.items():
        writer.add_tensor(tensor_name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    log.info("converted %s -> %s (%d tensors, alpha %.3g, %s)", info.path, out, len(tensors), alpha, base.arch)
    return out


def read_hf_config(folder: str | Path) -> dict[str, Any]:
    """A model folder's ``config.json``."""
    path = Path(folder) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the model's config ({exc})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object")
    return data
