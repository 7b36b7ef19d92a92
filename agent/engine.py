"""The conversation engine: history, context budget, reasoning split, logging, events.

UI-agnostic: the CLI, the TUI and the tests drive the same engine and receive the same events
through a plain callback. One turn runs at a time, in the caller's thread (a worker thread under
the TUI); cancellation is a ``threading.Event`` checked by the backend between tokens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from agent.context import FittedPrompt, HistoryEntry, PromptTooLong, fit_prompt, reply_reserve
from agent.errors import LogError, UserError
from agent.events import (
    ContextTrimmed,
    EngineEvent,
    EventSink,
    Notice,
    ReplyToken,
    TurnFinished,
    TurnStarted,
)
from agent.llm.base import GenerationResult, LanguageModel, TokenStep, run_generation
from agent.llm.sampler import SamplerSettings
from agent.personas import Persona, PersonaBook
from agent.reasoning import ReasoningSplitter
from agent.records import AssistantTurnRecord, TurnSource, UserTurnRecord

logger = logging.getLogger(__name__)


def _ignore(_: EngineEvent) -> None:
    return None


class ConversationEngine:
    """Runs a conversation with one loaded model and records every turn."""

    def __init__(
        self,
        model: LanguageModel,
        personas: PersonaBook,
        base_sampler: SamplerSettings,
        log: Any | None = None,  # agent.log.DialogueLog, or None when logging is off
        persona: str | None = None,
        resolve_path: Any = None,  # callable str -> Path for adapter paths
    ) -> None:
        self.model = model
        self.personas = personas
        self.base_sampler = base_sampler
        self.log = log
        self._resolve = resolve_path or (lambda p: p)
        self.persona: Persona = personas.get(persona)
        self.sampler_overrides: dict[str, Any] = {}
        self.conversation_id: int | None = None
        self.history: list[HistoryEntry] = []
        self._turn_lock = threading.Lock()
        self._memory_ids = iter(range(-1, -(10**9), -1))  # turn ids when logging is off
        self._adapter_switch: dict[str, Any] | None = None
        self._apply_adapters()

    # -- steering ---------------------------------------------------------------------------

    @property
    def sampler(self) -> SamplerSettings:
        """The settings the next reply uses: [sampler], then persona, then live overrides."""
        return self.persona.sampler(self.base_sampler).merged(self.sampler_overrides)

    def set_sampler(self, **overrides: Any) -> SamplerSettings:
        """Change sampler values from the next turn on (validated now; ConfigError if invalid)."""
        merged = {**self.sampler_overrides, **overrides}
        self.persona.sampler(self.base_sampler).merged(merged)  # raises on a bad value
        self.sampler_overrides = merged
        return self.sampler

    def reset_sampler(self) -> None:
        """Drop live sampler changes: back to the persona's values."""
        self.sampler_overrides = {}

    def set_persona(self, name: str) -> Persona:
        """Switch persona between turns (LoRA adapters swapped where the backend supports them)."""
        with self._turn_lock:
            self.persona = self.personas.get(name)
            self._apply_adapters()
        return self.persona

    def _apply_adapters(self) -> None:
        setter = getattr(self.model, "set_adapters", None)
        wanted = [(str(self._resolve(a.path)), a.scale) for a in self.persona.settings.adapters]
        if setter is None:
            if wanted:
                raise UserError(f"persona {self.persona.name!r} uses LoRA adapters, which backend {self.model.info.backend} cannot load")
            return
        started = time.perf_counter()
        setter(wanted)
        self._adapter_switch = {"seconds": time.perf_counter() - started, "persona": self.persona.name}

    # -- conversations ------------------------------------------------------------------------

    def new_conversation(self) -> None:
        """Start afresh; the conversation is created in the log with its first turn."""
        self.conversation_id = None
        self.history = []

    def open_conversation(self, conversation_id: int) -> None:
        """Continue a logged conversation from its current branch."""
        if self.log is None:
            raise UserError("the dialogue log is off ([log] enabled = false): nothing to open")
        turns = self.log.active_turns(conversation_id)
        self.conversation_id = conversation_id
        self.history = [HistoryEntry(t.role, t.text, t.id) for t in turns]

    def _ensure_conversation(self, first_text: str) -> int:
        if self.conversation_id is None:
            if self.log is None:
                self.conversation_id = next(self._memory_ids)
            else:
                title = " ".join(first_text.split())[:60]
                self.conversation_id = self.log.new_conversation(persona=self.persona.name, title=title)
        return self.conversation_id

    # -- turns --------------------------------------------------------------------------------

    def respond(
        self,
        text: str,
        *,
        on_event: EventSink | None = None,
        cancel: threading.Event | None = None,
        source: TurnSource = "typed",
        audio_path: str | None = None,
        stt: dict[str, Any] | None = None,
    ) -> TurnFinished | None:
        """Log the user's message, generate and log the reply. None if the message cannot fit."""
        emit = on_event or _ignore
        with self._turn_lock:
            sampler = self.sampler
            budget = self._budget(sampler)
            tokens = self.model.count_tokens(text)
            if tokens > budget:
                emit(Notice("error", f"Message too long: {tokens} tokens, but the {self.model.info.context_size}-token context leaves {budget} for it. Shorten it or raise [llm] context_size."))
                return None
            conversation_id = self._ensure_conversation(text)
            user_id = self._commit_user(UserTurnRecord(conversation_id, text, source, audio_path, stt or {}, time.time()), emit)
            self.history.append(HistoryEntry("user", text, user_id))
            return self._reply(sampler, budget, user_id, None, emit, cancel)

    def regenerate(self, *, on_event: EventSink | None = None, cancel: threading.Event | None = None) -> TurnFinished | None:
        """Answer the last user message again; the new reply is kept as an alternative of the old."""
        emit = on_event or _ignore
        with self._turn_lock:
            if not self.history or self.history[-1].role != "assistant":
                emit(Notice("warning", "Nothing to regenerate yet."))
                return None
            previous = self.history.pop()
            user = self.history[-1]
            root = previous.turn_id
            if self.log is not None and previous.turn_id is not None and previous.turn_id > 0:
                root = self.log.get_turn(previous.turn_id).alternative_of or previous.turn_id
            sampler = self.sampler
            return self._reply(sampler, self._budget(sampler), user.turn_id, root, emit, cancel)

    def _budget(self, sampler: SamplerSettings) -> int:
        size = self.model.info.context_size
        return size - reply_reserve(size, sampler.max_tokens)

    def _fit(self, budget: int, emit: EventSink) -> FittedPrompt:
        fitted = fit_prompt(self.persona.system_prompt, self.history, self.model.render_prompt, budget)
        if fitted.dropped:
            ids = tuple(e.turn_id for e in fitted.dropped if e.turn_id is not None)
            emit(ContextTrimmed(ids, fitted.prompt.token_count, budget))
        return fitted

    def _reply(
        self,
        sampler: SamplerSettings,
        budget: int,
        parent_id: int | None,
        alternative_of: int | None,
        emit: EventSink,
        cancel: threading.Event | None,
    ) -> TurnFinished | None:
        try:
            fitted = self._fit(budget, emit)
        except PromptTooLong as exc:
            emit(Notice("error", f"The conversation no longer fits the context: {exc}."))
            return None
        assert self.conversation_id is not None
        emit(TurnStarted(self.conversation_id, parent_id, self.persona.name, fitted.prompt.token_count, self.model.info.context_size))
        splitter = ReasoningSplitter()

        def on_token(step: TokenStep) -> None:
            segments = splitter.feed(step.text)
            if not segments:
                emit(ReplyToken(step, "reasoning" if splitter._in_think else "answer", ""))
            for channel, piece in segments:
                emit(ReplyToken(step, channel, piece))

        started = time.perf_counter()
        result = run_generation(self.model.generate(fitted.prompt, sampler, cancel=cancel), on_token)
        for channel, piece in splitter.flush():
            emit(ReplyToken(result.steps[-1] if result.steps else TokenStep(0, 0, "", None, None), channel, piece))
        record = self._record(result, splitter, sampler, fitted, parent_id, alternative_of, time.perf_counter() - started)
        turn_id = self._commit_assistant(record, emit)
        answer = splitter.answer_text
        self.history.append(HistoryEntry("assistant", answer, turn_id))
        finished = TurnFinished(turn_id, answer, splitter.reasoning_text, result, record.interrupted)
        emit(finished)
        return finished

    def _record(
        self,
        result: GenerationResult,
        splitter: ReasoningSplitter,
        sampler: SamplerSettings,
        fitted: FittedPrompt,
        parent_id: int | None,
        alternative_of: int | None,
        wall: float,
    ) -> AssistantTurnRecord:
        info = self.model.info
        timings = asdict(result.timings) | {"wall_seconds": wall}
        extra: dict[str, Any] = dict(result.extra)
        if self._adapter_switch is not None:
            extra["adapter_switch"] = self._adapter_switch
            self._adapter_switch = None
        spec = None
        if result.speculative is not None:
            spec = asdict(result.speculative) | {"acceptance_rate": result.speculative.acceptance_rate}
        return AssistantTurnRecord(
            conversation_id=self.conversation_id or 0,
            parent_id=parent_id,
            text=splitter.answer_text,
            reasoning=splitter.reasoning_text,
            raw_text=result.text,
            prompt_text=result.prompt.text,
            prompt_tokens=result.prompt.token_count,
            backend=info.backend,
            model_id=info.model_id,
            model_path=info.path,
            model_hash=info.file_hash,
            persona=self.persona.name,
            adapters=[dict(a) for a in info.adapters],
            sampler=sampler.model_dump(mode="json"),
            timings=timings,
            stop_reason=result.stop_reason,
            interrupted=result.stop_reason in ("cancelled", "error"),
            steps=list(result.steps),
            alternative_of=alternative_of,
            speculative=spec,
            context={
                "size": info.context_size,
                "budget": fitted.budget,
                "dropped_turn_ids": [e.turn_id for e in fitted.dropped],
            },
            extra=extra,
            created_at=time.time(),
        )

    def _commit_user(self, record: UserTurnRecord, emit: EventSink) -> int | None:
        if self.log is None:
            return next(self._memory_ids)
        try:
            return self.log.add_user_turn(record)
        except LogError as exc:
            emit(Notice("error", f"Could not log your turn: {exc}"))
            return None

    def _commit_assistant(self, record: AssistantTurnRecord, emit: EventSink) -> int:
        if self.log is None:
            return next(self._memory_ids)
        try:
            return self.log.add_assistant_turn(record)
        except LogError as exc:
            emit(Notice("error", f"Could not log the reply: {exc}"))
            return next(self._memory_ids)

    def history_messages(self) -> Sequence[HistoryEntry]:
        return tuple(self.history)
