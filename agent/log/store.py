"""The dialogue log as the conversation engine sees it: a small Protocol, so the engine can be
tested and typed without SQLite details (:class:`agent.log.db.DialogueLog` implements it)."""

from __future__ import annotations

from typing import Protocol

from agent.records import AssistantTurnRecord, ReplyDraft, StoredTurn, UserTurnRecord


class TurnStore(Protocol):
    """Where the engine commits turns: one writer, called from the thread running the turn."""

    def new_conversation(self, *, persona: str, title: str = "", meta: dict | None = None) -> int:
        """Start a conversation; its id."""
        ...

    def start_reply(self, draft: ReplyDraft, user: UserTurnRecord | None = None) -> tuple[int | None, int]:
        """Log the user turn (if given) and the reply's draft together: (user turn id, draft id)."""
        ...

    def update_reply(self, draft_id: int, raw_text: str, token_count: int) -> None:
        """Save what the reply has streamed so far."""
        ...

    def finish_reply(self, draft_id: int, record: AssistantTurnRecord) -> int:
        """Commit the ended reply in place of its draft; its turn id."""
        ...

    def get_turn(self, turn_id: int) -> StoredTurn:
        """One logged turn."""
        ...

    def active_turns(self, conversation_id: int) -> list[StoredTurn]:
        """A conversation's current branch."""
        ...
