"""A reply generated before it is known whether it will be the answer (the voice loop's early start).

The caller passes a :class:`Provisional` to :meth:`agent.engine.ConversationEngine.respond`. The
engine holds its turn gate, fits the prompt and starts generating at once (a :class:`Prefetch`
pulls the tokens in its own thread), but logs nothing, emits nothing and leaves the history alone
until the caller decides: :meth:`Provisional.keep` (with the final wording of the message, its audio
and transcript record) makes it a normal turn whose first tokens are already there;
:meth:`Provisional.discard` cancels the generation and leaves no trace in the log or the history.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from agent.llm.base import GenerationResult, TokenStep

DECIDE_TIMEOUT_S = 60.0  # an undecided provisional reply is discarded after this long


@dataclass(frozen=True)
class Kept:
    """The message a provisional reply answers, as finally heard."""

    text: str
    audio_path: str | None = None
    stt: dict[str, Any] = field(default_factory=dict)


class Provisional:
    """The decision on one provisional reply: kept (with the final message) or discarded.

    The engine's turn thread waits in :meth:`wait`; any other thread (the voice loop's turn
    worker, its stop) calls :meth:`keep` or :meth:`discard` once; the first call wins. ``_lock``
    guards ``_kept`` and ``_decided_at``; ``_decided`` is the event the engine waits on.
    """

    def __init__(self, timeout_s: float = DECIDE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.started_at = time.perf_counter()
        self.generation_started_at: float | None = None  # set by the engine's turn thread
        self._lock = threading.Lock()
        self._decided = threading.Event()
        self._kept: Kept | None = None
        self._decided_at: float | None = None

    def keep(self, text: str, *, audio_path: str | None = None, stt: dict[str, Any] | None = None) -> bool:
        """Make the reply the answer to ``text``; False if it was already discarded."""
        with self._lock:
            if self._decided.is_set():
                return self._kept is not None
            self._kept, self._decided_at = Kept(text, audio_path, stt or {}), time.perf_counter()
            self._decided.set()
        return True

    def discard(self) -> None:
        """Drop the reply (no effect once kept)."""
        with self._lock:
            if not self._decided.is_set():
                self._decided_at = time.perf_counter()
                self._decided.set()

    @property
    def decided(self) -> bool:
        """True once kept or discarded."""
        return self._decided.is_set()

    @property
    def kept(self) -> Kept | None:
        """The final message if the reply was kept."""
        with self._lock:
            return self._kept

    def wait(self) -> Kept | None:
        """Block until decided (the engine's turn thread); None when discarded or never decided."""
        if not self._decided.wait(self.timeout_s):
            self.discard()
        return self.kept

    def head_start_s(self) -> float | None:
        """How long the generation had been running when the reply was kept (None: not kept)."""
        with self._lock:
            if self._kept is None or self._decided_at is None or self.generation_started_at is None:
                return None
            return max(0.0, self._decided_at - self.generation_started_at)


class Prefetch:
    """Runs a backend's ``generate`` iterator in its own thread, buffering its tokens.

    The worker thread alone advances the backend's generator; :meth:`tokens` (the engine's turn
    thread) reads the buffer, so the reply streams on from where the generation has got to. The
    queue is the only state the two threads share.
    """

    def __init__(self, stream: Generator[TokenStep, None, GenerationResult]) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="llm-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                self._queue.put(("step", next(self._stream)))
        except StopIteration as done:
            self._queue.put(("done", done.value))
        except BaseException as exc:  # handed to the consumer, which raises it in its own thread
            self._queue.put(("error", exc))

    def tokens(self) -> Generator[TokenStep, None, GenerationResult]:
        """The generation as a ``generate``-style iterator (its return value is the result)."""
        while True:
            kind, item = self._queue.get()
            if kind == "step":
                yield item
            elif kind == "done":
                return item
            else:
                raise item

    def join(self, timeout: float | None = None) -> None:
        """Wait for the generation to end (after its cancel was set)."""
        self._thread.join(timeout)
