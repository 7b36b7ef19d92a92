"""Assemble an :class:`~agent.llm.exllamav2.model.ExLlamaV2Model` from the configuration.

Order matters for clear errors: CUDA first (so a CPU machine hears about CUDA, not about a
missing model), then the model folder and its chat template, then the slow GPU load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import ConfigError, ModelError
from agent.file_hash import file_sha256
from agent.llm.base import LoadProgress, ModelInfo, ProgressCallback
from agent.llm.exllamav2.model import ExLlamaV2Model
from agent.llm.exllamav2.runtime import import_exllamav2, load_parts, make_generator, require_cuda
from agent.llm.hf_template import load_chat_template

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig

log = logging.getLogger(__name__)


def model_folder(config: LoadedConfig, name: str, key: str) -> Path:
    """A model folder named in the config: a path, or a folder inside ``[paths] models_dir``."""
    if not name:
        raise ConfigError(
            f"{key} is empty: the exllamav2 backend needs a model folder (EXL2 or FP16 safetensors); "
            "get one with `epistemic models pull` and set llm.model to its folder"
        )
    for candidate in (config.resolve(name), config.resolve(config.settings.paths.models_dir) / name):
        if candidate.is_dir():
            return candidate.resolve()
    raise ModelError(f"{key} = {name!r}: no such model folder")


def weights_hash(folder: Path) -> str:
    """sha256 of the first weights file of the folder (by name), as ModelInfo.file_hash (hashed once
    per file version: GPU weights are gigabytes)."""
    files = sorted(folder.glob("*.safetensors"))
    return file_sha256(files[0]) if files else ""


def load_model(config: LoadedConfig, progress: ProgressCallback) -> ExLlamaV2Model:
    """Load the configured model, its draft model (if any) and the dynamic generator."""
    require_cuda()
    progress(LoadProgress(0.0, "importing exllamav2 (the first import compiles its CUDA kernels: minutes)"))
    version = import_exllamav2()
    from exllamav2 import ExLlamaV2Tokenizer

    settings = config.settings
    ex = settings.exllamav2
    folder = model_folder(config, settings.llm.model, "llm.model")
    draft = model_folder(config, ex.draft_model, "exllamav2.draft_model") if ex.draft_model else None
    template = load_chat_template(folder)
    max_seq_len = ex.max_seq_len or settings.llm.context_size
    progress(LoadProgress(0.03, f"exllamav2 {version}: loading {folder.name}"))
    parts = load_parts(folder, max_seq_len, ex, draft, progress)
    progress(LoadProgress(0.96, "tokenizer and generator"))
    try:
        tokenizer = ExLlamaV2Tokenizer(parts.config)
    except (AssertionError, ValueError, OSError) as exc:
        raise ModelError(f"{folder}: tokenizer cannot be loaded ({exc})") from None
    generator = make_generator(parts, tokenizer, ex)
    progress(LoadProgress(0.98, "hashing weights"))
    info = ModelInfo(
        backend="exllamav2", model_id=folder.name, path=str(folder), file_hash=weights_hash(folder),
        context_size=parts.config.max_seq_len, chat_template=template.template,
    )
    progress(LoadProgress(1.0, f"{folder.name} ready"))
    log.info("exllamav2 %s loaded %s (seq %d, cache %s, drafting %s)", version, folder, parts.config.max_seq_len,
             ex.cache_type, ex.speculative_method)
    return ExLlamaV2Model(parts, tokenizer, generator, template, info, ex)


def load(config: LoadedConfig, progress: ProgressCallback | None = None) -> ExLlamaV2Model:
    """Load ``[llm] model`` (an EXL2 or FP16 folder) as ``[exllamav2]`` says; CUDA machines only."""
    return load_model(config, progress or (lambda _p: None))
