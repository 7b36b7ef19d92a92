"""Trainable base weights: a transformers model folder, or the GGUF the backend runs, dequantised.

A GGUF is dequantised by transformers (``gguf_file=``) into float32 weights once and cached under
the user cache folder by the file's sha256, so the next run starts from the cached folder in
seconds. transformers marks such a model as "quantized with gguf" and refuses to save it until
``hf_quantizer`` and ``config.quantization_config`` are removed; the saved folder is then an
ordinary model folder (config.json, safetensors, the tokenizer with its chat template).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelError
from agent.file_hash import file_sha256
from agent.train.convert import (
    BaseShape,
    base_shape_from_gguf_meta,
    base_shape_from_hf_config,
    read_hf_config,
)

log = logging.getLogger(__name__)

MARKER = "epistemic_base.json"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BaseWeights:
    """A base model ready to train on: a transformers folder and the model it stands for."""

    folder: Path  # transformers folder (config.json, weights, tokenizer)
    source: Path  # what the user named: the .gguf file or the folder itself
    sha256: str  # of the .gguf, or of the folder's first weights file
    name: str
    shape: BaseShape  # GGUF architecture and head counts, for the LoRA conversion

    def describe(self) -> dict[str, str]:
        """The base as the training card records it."""
        return {"name": self.name, "source": str(self.source), "sha256": self.sha256, "arch": self.shape.arch}


def _weights_file(folder: Path) -> Path:
    found = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not found:
        raise ModelError(f"{folder}: no model weights (*.safetensors) in this folder")
    return found[0]


def _from_folder(folder: Path) -> BaseWeights:
    config = read_hf_config(folder)
    marker = folder / MARKER
    if marker.is_file():  # a cached dequantised GGUF: keep the GGUF's identity
        meta = json.loads(marker.read_text(encoding="utf-8"))
        shape = BaseShape(**meta["shape"])
        return BaseWeights(folder, Path(meta["source"]), meta["sha256"], meta["name"], shape)
    sha = file_sha256(_weights_file(folder))
    return BaseWeights(folder, folder, sha, folder.name, base_shape_from_hf_config(config))


def default_cache_root() -> Path:
    """Where dequantised GGUF bases are kept: ``<user cache>/train-bases``."""
    from audio.paths import cache_dir

    return cache_dir() / "train-bases"


def prepare_base(
    spec: str | Path, *, cache_root: Path | None = None, progress: Progress | None = None
) -> BaseWeights:
    """The trainable base for ``spec`` (a transformers folder or a .gguf file), dequantising once."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return _from_folder(path)
        from agent.llm.llamacpp.load import pick_gguf

        path = pick_gguf(path)
    if not path.is_file():
        raise ModelError(f"{path}: base model not found; name a transformers model folder or a .gguf file")
    if path.suffix != ".gguf":
        raise ModelError(f"{path}: not a .gguf file or a transformers model folder")
    sha = file_sha256(path)
    folder = (cache_root or default_cache_root()) / f"{path.stem}-{sha[:16]}"
    if not (folder / MARKER).is_file():
        _dequantise(path, sha, folder, progress or (lambda _m: None))
    return _from_folder(folder)


def _dequantise(gguf_path: Path, sha: str, folder: Path, progress: Progress) -> None:
    """Load ``gguf_path`` through transformers (float32) and save it as a model folder at ``folder``."""
    from agent.llm.llamacpp.gguf import model_name, read_metadata
    from agent.train.torch_env import import_training

    torch, transformers = import_training()
    meta = read_metadata(gguf_path)
    started = time.perf_counter()
    progress(f"dequantising {gguf_path.name} into trainable float32 weights (once; cached)")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{gguf_path}: transformers cannot dequantise this GGUF ({exc}); train from a model folder instead") from None
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    progress(f"saving the dequantised weights ({time.perf_counter() - started:.0f} s so far)")
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shape = base_shape_from_gguf_meta(meta)
    marker = {"source": str(gguf_path), "sha256": sha, "name": model_name(meta, gguf_path), "shape": shape.__dict__}
    (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    progress(f"base ready in {time.perf_counter() - started:.0f} s: {folder}")
    log.info("dequantised %s into %s", gguf_path, folder)
