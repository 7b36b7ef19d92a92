"""``sharegpt``: LLaMA-Factory's ShareGPT layout (``conversations`` of ``from``/``value``, a
``system`` column) plus the ``dataset_info.json`` that registers each split file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.harvest.export import sft
from agent.harvest.export.examples import Conversation, Example

FILE_FORMAT = "json"
ROLES = {"user": "human", "assistant": "gpt"}


def examples(conv: Conversation) -> Iterator[Example]:
    """The SFT conversation in ShareGPT words."""
    for example in sft.examples(conv):
        msgs = example.row["messages"]
        turns = [{"from": ROLES[m["role"]], "value": m["content"]} for m in msgs if m["role"] != "system"]
        system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
        row = {"conversations": turns, "system": system, "conversation_id": conv.id,
               "provenance": example.row["provenance"]}
        yield Example(conv.id, row, example.key, example.turns, example.sources)


def dataset_info(files: dict[str, str], name: str = "epistemic") -> dict[str, Any]:
    """``dataset_info.json``: one entry per split file, as LLaMA-Factory's data loader reads it."""
    return {
        f"{name}_{split}": {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": {"messages": "conversations", "system": "system"},
            "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
        }
        for split, file_name in files.items()
    }
