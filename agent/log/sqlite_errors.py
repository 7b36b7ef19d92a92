"""SQLite errors of the dialogue log as one clear line (locked, read-only, corrupt, disk full ...)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def describe(exc: sqlite3.Error, action: str, path: Path, busy_timeout: float) -> str:
    """One line for the user: what went wrong with the log file, in words, not SQLite codes."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return f"{path}: dialogue log is locked by another process (waited {busy_timeout:g}s)"
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return f"{path}: dialogue log is read-only"
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text:
        return f"{path}: not a dialogue log (not an SQLite database, or corrupt)"
    if name.startswith("SQLITE_CANTOPEN"):
        return f"{path}: cannot open the dialogue log"
    if name.startswith("SQLITE_FULL"):
        return f"{path}: disk full while {action}"
    return f"{path}: dialogue log error while {action}: {text}"
