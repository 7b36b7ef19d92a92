"""Split files written into the export's temporary folder (owner-only), streamed row by row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Protocol

from agent.private import private_dir, private_opener


class Sink(Protocol):
    """Where rows of one format go, split by split."""

    def write(self, split: str, row: dict[str, Any]) -> None:
        """Append one row to a split."""
        ...

    def close(self) -> dict[str, int]:
        """Finish every file; rows written per file (relative path)."""
        ...


class JsonlSink:
    """``data/<split>.jsonl``, one JSON object per line (UTF-8, non-ASCII kept readable)."""

    def __init__(self, root: Path, folder: str = "data") -> None:
        self.root = root
        self.folder = folder
        self._files: dict[str, IO[str]] = {}
        self.rows: dict[str, int] = {}

    def path(self, split: str) -> str:
        """The file of a split, relative to the export folder."""
        return f"{self.folder}/{split}.jsonl"

    def write(self, split: str, row: dict[str, Any]) -> None:
        handle = self._files.get(split)
        if handle is None:
            private_dir(self.root / self.folder)
            handle = self._files[split] = open(self.root / self.path(split), "x", encoding="utf-8",
                                               opener=private_opener, buffering=1 << 20)
            self.rows[self.path(split)] = 0
        handle.write(json.dumps(row, ensure_ascii=False))
        handle.write("\n")
        self.rows[self.path(split)] += 1

    def close(self) -> dict[str, int]:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        return dict(self.rows)
