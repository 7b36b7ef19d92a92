"""The conversation engine: history, context budget, reasoning split, logging, events.

UI-agnostic: the CLI, the TUI and the tests drive the same engine and receive the same events
through a plain callback. One job runs at a time: every turn (typed, spoken, regenerated), persona
switch and conversation switch holds the engine's :class:`~agent.gate.TurnGate`, and a second job
is refused with :class:`~agent.errors.TurnInProgress`. A turn runs in the caller's thread (a
worker thread under the TUI); cancellation is a ``threading.Event`` checked between tokens.

A turn is atomic in the history: the user message and its reply enter ``history`` together, once
the reply has ended (finished or stopped). A reply that fails is logged with
``stop_reason = 'error'`` and its error text, and the history stays as it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from agent.context import FittedPrompt, HistoryEntry, PromptTooLong, fit_prompt, reply_reserve
from agent.errors import GenerationFailed, LogError, UserError
from agent.events import ContextTrimmed, EventSink, Notice, TurnFinished, TurnStarted
from agent.gate import TurnGate
from agent.knowledge.protocols import Retrieval, Retriever
from agent.llm.base import GenerationResult, LanguageModel, TokenStep, run_generation
from agent.llm.sampler import SamplerSettings
from agent.log.store import TurnStore
from agent.personas import Persona, PersonaBook
from agent.provisional import Kept, Prefetch, Provisional
from agent.records import AssistantTurnRecord, ReplyDraft, StoredTurn, TurnSource, UserTurnRecord
from agent.reply_stream import ReplyStream
from agent.turn_record import provenance, reply_record

logger = logging.getLogger(__name__)


def _ignore(_: object) -> None:
    return None


def complete_exchanges(turns: Sequence[StoredTurn]) -> list[HistoryEntry]:
    """History from a logged branch: user turns whose reply ended (failed replies and their
    unanswered user turns are left out, so roles alternate)."""
    history: list[HistoryEntry] = []
    pending: StoredTurn | None = None
    for turn in turns:
        if turn.role == "user":
            pending = turn
        elif pending is not None and turn.data.get("stop_reason") != "error":
            history += [HistoryEntry("user", pending.text, pending.id), HistoryEntry("assistant", turn.text, turn.id)]
            pending = None
    return history


class ConversationEngine:
    """Runs a conversation with one loaded model and records every turn.

    Called from any thread, one job at a time (``gate``). The gate's lock guards ``history``,
    ``conversation_id``, ``persona`` and the model's adapters; sampler overrides are replaced
    whole (one assignment), so reading them while a turn runs is safe.
    """

    def __init__(
        self,
        model: LanguageModel,
        personas: PersonaBook,
        base_sampler: SamplerSettings,
        log: TurnStore | None = None,
        persona: str | None = None,
        resolve_path: Callable[[str], Path | str] | None = None,
        retriever: Retriever | None = None,
    ) -> None:
        self.model = model
        self.personas = personas
        self.base_sampler = base_sampler
        self.log = log
        self.retriever = retriever  # sources per turn for personas whose ``retrieve`` asks for them
        self.last_retrieval: Retrieval | None = None
        self._retrieval_of: HistoryEntry | None = None
        self._resolve: Callable[[str], Path | str] = resolve_path or (lambda p: p)
        self.persona: Persona = personas.get(persona)
        self.sampler_overrides: dict[str, Any] = {}
        self.conversation_id: int | None = None
        self.history: list[HistoryEntry] = []
        self.gate = TurnGate()
        self._adapter_switch: dict[str, Any] | None = None
        self._apply_adapters()

    @property
    def busy(self) -> bool:
        """True while a turn or a switch is running."""
        return self.gate.busy

    # -- steering ---------------------------------------------------------------------------

    @property
    def sampler(self) -> SamplerSettings:
        """The settings the next reply uses: [sampler], then persona, then live overrides."""
        return self.persona.sampler(self.base_sampler).merged(self.sampler_overrides)

    def set_sampler(self, **overrides: Any) -> SamplerSettings:
        """Change sampler values from the next turn on; refused now (ConfigError / UserError) if
        the value is invalid or the backend cannot honour it."""
        merged = {**self.sampler_overrides, **overrides}
        self.model.check_sampler(self.persona.sampler(self.base_sampler).merged(merged))
        self.sampler_overrides = merged
        return self.sampler

    def reset_sampler(self) -> None:
        """Drop live sampler changes: back to the persona's values."""
        self.sampler_overrides = {}

    def set_persona(self, name: str) -> Persona:
        """Switch persona between turns (LoRA adapters swapped where the backend supports them).

        Refused, changing nothing, if the persona's sampler values don't suit the backend."""
        with self.gate.hold("switching persona"):
            persona = self.personas.get(name)
            self.model.check_sampler(persona.sampler(self.base_sampler).merged(self.sampler_overrides))
            previous, self.persona = self.persona, persona
            try:
                self._apply_adapters()
            except BaseException:
                self.persona = previous
                raise
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
        with self.gate.hold("starting a new conversation"):
            self.conversation_id = None
            self.history = []

    def open_conversation(self, conversation_id: int) -> list[StoredTurn]:
        """Continue a logged conversation from its current branch; returns that branch."""
        if self.log is None:
            raise UserError("the dialogue log is off ([log] enabled = false): nothing to open")
        with self.gate.hold("opening a conversation"):
            turns = self.log.active_turns(conversation_id)
            self.conversation_id = conversation_id
            self.history = complete_exchanges(turns)
        return turns

    def _ensure_conversation(self, first_text: str, emit: EventSink) -> int | None:
        if self.conversation_id is None and self.log is not None:
            title = " ".join(first_text.split())[:60]
            try:
                self.conversation_id = self.log.new_conversation(persona=self.persona.name, title=title)
            except LogError as exc:
                emit(Notice("error", f"Could not log this conversation: {exc}"))
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
        wait: float = 0.0,
        provisional: Provisional | None = None,
    ) -> TurnFinished | None:
        """Answer ``text``, logging both turns. None (with a Notice) if it cannot be answered;
        TurnInProgress if another job holds the gate longer than ``wait`` seconds; GenerationFailed
        if the backend fails (the failed reply is logged, the history is unchanged).

        ``provisional``: generate at once but log, emit and remember nothing until it is kept (then
        the message as kept is what is logged); None if it is discarded (see :mod:`agent.provisional`)."""
        emit = on_event or _ignore
        with self.gate.hold("a reply", wait=wait):
            sampler = self._checked_sampler(emit)
            if sampler is None:
                return None
            budget = self._budget(sampler)
            tokens = self.model.count_tokens(text)
            if tokens > budget:
                emit(Notice("error", f"Message too long: {tokens} tokens, but the {self.model.info.context_size}-token context leaves {budget} for it. Shorten it or raise [llm] context_size."))
                return None
            retrieval = self.last_retrieval = self._retrieve(text, budget - tokens, emit)
            user = HistoryEntry("user", text, None)
            fitted = self._fit([*self.history, user], budget, emit, retrieval)
            if fitted is None:
                return None
            prefetched = None
            if provisional is not None:
                prefetched, kept = self._provisional(fitted, sampler, cancel, provisional)
                if kept is None:
                    return None
                text, audio_path, stt = kept.text, kept.audio_path, kept.stt
            conversation_id = self._ensure_conversation(text, emit)
            record = None
            if conversation_id is not None:
                record = UserTurnRecord(conversation_id, text, source, audio_path, stt or {}, time.time())
            user_id, finished = self._reply(sampler, fitted, record, None, None, emit, cancel, retrieval, prefetched)
            self.history += [HistoryEntry("user", text, user_id), HistoryEntry("assistant", finished.answer, finished.turn_id)]
            self._retrieval_of = self.history[-1]  # the reply last_retrieval was given to
            return finished

    def regenerate(self, *, on_event: EventSink | None = None, cancel: threading.Event | None = None) -> TurnFinished | None:
        """Answer the last user message again; the new reply is kept as an alternative of the old.

        If the new reply fails, the old one stays the current reply (both are logged)."""
        emit = on_event or _ignore
        with self.gate.hold("regenerating"):
            if len(self.history) < 2 or self.history[-1].role != "assistant":
                emit(Notice("warning", "Nothing to regenerate yet."))
                return None
            previous, user = self.history[-1], self.history[-2]
            sampler = self._checked_sampler(emit)
            retrieval = self._reused_retrieval(previous, emit) if sampler is not None else None
            fitted = self._fit(self.history[:-1], self._budget(sampler), emit, retrieval) if sampler is not None else None
            if sampler is None or fitted is None:
                return None
            root = self._reply_group(previous.turn_id)
            _, finished = self._reply(sampler, fitted, None, user.turn_id, root, emit, cancel, retrieval)
            self.history[-1] = HistoryEntry("assistant", finished.answer, finished.turn_id)
            self.last_retrieval, self._retrieval_of = retrieval, self.history[-1]
            return finished

    def _reused_retrieval(self, reply: HistoryEntry, emit: EventSink) -> Retrieval | None:
        """The sources ``reply`` was given (kept from its turn, else read back from its log record),
        so a regenerated reply sees the same ones; None if it had none or the persona retrieves none."""
        if self.retriever is None or self.persona.settings.retrieve == "none":
            return None
        if self._retrieval_of == reply:
            return self.last_retrieval
        if self.log is None or reply.turn_id is None:
            return None
        try:
            logged = self.log.get_turn(reply.turn_id).data.get("extra", {}).get("retrieval")
            if not logged or not logged.get("sources"):
                return None
            retrieval = self.retriever.restore(logged, count_tokens=self.model.count_tokens)
        except UserError as exc:  # LogError included
            emit(Notice("warning", f"The sources of that reply could not be read back: {exc}"))
            return None
        for note in retrieval.notes:
            emit(Notice("warning", f"Source {note}"))
        return retrieval

    def _provisional(self, fitted: FittedPrompt, sampler: SamplerSettings, cancel: threading.Event | None,
                     provisional: Provisional) -> tuple[Generator[TokenStep, None, GenerationResult], Kept | None]:
        """Start generating now and wait (gate held) for the decision; a discarded reply is cancelled."""
        if cancel is None:
            raise ValueError("a provisional reply needs a cancel event (it is cancelled when discarded)")
        provisional.generation_started_at = time.perf_counter()
        prefetch = Prefetch(self.model.generate(fitted.prompt, sampler, cancel=cancel))
        kept = provisional.wait()
        if kept is None:
            cancel.set()
            prefetch.join()
        return prefetch.tokens(), kept

    def _reply_group(self, turn_id: int | None) -> int | None:
        if self.log is None or turn_id is None:
            return None
        return self.log.get_turn(turn_id).alternative_of or turn_id

    def _checked_sampler(self, emit: EventSink) -> SamplerSettings | None:
        sampler = self.sampler
        try:
            self.model.check_sampler(sampler)
        except UserError as exc:
            emit(Notice("error", f"Sampler refused, nothing was sent: {exc}"))
            return None
        return sampler

    def _budget(self, sampler: SamplerSettings) -> int:
        size = self.model.info.context_size
        return size - reply_reserve(size, sampler.max_tokens)

    def _retrieve(self, text: str, room: int, emit: EventSink) -> Retrieval | None:
        """Numbered sources for this turn if the persona retrieves (at most half the room the message leaves)."""
        scope = self.persona.settings.retrieve
        if self.retriever is None or scope == "none":
            return None
        try:
            return self.retriever.retrieve(text, scope=scope, budget_tokens=room // 2, count_tokens=self.model.count_tokens)
        except UserError as exc:
            emit(Notice("warning", f"No sources for this turn: {exc}"))
            return None

    def _fit(self, history: Sequence[HistoryEntry], budget: int, emit: EventSink, retrieval: Retrieval | None = None) -> FittedPrompt | None:
        system = "\n\n".join(p for p in (self.persona.system_prompt, retrieval.block if retrieval else "") if p)
        try:
            fitted = fit_prompt(system, history, self.model.render_prompt, budget)
        except PromptTooLong as exc:
            emit(Notice("error", f"The conversation no longer fits the context: {exc}."))
            return None
        if fitted.dropped:
            ids = tuple(e.turn_id for e in fitted.dropped if e.turn_id is not None)
            emit(ContextTrimmed(ids, fitted.prompt.token_count, budget))
        return fitted

    def _reply(
        self,
        sampler: SamplerSettings,
        fitted: FittedPrompt,
        user: UserTurnRecord | None,
        parent_id: int | None,
        alternative_of: int | None,
        emit: EventSink,
        cancel: threading.Event | None,
        retrieval: Retrieval | None = None,
        tokens: Generator[TokenStep, None, GenerationResult] | None = None,
    ) -> tuple[int | None, TurnFinished]:
        """Generate and log one reply: (the user turn's id if ``user`` was logged with it, the end)."""
        prov = provenance(self.model.info, self.persona.name, sampler, fitted, self.persona.system_prompt)
        if retrieval is not None:
            prov["retrieval"] = retrieval.provenance()  # chunk ids, scores, text hashes, source paths
        journal = _Journal(self.log, self.conversation_id, emit)
        parent_id = journal.start(ReplyDraft(self.conversation_id or 0, parent_id, alternative_of, prov), user) or parent_id
        emit(TurnStarted(self.conversation_id, parent_id, self.persona.name, fitted.prompt.token_count, self.model.info.context_size))
        stream = ReplyStream(emit, journal.save if journal.draft_id is not None else None)
        error: Exception | None = None
        try:
            generation = tokens if tokens is not None else self.model.generate(fitted.prompt, sampler, cancel=cancel)
            result = run_generation(generation, stream.on_token)
        except Exception as exc:  # logged as a failed reply, then raised as GenerationFailed
            logger.exception("generation failed")
            error, result = exc, stream.failed_result(fitted.prompt)
        stream.flush()
        extra = {"adapter_switch": self._adapter_switch} if self._adapter_switch else {}
        self._adapter_switch = None
        record = reply_record(
            conversation_id=self.conversation_id or 0, parent_id=parent_id, alternative_of=alternative_of,
            result=result, splitter=stream.splitter, prov=prov, wall=stream.wall, extra=extra,
            error=None if error is None else f"{type(error).__name__}: {error}",
        )
        turn_id = journal.finish(record)
        finished = TurnFinished(turn_id, record.text, record.reasoning, result, record.interrupted, turn_id is not None, retrieval)
        emit(finished)
        if error is not None:
            raise GenerationFailed(f"the reply failed ({record.error}); it is logged as an error, the conversation goes on") from error
        return journal.user_id, finished


class _Journal:
    """Logs one reply: its draft while it streams, then the finished turn (one commit path).

    Used by the thread running the turn. A log failure becomes a Notice and the reply goes on
    unlogged (``turn_id`` None); a reply is never logged without the user turn it answers.
    """

    def __init__(self, log: TurnStore | None, conversation_id: int | None, emit: EventSink) -> None:
        self.log = log if conversation_id is not None else None
        self.emit = emit
        self.user_id: int | None = None
        self.draft_id: int | None = None

    def start(self, draft: ReplyDraft, user: UserTurnRecord | None) -> int | None:
        if self.log is None:
            return None
        try:
            self.user_id, self.draft_id = self.log.start_reply(draft, user)
        except LogError as exc:
            self.emit(Notice("error", f"Could not log this turn: {exc}"))
        return self.user_id

    def save(self, raw_text: str, token_count: int) -> None:
        if self.log is not None and self.draft_id is not None:
            self.log.update_reply(self.draft_id, raw_text, token_count)

    def finish(self, record: AssistantTurnRecord) -> int | None:
        if self.log is None or self.draft_id is None:
            return None
        try:
            return self.log.finish_reply(self.draft_id, record)
        except LogError as exc:
            self.emit(Notice("error", f"Could not log the reply: {exc}"))
            return None

