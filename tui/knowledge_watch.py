"""The folders of ``[knowledge] watch`` kept indexed while the TUI runs (a background thread).

The watcher thread owns its own knowledge store connection and only posts
:class:`KnowledgeWatch.Changed` messages to the app, which shows each as a notification; a turn's
retriever sees the changes at its next search (the store's generation number says so).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Literal

from textual.message import Message

from agent.errors import UserError

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from agent.config_load import LoadedConfig
    from agent.knowledge.watch import FolderWatcher

logger = logging.getLogger(__name__)
STOP_WAIT_S = 5.0


class KnowledgeWatch:
    """Starts and stops the watcher thread (UI thread); the thread itself only posts messages.

    ``_watcher`` is set by the thread once it runs; :meth:`stop` reads it after setting ``_stopping``,
    and the thread checks ``_stopping`` after setting it, so a stop never misses a watcher.
    """

    class Changed(Message):
        """One change in a watched folder (or why watching stopped), as one line."""

        def __init__(self, line: str, severity: Literal["information", "warning", "error"] = "information") -> None:
            super().__init__()
            self.line = line
            self.severity = severity

    def __init__(self, target: MessagePump, config: LoadedConfig) -> None:
        self.target = target
        self.config = config
        self._thread: threading.Thread | None = None
        self._watcher: FolderWatcher | None = None
        self._stopping = threading.Event()

    @property
    def folders(self) -> list[str]:
        return [str(self.config.resolve(f)) for f in self.config.settings.knowledge.watch]

    def start(self) -> bool:
        """Start watching the configured folders; False if none are configured (or it already runs)."""
        if not self.folders or self._thread is not None:
            return False
        self._thread = threading.Thread(target=self._run, name="knowledge-watch", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop the thread and wait briefly for it (it closes its store on the way out)."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.stop()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)

    def _report(self, line: str) -> None:
        severity: Literal["information", "warning"] = "warning" if line.startswith("failed") else "information"
        self.target.post_message(self.Changed(f"knowledge: {line}", severity))

    def _run(self) -> None:
        from agent.knowledge.service import make_indexer, open_store
        from agent.knowledge.watch import FolderWatcher, watched_folders

        try:
            folders = watched_folders(self.folders)
            live = self.Changed(f"knowledge: watching {', '.join(map(str, folders))}")

            def ready() -> None:  # the catch-up is done and changes are followed
                self.target.post_message(live)

            with open_store(self.config) as store:
                watcher = FolderWatcher(make_indexer(self.config, store), folders, self._report,
                                        debounce_ms=self.config.settings.knowledge.watch_debounce_ms,
                                        on_ready=ready)
                self._watcher = watcher
                if self._stopping.is_set():
                    return
                watcher.run()
        except UserError as exc:
            self.target.post_message(self.Changed(f"knowledge watch stopped: {exc}", "error"))
        except Exception as exc:  # never let the watcher take the UI down
            logger.exception("knowledge watch failed")
            self.target.post_message(self.Changed(f"knowledge watch stopped: {type(exc).__name__}: {exc}", "error"))
