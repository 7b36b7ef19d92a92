"""Read and check a PEFT LoRA adapter folder before any backend loads it.

A folder holds ``adapter_config.json`` and ``adapter_model.safetensors``. :func:`read_adapter`
parses both (the safetensors header only, no torch), hashes the files for the dialogue log, and
:func:`check_fits` compares every tensor's shape with the base model's ``config.json``, so an
adapter trained for another model is refused with one clear line instead of a crash or silent
garbage. The base model keeps working either way.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ModelError
from agent.file_hash import file_sha256

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
_KEY = re.compile(r"model\.layers\.(\d+)\.([A-Za-z_]+)\.([A-Za-z0-9_]+)\.lora_(A|B)(?:\.[A-Za-z0-9_]+)?\.weight$")
_FULL_WEIGHTS = ("embed_tokens.weight", "lm_head.weight")
_SKIPPED = (".original_module.weight", ".modules_to_save.weight")
_DTYPES = {"F16", "BF16", "F32"}


class AdapterError(ModelError):
    """A LoRA adapter that is broken or does not fit the base model."""


@dataclass(frozen=True)
class AdapterTensor:
    """One LoRA matrix: ``layer``.``module`` (e.g. ``self_attn.q_proj``), half ``A`` or ``B``."""

    key: str
    layer: int
    module: str
    half: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter folder holds, with file hashes for the dialogue log."""

    path: Path
    rank: int
    alpha: float
    use_rslora: bool
    target_modules: tuple[str, ...]
    base_model: str
    tensors: tuple[AdapterTensor, ...]
    sha256: str  # of adapter_model.safetensors
    config_sha256: str

    @property
    def adapter_id(self) -> str:
        """A short, stable name: folder name plus the first 12 hex digits of the weights hash."""
        return f"{self.path.name}@{self.sha256[:12]}"

    @property
    def scaling(self) -> float:
        """alpha / r (alpha / sqrt(r) with rsLoRA), the factor PEFT applies before the user's scale."""
        return self.alpha / (self.rank ** 0.5 if self.use_rslora else self.rank)

    def log_record(self, scale: float) -> dict[str, Any]:
        """The adapter as logged with each turn."""
        return {
            "id": self.adapter_id, "path": str(self.path), "scale": scale, "rank": self.rank,
            "alpha": self.alpha, "sha256": self.sha256, "config_sha256": self.config_sha256,
        }


def safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file (names, dtypes, shapes) without loading tensors."""
    try:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            if size > 100_000_000:
                raise ValueError("header too large")
            header = json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as exc:
        raise AdapterError(f"{path}: not a readable safetensors file ({exc})") from None
    header.pop("__metadata__", None)
    return header


def _config(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AdapterError(f"{folder}: not a PEFT adapter folder ({CONFIG_FILE} missing)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AdapterError(f"{path}: expected a JSON object")
    return data


def _refuse_unsupported(folder: Path, cfg: dict[str, Any]) -> None:
    kind = cfg.get("peft_type", "LORA")
    problems = {
        f"peft_type {kind!r} (only LoRA is supported)": kind != "LORA",
        "DoRA (use_dora)": bool(cfg.get("use_dora")),
        "fan_in_fan_out weights": bool(cfg.get("fan_in_fan_out")),
        f"trained biases (bias = {cfg.get('bias')!r})": cfg.get("bias", "none") != "none",
        "per-module ranks or alphas (rank_pattern / alpha_pattern)": bool(cfg.get("rank_pattern") or cfg.get("alpha_pattern")),
    }
    found = [name for name, bad in problems.items() if bad]
    if found:
        raise AdapterError(f"{folder}: adapter uses {', '.join(found)}, which the GPU backend cannot apply")


def _parse_tensor(folder: Path, key: str, meta: dict[str, Any]) -> AdapterTensor | None:
    if key.endswith(_SKIPPED) or key.endswith(_FULL_WEIGHTS):
        return None
    match = _KEY.search(key)
    if match is None:
        raise AdapterError(f"{folder}: tensor {key!r} is not a LoRA matrix of a decoder layer; this adapter cannot be applied")
    dtype = str(meta.get("dtype"))
    if dtype not in _DTYPES:
        raise AdapterError(f"{folder}: tensor {key!r} has dtype {dtype}; expected F16, BF16 or F32")
    layer, part, module, half = match.groups()
    return AdapterTensor(key, int(layer), f"{part}.{module}", half, tuple(meta.get("shape", ())), dtype)


def read_adapter(folder: str | Path) -> AdapterInfo:
    """Parse and hash an adapter folder; AdapterError when it is missing, broken or unsupported."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise AdapterError(f"{path}: adapter folder not found")
    cfg = _config(path)
    _refuse_unsupported(path, cfg)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise AdapterError(f"{path}: {WEIGHTS_FILE} missing (convert .bin adapters with PEFT's save_pretrained)")
    parsed = (_parse_tensor(path, k, v) for k, v in safetensors_header(weights).items())
    tensors = tuple(sorted((t for t in parsed if t), key=lambda t: (t.layer, t.module, t.half)))
    if not tensors:
        raise AdapterError(f"{path}: {WEIGHTS_FILE} holds no LoRA matrices")
    try:
        rank, alpha = int(cfg["r"]), float(cfg.get("lora_alpha", cfg["r"]))
    except (KeyError, TypeError, ValueError):
        raise AdapterError(f"{path / CONFIG_FILE}: 'r' (rank) missing or not a number") from None
    targets = cfg.get("target_modules") or sorted({t.module.split(".")[-1] for t in tensors})
    return AdapterInfo(
        path=path.resolve(), rank=rank, alpha=alpha, use_rslora=bool(cfg.get("use_rslora")),
        target_modules=tuple(sorted(targets)) if isinstance(targets, list) else (str(targets),),
        base_model=str(cfg.get("base_model_name_or_path") or ""), tensors=tensors,
        sha256=file_sha256(weights), config_sha256=file_sha256(path / CONFIG_FILE),
    )


