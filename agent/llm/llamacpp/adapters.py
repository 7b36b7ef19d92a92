"""LoRA adapters for the llama.cpp backend: loaded once per model, switched per persona.

A persona names a GGUF LoRA file, or an adapter folder (``models/adapters/NAME``) holding one; a
folder with only a PEFT adapter is converted to GGUF once (into the cache, keyed by its hash).
Each adapter is loaded with ``llama_adapter_lora_init`` once per (file, sha256) and kept; a
switch is one ``llama_set_adapters_lora`` call on the context (about a tenth of a millisecond),
the base model is never reloaded. An adapter for another architecture or with other dimensions
is refused with one line (llama.cpp's own reason) and the active adapters stay as they were.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import ModelError
from agent.file_hash import file_sha256
from agent.llm.llamacpp.gguf import read_metadata

log = logging.getLogger(__name__)

LLAMA_LOGGER = "agent.llm.llamacpp.load"  # where llama.cpp's own log lines are routed


class AdapterMisfit(ModelError):
    """A LoRA adapter that is not a GGUF LoRA, or does not fit the loaded base model."""


@dataclass(frozen=True)
class LoadedAdapter:
    """One GGUF LoRA loaded into the model (``handle`` is llama.cpp's adapter pointer)."""

    path: Path  # the .gguf file llama.cpp read
    source: Path  # what the persona named (file or folder)
    sha256: str
    alpha: float | None
    handle: Any

    @property
    def adapter_id(self) -> str:
        """Folder (or file) name plus the first 12 hex digits of the GGUF's hash."""
        name = self.source.name if self.source.is_dir() else self.path.stem
        return f"{name}@{self.sha256[:12]}"

    def record(self, scale: float) -> dict[str, Any]:
        """The adapter as logged with every turn."""
        return {
            "id": self.adapter_id, "path": str(self.source), "gguf": str(self.path), "scale": scale,
            "sha256": self.sha256, "alpha": self.alpha, "format": "gguf",
        }


class _Collect(logging.Handler):
    """Keeps the lines llama.cpp logs while an adapter loads (its errors arrive at every level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().removeprefix("llama.cpp: ").strip())


def _reason(lines: list[str]) -> str:
    """llama.cpp's own reason: the text after ``failed to apply lora adapter:``."""
    for line in lines:
        if "failed to apply lora adapter" in line:
            return line.split("failed to apply lora adapter:", 1)[-1].strip()
    return "llama.cpp refused it (details in the program log)"


class AdapterBank:
    """The LoRA adapters of one llama.cpp model and the set applied to its context.

    Called only under :class:`LlamaCppModel`'s lock (one thread at a time), so it holds no lock.
    """

    def __init__(self, llm: Any, model_path: str) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        self.model_path = model_path
        self.arch = str(llm.metadata.get("general.architecture", ""))
        self._loaded: dict[tuple[str, str], LoadedAdapter] = {}
        self._active: list[tuple[str, float]] = []  # (sha256, scale) applied to the context now

    def find_gguf(self, source: Path) -> Path:
        """The GGUF LoRA a persona's path stands for (a folder's one .gguf, or a PEFT folder converted)."""
        if source.is_file():
            return source
        if not source.is_dir():
            raise AdapterMisfit(f"{source}: adapter not found")
        found = sorted(source.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        if found:
            raise AdapterMisfit(f"{source}: folder holds {len(found)} .gguf files; name one of them in the persona")
        return self._convert(source)

    def _convert(self, folder: Path) -> Path:
        """A PEFT folder with no GGUF: converted once into the cache, keyed by the weights' hash."""
        from agent.llm.peft_adapter import read_adapter
        from agent.train.convert import base_shape_from_gguf_meta, convert_peft_to_gguf
        from audio.paths import cache_dir

        info = read_adapter(folder)
        out = cache_dir() / "lora-gguf" / f"{folder.name}-{info.sha256[:16]}-{self.arch}.gguf"
        if not out.is_file():
            meta = read_metadata(Path(self.model_path))
            convert_peft_to_gguf(folder, out, base_shape_from_gguf_meta(meta), name=folder.name)
        return out

    def load(self, source: str | Path) -> LoadedAdapter:
        """The adapter ``source`` names, loaded into the model once (AdapterMisfit if it doesn't fit)."""
        source = Path(source).expanduser().resolve()
        path = self.find_gguf(source)
        sha = file_sha256(path)
        key = (str(path), sha)
        if key not in self._loaded:
            self._loaded[key] = self._init(source, path, sha)
        return self._loaded[key]

    def _check_header(self, path: Path) -> float | None:
        meta = read_metadata(path)
        if meta.get("general.type") != "adapter" or meta.get("adapter.type") != "lora":
            raise AdapterMisfit(f"{path}: not a LoRA adapter GGUF (general.type = {meta.get('general.type')!r})")
        arch = meta.get("general.architecture")
        if arch != self.arch:
            raise AdapterMisfit(f"adapter {path.name} is for a {arch} model, but {Path(self.model_path).name} is {self.arch}")
        alpha = meta.get("adapter.lora.alpha")
        return float(alpha) if isinstance(alpha, int | float) else None

    def _init(self, source: Path, path: Path, sha: str) -> LoadedAdapter:
        alpha = self._check_header(path)
        collect = _Collect()
        logger = logging.getLogger(LLAMA_LOGGER)
        level = logger.level
        logger.addHandler(collect)
        logger.setLevel(logging.DEBUG)  # llama.cpp's error lines may arrive as DEBUG records
        try:
            handle = self._lib.llama_adapter_lora_init(self._llm.model, str(path).encode())
        finally:
            logger.setLevel(level)
            logger.removeHandler(collect)
        if not handle:
            raise AdapterMisfit(f"adapter {path.name} does not fit {Path(self.model_path).name}: {_reason(collect.lines)}")
        log.info("loaded LoRA %s (sha256 %s)", path, sha[:12])
        return LoadedAdapter(path=path, source=source, sha256=sha, alpha=alpha, handle=handle)

    def apply(self, wanted: Sequence[tuple[str | Path, float]]) -> tuple[list[dict[str, Any]], bool]:
        """Load what is needed and set these adapters on the context; (log records, whether anything changed).

        Every adapter is loaded and checked before the context changes, so a misfit changes nothing.
        """
        chosen = [(self.load(path), float(scale)) for path, scale in wanted]
        active = [(a.sha256, s) for a, s in chosen]
        changed = active != self._active
        if changed:
            self._set(chosen)
            self._active = active
        return [a.record(s) for a, s in chosen], changed

    def _set(self, chosen: list[tuple[LoadedAdapter, float]]) -> None:
        lib = self._lib
        if not chosen:
            status = lib.llama_set_adapters_lora(self._llm.ctx, None, 0, None)
        else:
            handles = (lib.llama_adapter_lora_p_ctypes * len(chosen))(*(a.handle for a, _ in chosen))
            scales = (ctypes.c_float * len(chosen))(*(s for _, s in chosen))
            status = lib.llama_set_adapters_lora(self._llm.ctx, handles, len(chosen), scales)
        if status != 0:
            raise ModelError(f"llama.cpp could not apply the LoRA adapters (status {status})")

    def clear(self) -> None:
        """Forget loaded adapters (llama.cpp frees them with the model)."""
        self._loaded.clear()
        self._active = []
