"""``manifest.json``: the query, the log file's identity, row counts and a hash of every file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from agent.harvest.export.snapshot import LogIdentity
from agent.private import private_opener

SQL = "SELECT <turn columns> FROM turns ORDER BY conversation_id, id  -- one read transaction"


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative POSIX path -> sha256), the manifest itself excepted."""
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def write(root: Path, *, options: dict[str, Any], identity: LogIdentity, rows: dict[str, int],
          counts: dict[str, Any], created_at: float, version: str) -> dict[str, Any]:
    """Write ``manifest.json`` (owner-only) after every other file; its content."""
    manifest = {
        "created_at": created_at, "exporter": f"epistemic-engine {version}",
        "query": {"options": options, "sql": SQL},
        "log": asdict(identity), "rows": rows, "counts": counts, "files": file_hashes(root),
    }
    with open(root / "manifest.json", "x", encoding="utf-8", opener=private_opener) as handle:
        json.dump(manifest, handle, ensure_ascii=False, indent=2)
    return manifest
