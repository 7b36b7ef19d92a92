"""Watched folders: the knowledge store follows the files in them as they are created, changed and deleted.

:class:`FolderWatcher` first catches up (files added or changed while nobody watched are indexed,
vanished ones forgotten), then waits on ``watchfiles`` (inotify where available) and handles each
debounced batch of changes. Every change is one line to ``report``; a file that cannot be read is a
``failed`` line and leaves its previous chunks as they were.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from agent.errors import UserError
from agent.knowledge.errors import KnowledgeError, require
from agent.knowledge.indexer import Indexer
from agent.knowledge.readers import KINDS
from agent.knowledge.store import StoredDocument

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig

logger = logging.getLogger(__name__)
Report = Callable[[str], None]


@dataclass(frozen=True)
class WatchChange:
    """What one change did: added, updated, unchanged, removed or failed, with its one-line message."""

    status: str
    source: str
    message: str


def indexable(path: str) -> bool:
    """A file the store can read (by its suffix); hidden files and editors' temporaries are not."""
    name = Path(path).name
    return not name.startswith((".", "#", "~")) and not name.endswith("~") and Path(name).suffix.lower() in KINDS


def watched_folders(folders: Iterable[str | Path]) -> list[Path]:
    """The folders resolved; KnowledgeError naming the first one that is not a folder."""
    resolved = []
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise KnowledgeError(f"{folder}: not a folder, cannot watch it")
        resolved.append(path)
    if not resolved:
        raise KnowledgeError("no folder to watch: name one, or list them in [knowledge] watch")
    return resolved


class FolderWatcher:
    """Keeps the store in step with ``folders``.

    :meth:`run` blocks in the thread that calls it (the CLI's main thread, or the TUI's background
    thread) until :meth:`stop` is called from any other thread. Only the running thread uses the
    indexer; ``stop_event`` is the only state shared between threads.
    """

    def __init__(self, indexer: Indexer, folders: Sequence[Path], report: Report, *, debounce_ms: int = 800,
                 on_ready: Callable[[], None] | None = None) -> None:
        self.indexer = indexer
        self.folders = list(folders)
        self.report = report
        self.debounce_ms = debounce_ms
        self.stop_event = threading.Event()
        self.ready = threading.Event()  # set once the catch-up is done and changes are being watched
        self.on_ready = on_ready or (lambda: None)  # called then, in the watching thread

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        """Catch up, then handle changes until stopped (KeyboardInterrupt is raised through)."""
        watchfiles = require("watchfiles", "watching folders")
        self.catch_up()
        watching = watchfiles.watch(*self.folders, watch_filter=lambda _change, path: self._relevant(path),
                                    debounce=self.debounce_ms, step=50, stop_event=self.stop_event,
                                    yield_on_timeout=True, rust_timeout=500)
        for batch in watching:
            if not self.ready.is_set():
                self.ready.set()
                self.on_ready()
            if batch:
                self.apply(sorted({path for _change, path in batch}))

    def _relevant(self, path: str) -> bool:
        return indexable(path) or not Path(path).suffix  # a folder deleted whole has no suffix

    def catch_up(self) -> list[WatchChange]:
        """Index what changed while nobody watched and forget documents whose file is gone."""
        present = sorted(str(p) for folder in self.folders for p in folder.rglob("*") if p.is_file() and indexable(str(p)))
        gone = [d.source for d in self._documents_under(self.folders) if not Path(d.source).is_file()]
        return self.apply([*present, *gone], quiet_unchanged=True)

    def apply(self, paths: Sequence[str], *, quiet_unchanged: bool = False) -> list[WatchChange]:
        """Index each path that exists, forget each that does not; one report line per change."""
        changes = []
        for path in paths:
            change = self._index(path) if Path(path).is_file() else self._forget(path)
            if change is None or (quiet_unchanged and change.status == "unchanged"):
                continue
            changes.append(change)
            self.report(change.message)
        return changes

    def _index(self, path: str) -> WatchChange | None:
        if not indexable(path):
            return None
        try:
            result = self.indexer.add(path)
        except KnowledgeError as exc:
            return WatchChange("failed", path, f"failed    {exc}")
        return WatchChange(result.status, result.source, f"{result.status:<9} {result.source}: {result.chunks} chunks")

    def _forget(self, path: str) -> WatchChange | None:
        store = self.indexer.store
        documents = self._documents_under([Path(path)])
        exact = store.document(str(Path(path).resolve()))
        if exact is not None:
            documents.append(exact)
        for document in documents:
            store.remove_document(document.id)
        if not documents:
            return None
        where = documents[0].source if len(documents) == 1 else f"{path} ({len(documents)} documents)"
        return WatchChange("removed", path, f"removed   {where}: {sum(d.chunk_count for d in documents)} chunks")

    def _documents_under(self, folders: Sequence[Path]) -> list[StoredDocument]:
        prefixes = tuple(str(f.resolve()).rstrip("/") + "/" for f in folders)
        return [d for d in self.indexer.store.documents(memory=False) if d.source.startswith(prefixes)]


Level = Literal["info", "warning", "error"]
STOP_WAIT_S = 5.0


class BackgroundWatch:
    """The folders of ``[knowledge] watch`` followed in a daemon thread while the TUI or ``voice`` runs.

    :meth:`start` and :meth:`stop` are called from the owner's thread; the watching thread has its
    own store connection and only calls ``report(level, line)``, which must be safe to call from it.
    ``_watcher`` is set by the thread before it checks ``_stopping``, and :meth:`stop` sets
    ``_stopping`` before it reads ``_watcher``, so a stop never misses a watcher that started.
    """

    def __init__(self, config: LoadedConfig, report: Callable[[Level, str], None]) -> None:
        self.config = config
        self.report = report
        self._thread: threading.Thread | None = None
        self._watcher: FolderWatcher | None = None
        self._stopping = threading.Event()

    @property
    def folders(self) -> list[str]:
        return [str(self.config.resolve(f)) for f in self.config.settings.knowledge.watch]

    def start(self) -> bool:
        """Start following the configured folders; False if none are configured (or it already runs)."""
        if not self.folders or self._thread is not None:
            return False
        self._thread = threading.Thread(target=self._run, name="knowledge-watch", daemon=True)
        self._thread.start()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the thread and wait briefly for it (it closes its store on the way out)."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)

    def _change(self, line: str) -> None:
        self.report("warning" if line.startswith("failed") else "info", line)

    def _run(self) -> None:
        from agent.knowledge.service import make_indexer, open_store

        try:
            folders = watched_folders(self.folders)
            live = f"watching {', '.join(map(str, folders))}"
            with open_store(self.config) as store:
                self._watcher = FolderWatcher(make_indexer(self.config, store), folders, self._change,
                                              debounce_ms=self.config.settings.knowledge.watch_debounce_ms,
                                              on_ready=lambda: self.report("info", live))
                if not self._stopping.is_set():
                    self._watcher.run()
        except UserError as exc:
            self.report("error", f"watch stopped: {exc}")
        except Exception as exc:  # never let the watcher take its host down
            logger.exception("knowledge watch failed")
            self.report("error", f"watch stopped: {type(exc).__name__}: {exc}")
