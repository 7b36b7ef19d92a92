"""``sft``: conversational JSONL as TRL's SFTTrainer takes it: ``{"messages": [...]}``.

One row per conversation: the system prompt as sent, then its kept exchanges with the curated
replies (edits replace the original; reasoning inline in <think>…</think> or dropped). Replies
given retrieved sources had a system prompt of their own (the sources appended): with sources
included, the conversation is cut after each run of replies that shared one system prompt, and
each row carries the earlier exchanges as its history, so every reply's prompt is as it was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.harvest.export.examples import Conversation, Example, key_of, provenance

FILE_FORMAT = "json"


def rows(conv: Conversation) -> Iterator[tuple[list[dict[str, str]], list[dict[str, Any]], int]]:
    """(messages, the provenance of each assistant message, how many replies end the row) per row."""
    kept = conv.kept()
    history: list[dict[str, str]] = []
    sources: list[dict[str, Any]] = []
    run, by_sources = 0, conv.retrieved == "include"  # the system prompt differs only by the sources
    for index, ex in enumerate(kept):
        history.append({"role": "user", "content": conv.scrub(ex.user_text)})
        history.append({"role": "assistant", "content": conv.scrub(ex.content)})
        sources.append(provenance(ex))
        run += 1
        following = kept[index + 1] if index + 1 < len(kept) else None
        if following is None or by_sources and (following.sources or "") != (ex.sources or ""):
            yield [*conv.head(ex), *history], list(sources), run
            run = 0


def examples(conv: Conversation) -> Iterator[Example]:
    """The curated conversation as one row (more where replies were given different sources;
    none when no exchange was kept)."""
    for msgs, sources, run in rows(conv):
        body = msgs[1:] if msgs[0]["role"] == "system" else msgs
        yield Example(conv.id, {"messages": msgs, "conversation_id": conv.id, "provenance": sources},
                      key_of(body), run, sources[-run:])
