"""LoRA adapters resident on the GPU for the exllamav2 backend.

exllamav2 bakes the scale into an adapter's B matrices when it loads it, so an adapter is kept
per (folder, weights hash, scale). Each folder is read and checked against the base model's
``config.json`` (:mod:`agent.llm.peft_adapter`) before exllamav2 sees it, so a misfit is refused
with one clear line and the current adapters stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.llm.peft_adapter import AdapterError, check_fits, read_adapter

log = logging.getLogger(__name__)

Key = tuple[str, str, float]


class AdapterSet:
    """Adapters loaded into one exllamav2 model, and which of them are active."""

    def __init__(self, model: Any, base_folder: Path, *, keep_loaded: bool = True) -> None:
        self.model = model
        self.base_folder = base_folder
        self.keep_loaded = keep_loaded
        self._loaded: dict[Key, Any] = {}
        self._active: list[Key] = []

    def prepare(self, adapters: Sequence[tuple[str | Path, float]]) -> tuple[list[Any], list[dict]]:
        """Load (if needed) and return the ExLlamaV2Lora objects and log records for ``adapters``."""
        infos = [(read_adapter(path), float(scale)) for path, scale in adapters]
        for info, _ in infos:
            check_fits(info, self.base_folder)
        keys = [(str(info.path), info.sha256, scale) for info, scale in infos]
        for (info, scale), key in zip(infos, keys, strict=True):
            if key not in self._loaded:
                self._loaded[key] = self._load(info.path, scale)
        self._active = keys
        return [self._loaded[k] for k in keys], [info.log_record(scale) for info, scale in infos]

    def _load(self, path: Path, scale: float) -> Any:
        from exllamav2 import ExLlamaV2Lora

        try:
            return ExLlamaV2Lora.from_directory(self.model, str(path), lora_scaling=scale)
        except (AssertionError, ValueError, KeyError) as exc:
            message = str(exc).replace("## Error:", "").strip() or type(exc).__name__
            raise AdapterError(f"adapter {path.name} cannot be applied to this model: {message}") from None

    def release_unused(self) -> None:
        """Unload adapters no persona is using now, unless they are kept for quick switching back."""
        if self.keep_loaded:
            return
        for key in [k for k in self._loaded if k not in self._active]:
            self._loaded.pop(key).unload()
            log.debug("unloaded adapter %s", key[0])

    def unload_all(self) -> None:
        for lora in self._loaded.values():
            lora.unload()
        self._loaded.clear()
        self._active = []
