"""Which missing modules are optional extras (a one-line install hint) and which are bugs.

A command whose optional extra is not installed says which extra to install. Any other missing
module is a broken installation or a bug in this program, and must never be hidden.
"""

from __future__ import annotations

from agent.errors import MissingExtra

DISTRIBUTION = "epistemic-engine"
INTERNAL_PACKAGES = ("agent", "audio", "tui")

# top-level module -> the extras (pyproject [project.optional-dependencies]) that install it
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "exllamav2": ("gpu",),
    "tokenizers": ("gpu",),
    "torch": ("gpu", "train"),
    "safetensors": ("gpu", "train"),
    "transformers": ("train",),
    "peft": ("train",),
    "gguf": ("train",),
    "trl": ("train",),
    "bitsandbytes": ("qlora",),
    "datasets": ("harvest",),
    "pyarrow": ("harvest",),
    "datasketch": ("harvest",),
    "openai": ("remote",),
    "trafilatura": ("knowledge",),
    "pypdf": ("knowledge",),
    "snowballstemmer": ("knowledge",),
    "matplotlib": ("plot",),
}


def top_module(exc: ModuleNotFoundError) -> str:
    """The top-level package of the module that could not be found."""
    return (exc.name or "").split(".")[0]


def is_internal(exc: ModuleNotFoundError) -> bool:
    """True when the missing module is part of this program (agent, audio, tui)."""
    return top_module(exc) in INTERNAL_PACKAGES


def install_hint(extras: tuple[str, ...]) -> str:
    """``pip install 'epistemic-engine[gpu]'`` (or several alternatives)."""
    return " or ".join(f"pip install '{DISTRIBUTION}[{extra}]'" for extra in extras)


def missing_extra(exc: ModuleNotFoundError, needed_by: str) -> MissingExtra | None:
    """The user error for a module of an optional extra; None for anything else."""
    extras = EXTRA_MODULES.get(top_module(exc))
    if extras is None:
        return None
    which = " or ".join(f"[{extra}]" for extra in extras)
    return MissingExtra(
        f"{needed_by} needs the optional {which} extra (module {exc.name} is not installed): {install_hint(extras)}"
    )
