"""File identity: the sha256 of model weights and adapters, hashed once per file version.

Weights are gigabytes; each hash is remembered in a small JSON file in the user cache folder,
keyed by absolute path and checked against size and modification time, so a model or adapter
is re-hashed only after it changed. Every backend and the adapter parser use this one function.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from audio.paths import cache_dir

log = logging.getLogger(__name__)

CACHE_FILE = "file_hashes.json"
BLOCK = 1 << 20
_lock = threading.Lock()  # one read-modify-write of the cache file at a time in this process


def hash_cache_file() -> Path:
    """Where remembered hashes are kept."""
    return cache_dir() / CACHE_FILE


def _read_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a cache we cannot write only costs time
        log.warning("cannot write hash cache %s: %s", path, exc)


def sha256_of(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (no cache)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path, cache_file: Path | None = None) -> str:
    """sha256 of a file, remembered by (absolute path, size, mtime) so big weights are hashed once."""
    path = Path(path).resolve()
    stat = path.stat()
    cache_file = cache_file or hash_cache_file()
    entry = _read_cache(cache_file).get(str(path))
    if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return str(entry["sha256"])
    value = sha256_of(path)
    with _lock:
        cache = _read_cache(cache_file)
        cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": value}
        _write_cache(cache_file, cache)
    return value
