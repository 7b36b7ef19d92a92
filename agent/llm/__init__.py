"""Language-model backends, registered by the name used in ``[llm] backend``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from agent.errors import ConfigError

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig
    from agent.llm.base import LanguageModel, ProgressCallback

# name -> "module:function"; the function is ``load(config, progress) -> LanguageModel`` and does
# its heavy imports itself, so listing backends costs nothing.
BACKENDS: dict[str, str] = {
    "llama_cpp": "agent.llm.llamacpp.model:load",
    "exllamav2": "agent.llm.exllamav2.load:load",
    "openai": "agent.llm.openai.model:load",
}


def load_backend(config: LoadedConfig, progress: ProgressCallback | None = None) -> LanguageModel:
    """Load the backend named in ``[llm] backend`` with its model."""
    name = config.settings.llm.backend
    target = BACKENDS.get(name)
    if target is None:
        raise ConfigError(f"llm.backend = {name!r}: unknown backend; choose one of {', '.join(sorted(BACKENDS))}")
    module_name, func_name = target.split(":")
    loader: Callable[..., LanguageModel] = getattr(importlib.import_module(module_name), func_name)
    return loader(config, progress)
