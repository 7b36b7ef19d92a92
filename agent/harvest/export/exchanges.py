"""A conversation as exchanges (a user turn and its replies), with curation and filters applied.

Two views of the same branch: the *context* (what the model saw in later prompts: every exchange
whose reply did not fail, the answer text without reasoning, as the engine's history keeps it) and
the *curated* exchanges that become training examples (edits replace replies, preferred
alternatives win, filters and exclusions leave exchanges out, each with its reason).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from agent.harvest.export.options import RATINGS, Filters
from agent.harvest.export.query import Turn, language, sources_block


@dataclass(slots=True)
class Exchange:
    """One user turn, the reply in use, and the reply exported for it (None: left out)."""

    user: Turn
    active: Turn  # the reply the conversation went on with (latest that did not fail)
    replies: list[Turn]  # every alternative that did not fail, oldest first
    chosen: Turn  # the preferred alternative, else the active one
    user_text: str = ""  # the user's words as exported: the corrected transcript, else as logged
    sources: str | None = ""  # the sources block the chosen reply was given ('' none, None: not logged)
    content: str = ""  # the exported reply text (edit, heard part, reasoning in <think>)
    language: str | None = None
    rating: str | None = None
    edited: bool = False
    reason: str | None = None  # why it is left out of SFT-like exports (None: kept)


@dataclass
class Curation:
    """The curation state as the exporter reads it (see agent.harvest.curation.CurationState)."""

    ratings: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    edits: dict[int, str] = field(default_factory=dict)
    preferred: dict[int, int] = field(default_factory=dict)
    excluded_turns: frozenset[int] = frozenset()
    excluded_conversations: frozenset[int] = frozenset()
    tags: dict[int, frozenset[str]] = field(default_factory=dict)
    transcripts: dict[int, str] = field(default_factory=dict)

    @classmethod
    def of(cls, state: Any) -> Curation:
        """Copy the fields of a CurationState (or any object with them)."""
        return cls(**{name: getattr(state, name) for name in cls.__dataclass_fields__ if hasattr(state, name)})


def think(reasoning: str, answer: str) -> str:
    """A reply with its reasoning inline, as reasoning chat templates write it."""
    return f"<think>\n{reasoning.strip()}\n</think>\n\n{answer}"


def build(turns: list[Turn], removed: Counter[str]) -> list[Exchange]:
    """The exchanges of one conversation's branch, in order; failed and unanswered ones counted."""
    parents: dict[int, int | None] = {}
    groups: dict[int, list[Turn]] = {}
    for turn in turns:
        if turn.role == "assistant":
            if turn.alternative_of is None:
                parents[turn.id] = turn.parent_id
            groups.setdefault(turn.group, []).append(turn)
    by_user: dict[int, list[Turn]] = {}
    for root, replies in groups.items():
        parent = parents.get(root)
        if parent is not None:
            by_user[parent] = replies
    out: list[Exchange] = []
    for turn in turns:
        if turn.role != "user":
            continue
        replies = [r for r in by_user.get(turn.id, ()) if not r.failed]
        if not replies:
            removed["reply failed" if turn.id in by_user else "no reply"] += 1
            continue
        out.append(Exchange(turn, replies[-1], replies, replies[-1], turn.text))
    return out


def curate(exchanges: list[Exchange], curation: Curation, filters: Filters, min_rating: str) -> None:
    """Choose and word each exchange's exported reply, and say why any is left out."""
    for ex in exchanges:
        preferred = curation.preferred.get(ex.active.group)
        ex.chosen = next((r for r in ex.replies if r.id == preferred), ex.active)
        ex.language = language(ex.user)
        ex.user_text = curation.transcripts.get(ex.user.id, ex.user.text)
        ex.sources = sources_block(ex.chosen)
        ex.rating = curation.ratings.get(ex.chosen.id, (None, None))[0]
        edit = curation.edits.get(ex.chosen.id)
        ex.edited = edit is not None
        ex.content = edit if edit is not None else reply_text(ex.chosen, filters)
        ex.reason = judge(ex, curation, filters, min_rating)


def reply_text(reply: Turn, filters: Filters) -> str:
    """The reply as exported: the heard part or the whole, reasoning inline or dropped."""
    answer = reply.text
    if reply.cut_off and filters.interrupted == "heard":
        return reply.heard_text or ""
    if filters.reasoning and reply.reasoning:
        return think(reply.reasoning, answer)
    return answer


def judge(ex: Exchange, curation: Curation, f: Filters, min_rating: str) -> str | None:
    """Why an exchange is left out (None: it is kept)."""
    reply, user = ex.chosen, ex.user
    if reply.id in curation.excluded_turns or user.id in curation.excluded_turns:
        return "excluded by curation"
    if reply.cut_off and not ex.edited and f.interrupted == "drop":
        return "interrupted reply"
    reason = _filtered(ex, f)
    if reason:
        return reason
    if not ex.edited and RATINGS.index(ex.rating or "unrated") < RATINGS.index(min_rating):
        return f"rating below {min_rating}"
    if len(ex.content.strip()) < f.min_chars:
        return "reply too short" if ex.content.strip() else "empty reply (nothing heard)"
    if f.max_chars is not None and len(ex.content) > f.max_chars:
        return "reply too long"
    return None


def _filtered(ex: Exchange, f: Filters) -> str | None:
    reply = ex.chosen
    if f.since is not None and reply.created_at < f.since:
        return "filter: before --since"
    if f.until is not None and reply.created_at >= f.until:
        return "filter: after --until"
    if f.personas and reply.persona not in f.personas:
        return "filter: persona"
    if f.models and reply.model_id not in f.models:
        return "filter: model"
    if f.sources and (ex.user.source or "typed") not in f.sources:
        return "filter: source"
    if f.languages and ex.language not in f.languages:
        return "filter: language"
    return None


def conversation_reason(conversation_id: int, curation: Curation, f: Filters) -> str | None:
    """Why a whole conversation is left out (None: its exchanges are judged one by one)."""
    if conversation_id in curation.excluded_conversations:
        return "conversation excluded by curation"
    if f.tags and not curation.tags.get(conversation_id, frozenset()) & set(f.tags):
        return "filter: tags"
    return None
