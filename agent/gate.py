"""The turn gate: the one place that decides whether a turn may start.

Typed turns (CLI, TUI), spoken turns (the voice loop), regenerations, persona switches and
conversation switches all pass through the engine's :class:`TurnGate`, so two of them can never
interleave and a Ctrl+N during a spoken reply cannot mix two conversations' histories.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from agent.errors import TurnInProgress


class TurnGate:
    """Admits one job at a time; refuses (or waits a bounded time) instead of queueing.

    Any thread may call it. ``_lock`` is held for the whole job; ``_what`` (what holds it, for
    the refusal message) is written only by the holder.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._what: str | None = None

    @property
    def busy(self) -> bool:
        """True while a job holds the gate (a hint: the answer may change at once)."""
        return self._lock.locked()

    @property
    def running(self) -> str | None:
        """What holds the gate now ("a reply", "switching persona", ...), or None."""
        return self._what

    @contextmanager
    def hold(self, what: str, *, wait: float = 0.0) -> Iterator[None]:
        """Hold the gate for the block; TurnInProgress if another job keeps it past ``wait`` seconds."""
        acquired = self._lock.acquire(timeout=wait) if wait > 0 else self._lock.acquire(blocking=False)
        if not acquired:
            raise TurnInProgress(f"{self._what or 'another turn'} is running: wait for it to end or stop it first")
        self._what = what
        try:
            yield
        finally:
            self._what = None
            self._lock.release()
