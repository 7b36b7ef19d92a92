"""The bridge between the engine's worker thread and the UI thread.

The engine calls :meth:`TurnBridge.sink` once per token from a worker thread. The sink only
stamps the event with the time and appends it to a deque (no locks, no loop wake-ups), so the
token loop never waits for drawing. The UI drains the deque on a timer (``tui.app.FLUSH_HZ``)
and draws each batch at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from agent.events import EngineEvent
from agent.voice.events import UserUtterance

BridgedEvent = EngineEvent | UserUtterance  # a spoken turn's utterance travels in order with its reply


@dataclass(frozen=True)
class TurnEnded:
    """Sentinel after the last event of a job (reply, regenerate, persona switch)."""

    error: str | None = None


@dataclass(frozen=True)
class Stamped:
    """An event with the ``time.perf_counter()`` at which the engine emitted it."""

    at: float
    event: BridgedEvent | TurnEnded


class TurnBridge:
    """A lock-free queue of engine events plus the cancel flag of the running job."""

    def __init__(self) -> None:
        self._events: deque[Stamped] = deque()
        self.cancel = threading.Event()
        self.idle = threading.Event()  # set while no job runs in the worker thread
        self.idle.set()
        self.busy = False

    def begin(self) -> threading.Event:
        """Start a job: a fresh cancel event, marked busy (UI thread)."""
        self.cancel = threading.Event()
        self.busy = True
        self.idle.clear()
        return self.cancel

    def sink(self, event: BridgedEvent) -> None:
        """The engine's ``on_event``: called from a worker thread (the app's or the voice loop's)."""
        self._events.append(Stamped(time.perf_counter(), event))

    def end(self, error: str | None = None) -> None:
        """Called by the worker when its job is over (successfully or not)."""
        self._events.append(Stamped(time.perf_counter(), TurnEnded(error)))
        self.idle.set()

    def drain(self) -> list[Stamped]:
        """Everything queued so far, in order (UI thread)."""
        out: list[Stamped] = []
        pop = self._events.popleft
        while self._events:
            out.append(pop())
        return out

    def stop(self) -> bool:
        """Ask the running reply to stop between tokens; False when nothing runs."""
        if not self.busy:
            return False
        self.cancel.set()
        return True
