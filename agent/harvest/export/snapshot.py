"""One consistent read snapshot of the dialogue log, taken without blocking its writer.

The file is opened read-only (``mode=ro`` URI) and everything an export reads happens inside one
``BEGIN`` … ``ROLLBACK`` read transaction: in WAL mode the writer (the voice loop) keeps
committing turns meanwhile, and the export sees the log exactly as it was when it started.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.errors import UserError
from agent.log.migrations import SCHEMA_VERSION, user_version


class ExportError(UserError):
    """An export that cannot run as asked (exit code 2: bad usage or an unreadable log)."""

    exit_code = 2


@dataclass(frozen=True)
class LogIdentity:
    """Which log file, and which state of it, an export read."""

    path: str
    size: int
    mtime: float
    inode: int
    schema_version: int
    turns: int
    max_turn_id: int
    conversations: int


@contextmanager
def read_snapshot(path: Path) -> Iterator[tuple[sqlite3.Connection, LogIdentity]]:
    """A read-only connection inside one read transaction, and the identity of what it sees."""
    if not path.is_file():
        raise ExportError(f"{path}: no dialogue log here")
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=5.0)
    except sqlite3.Error as exc:
        raise ExportError(f"{path}: cannot open the dialogue log: {exc}") from None
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("BEGIN")
        identity = _identity(conn, path)
        yield conn, identity
    except sqlite3.DatabaseError as exc:
        raise ExportError(f"{path}: not a readable dialogue log: {exc}") from None
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def _identity(conn: sqlite3.Connection, path: Path) -> LogIdentity:
    version = user_version(conn)  # the first read: it starts the snapshot
    if version > SCHEMA_VERSION:
        raise ExportError(f"{path}: dialogue log schema version {version} is newer than this program "
                          f"knows ({SCHEMA_VERSION}); upgrade epistemic-engine")
    if version < 1:
        raise ExportError(f"{path}: not a dialogue log (schema version {version})")
    turns, max_id = conn.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM turns").fetchone()
    conversations = conn.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
    info = os.stat(path)
    return LogIdentity(str(path.resolve()), info.st_size, info.st_mtime, info.st_ino, version,
                       int(turns), int(max_id), int(conversations))


def turn_columns(conn: sqlite3.Connection) -> frozenset[str]:
    """The columns the ``turns`` table has in this log (older schemas lack some)."""
    return frozenset(row[1] for row in conn.execute("PRAGMA table_info(turns)"))
