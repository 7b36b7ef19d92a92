"""A turn of another driver, held mid-reply: the real engine's ``respond`` on its own thread,
paused at its first token until the test lets it go. Stands in for whoever else holds the turn
gate (the voice loop's turn worker for the TUI tests, a typed job for the voice loop's)."""

from __future__ import annotations

import threading
from typing import Any

from agent.events import ReplyToken, TurnFinished


class HeldTurn:
    """A turn of another driver on the real engine, paused at its first token until released."""

    def __init__(self, engine: Any, text: str, source: str = "voice") -> None:
        self.engine = engine
        self.text = text
        self.source = source
        self.streaming = threading.Event()
        self.release = threading.Event()
        self.finished: TurnFinished | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="held-turn", daemon=True)

    def _on_event(self, event: object) -> None:
        if isinstance(event, ReplyToken) and not self.streaming.is_set():
            self.streaming.set()
            self.release.wait(60)

    def _run(self) -> None:
        try:
            self.finished = self.engine.respond(self.text, on_event=self._on_event, source=self.source)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def start(self) -> HeldTurn:
        self._thread.start()
        assert self.streaming.wait(60), "the held turn never streamed"
        return self

    def end(self) -> TurnFinished:
        self.release.set()
        self._thread.join(60)
        assert self.error is None, self.error
        assert self.finished is not None
        return self.finished
