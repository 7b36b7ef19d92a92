"""``sft``: conversational JSONL as TRL's SFTTrainer takes it: ``{"messages": [...]}``.

One row per conversation: the system prompt as sent, then its kept exchanges with the curated
replies (edits replace the original; reasoning inline in <think>…</think> or dropped).
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.harvest.export.examples import Conversation, Example, key_of, provenance

FILE_FORMAT = "json"


def messages(conv: Conversation) -> tuple[list[dict[str, str]], list[dict]]:
    """The conversation's messages and the provenance of each assistant turn in it."""
    out = conv.head()
    sources = []
    for ex in conv.kept():
        out.append({"role": "user", "content": conv.scrub(ex.user_text)})
        out.append({"role": "assistant", "content": conv.scrub(ex.content)})
        sources.append(provenance(ex))
    return out, sources


def examples(conv: Conversation) -> Iterator[Example]:
    """At most one row: the curated conversation (none when no exchange was kept)."""
    msgs, sources = messages(conv)
    if sources:
        yield Example(conv.id, {"messages": msgs, "conversation_id": conv.id, "provenance": sources},
                      key_of(msgs[1:] if conv.system else msgs), len(sources), sources)