def module_dims(base: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each Llama-style linear layer from a base ``config.json``."""
    nested = base.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else base
    hidden, heads = int(text["hidden_size"]), int(text["num_attention_heads"])
    kv_heads = int(text.get("num_key_value_heads") or heads)
    head_dim = int(text.get("head_dim") or hidden // heads)
    inter = int(text.get("intermediate_size") or 0)
    dims = {
        "self_attn.q_proj": (hidden, heads * head_dim),
        "self_attn.k_proj": (hidden, kv_heads * head_dim),
        "self_attn.v_proj": (hidden, kv_heads * head_dim),
        "self_attn.o_proj": (heads * head_dim, hidden),
    }
    if inter:
        dims |= {"mlp.gate_proj": (hidden, inter), "mlp.up_proj": (hidden, inter), "mlp.down_proj": (inter, hidden)}
    return dims


def _mismatch(t: AdapterTensor, rank: int, dims: dict[str, tuple[int, int]], layers: int) -> str | None:
    name = f"layer {t.layer} {t.module} lora_{t.half}"
    if layers and t.layer >= layers:
        return f"{name}: layer {t.layer}, but the base model has {layers} layers"
    expected_rank_dim = t.shape[0] if t.half == "A" else t.shape[-1]
    if len(t.shape) != 2 or expected_rank_dim != rank:
        return f"{name}: shape {list(t.shape)} does not match rank r={rank}"
    if t.module not in dims:
        return None  # a module this check doesn't know; the backend checks it again when loading
    in_f, out_f = dims[t.module]
    want = [rank, in_f] if t.half == "A" else [out_f, rank]
    if list(t.shape) != want:
        return f"{name}: shape {list(t.shape)}, the base model needs {want}"
    return None


def check_fits(adapter: AdapterInfo, base_folder: str | Path) -> None:
    """Refuse (AdapterError) an adapter whose matrices don't fit the base model in ``base_folder``."""
    cfg_path = Path(base_folder) / "config.json"
    try:
        base = json.loads(cfg_path.read_text(encoding="utf-8"))
        dims = module_dims(base)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AdapterError(f"{cfg_path}: cannot read the base model's dimensions ({exc})") from None
    nested = base.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else base
    layers = int(text.get("num_hidden_layers") or 0)
    problems = [p for t in adapter.tensors if (p := _mismatch(t, adapter.rank, dims, layers))]
    if problems:
        trained = f" (trained for {adapter.base_model})" if adapter.base_model else ""
        raise AdapterError(
            f"adapter {adapter.path.name}{trained} does not fit the model in {Path(base_folder).name}: "
            f"{problems[0]}" + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        )
