"""One reply while it streams: reasoning split, events out, a draft saved about once a second.

Lives for one reply, in the thread that runs the turn (the engine's caller); nothing here is
shared with another thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from agent.errors import LogError
from agent.events import EventSink, Notice, ReplyToken
from agent.llm.base import GenerationResult, PreparedPrompt, Timings, TokenStep
from agent.reasoning import ReasoningSplitter

logger = logging.getLogger(__name__)

DRAFT_EVERY_S = 1.0  # a crash loses at most about this much of a streaming reply...
DRAFT_EVERY_TOKENS = 64  # ...or this many tokens; before that, saved after tokens 1, 2, 4, 8, ...


class ReplyStream:
    """Turns backend TokenSteps into ReplyToken events and keeps the partial reply saved."""

    def __init__(self, emit: EventSink, save: Callable[[str, int], None] | None) -> None:
        self.emit = emit
        self.splitter = ReasoningSplitter()
        self.steps: list[TokenStep] = []
        self.pieces: list[str] = []
        self.started = time.perf_counter()
        self._save = save
        self._saved_at = time.monotonic()
        self._save_at_tokens = 1

    def on_token(self, step: TokenStep) -> None:
        """The backend produced one token (called between tokens, so keep it cheap)."""
        self.steps.append(step)
        self.pieces.append(step.text)
        segments = self.splitter.feed(step.text)
        if not segments:
            self.emit(ReplyToken(step, "reasoning" if self.splitter.in_reasoning else "answer", ""))
        for channel, piece in segments:
            self.emit(ReplyToken(step, channel, piece))
        if self._save is not None and (
            len(self.steps) >= self._save_at_tokens or time.monotonic() - self._saved_at >= DRAFT_EVERY_S
        ):
            self._save_draft()

    def _save_draft(self) -> None:
        assert self._save is not None
        count = len(self.steps)
        self._saved_at = time.monotonic()
        self._save_at_tokens = count + min(max(count, 1), DRAFT_EVERY_TOKENS)
        try:
            self._save("".join(self.pieces), len(self.steps))
        except LogError as exc:  # the reply goes on; it just is not saved as it streams
            logger.warning("draft not saved: %s", exc)
            self.emit(Notice("warning", f"The reply in progress is not being saved: {exc}"))
            self._save = None

    def flush(self) -> None:
        """End of stream: release text the splitter held back."""
        last = self.steps[-1] if self.steps else TokenStep(0, 0, "", None, None)
        for channel, piece in self.splitter.flush():
            self.emit(ReplyToken(last, channel, piece))

    @property
    def wall(self) -> float:
        """Seconds since the reply started."""
        return time.perf_counter() - self.started

    def failed_result(self, prompt: PreparedPrompt) -> GenerationResult:
        """What was generated before the backend failed, as a result with stop_reason 'error'."""
        timings = Timings(prompt.token_count, len(self.steps), None, self.wall, None)
        return GenerationResult("".join(self.pieces), tuple(self.steps), "error", timings, prompt)
