"""The conversation engine as the voice loop sees it: a small Protocol.

:class:`agent.engine.ConversationEngine` satisfies it. ``respond`` holds the engine's turn gate
(:class:`agent.gate.TurnGate`) and raises :class:`agent.errors.TurnInProgress` when another job
(a typed reply, a regenerate, a persona or conversation switch) keeps it past ``wait`` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from agent.events import EngineEvent, TurnFinished
from agent.provisional import Provisional
from agent.records import TurnSource


class VoiceEngine(Protocol):
    """Answers one message at a time; tells whether a turn is running."""

    @property
    def busy(self) -> bool:
        """True while any job holds the turn gate (a hint: it may change at once)."""
        ...

    def respond(
        self,
        text: str,
        *,
        on_event: Callable[[EngineEvent], None] | None = None,
        cancel: threading.Event | None = None,
        source: TurnSource = "typed",
        audio_path: str | None = None,
        stt: dict[str, Any] | None = None,
        wait: float = 0.0,
        provisional: Provisional | None = None,
    ) -> TurnFinished | None:
        """Log the message, generate, log and return the reply (None: it could not be answered).

        ``provisional``: generate now, log and emit only once it is kept (:mod:`agent.provisional`)."""
        ...
