"""The one-line errors of ingestion and search."""

from __future__ import annotations

import importlib
from types import ModuleType

from agent.errors import MissingExtra, UserError


class KnowledgeError(UserError):
    """A document that cannot be read or fetched, or a knowledge store that cannot be used (exit 6)."""

    exit_code = 6


def require(module: str, needed_for: str) -> ModuleType:
    """Import ``module`` of the ``knowledge`` extra, or raise MissingExtra saying how to install it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingExtra(
            f"{needed_for} needs the optional [knowledge] extra (module {exc.name} is not installed): "
            "pip install 'epistemic-engine[knowledge]'"
        ) from None
