"""Owner-only files and folders, whatever the umask: the user's words and voice stay theirs.

Everything the product writes about the user (dialogue database and its -wal/-shm, recorded
utterances, exports, the program log) is created through these helpers: folders 0700, files
0600. Existing ones the user owns are tightened to the same modes; one owned by someone else is
left as it is (with a warning in the log), since only its owner may change it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tighten(path: Path, mode: int) -> None:
    """Remove the bits of ``path``'s mode outside ``mode`` (group and others) if it is ours; bits
    the user took away himself (a read-only folder) stay away."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    current = stat.S_IMODE(info.st_mode)
    mode = current & mode
    if current == mode:
        return
    if info.st_uid != os.getuid():
        log.warning("%s: belongs to another user; left at mode %o", path, stat.S_IMODE(info.st_mode))
        return
    os.chmod(path, mode)


def is_writable(path: Path) -> bool:
    """Writable by us AND not marked read-only (respected even when running as root)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & 0o222)


def private_dir(path: str | os.PathLike[str]) -> Path:
    """The folder ``path``, created (with any missing parents) as 0700, or tightened to 0700."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made by someone else meanwhile
            _tighten(folder, DIR_MODE)
        else:
            os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    if not path.is_dir():
        raise NotADirectoryError(f"{path}: not a folder")
    _tighten(path, DIR_MODE)
    return path


def private_opener(path: str, flags: int) -> int:
    """An ``opener`` for :func:`open`: a new file is 0600 from its first byte, an old one tightened."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        info = os.fstat(fd)
        if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & ~FILE_MODE:
            os.fchmod(fd, stat.S_IMODE(info.st_mode) & FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def private_file(path: str | os.PathLike[str]) -> Path:
    """The file ``path``, created empty as 0600 if absent (its folder 0700), or tightened to 0600."""
    path = Path(path)
    private_dir(path.parent)
    os.close(private_opener(str(path), os.O_WRONLY | os.O_CREAT))
    return path


def write_private_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file + rename) as a 0600 file in a 0700 folder."""
    path = Path(path)
    private_dir(path.parent)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "xb", opener=private_opener) as handle:
            handle.write(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return path


def copy_private(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy ``source`` to ``target`` atomically as a 0600 file in a 0700 folder."""
    target = Path(target)
    private_dir(target.parent)
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(source, "rb") as src, open(temp, "xb", opener=private_opener) as out:
            shutil.copyfileobj(src, out, length=1 << 20)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def private_sqlite(path: str | os.PathLike[str]) -> Path:
    """Prepare a SQLite database file before connecting: the file 0600 (SQLite gives its -wal and
    -shm the database file's mode), its folder 0700, and side files left by older versions tightened."""
    path = private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        _tighten(path.with_name(path.name + suffix), FILE_MODE)
    return path
