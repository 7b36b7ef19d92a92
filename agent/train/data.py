"""Training data: an exported dataset folder read by split, conversations turned into tokens and labels.

A dataset folder (``epistemic dataset export`` writes one) holds ``train*.jsonl`` and
``validation*.jsonl`` files anywhere below it (``data/train.jsonl``), one JSON object per line,
and a ``manifest.json`` whose hash identifies the data in the training card. SFT rows are
``{"messages": [{"role", "content"}, ...]}``. Each conversation is rendered with the model's own
chat template, the same renderer the llama.cpp backend uses, so training sees the prompts the
persona will be given; with assistant-only loss every token outside an assistant reply gets the
label -100.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import UserError
from agent.file_hash import sha256_of
from agent.llm.chat_template import render_chat_template

IGNORE = -100
SPLIT_PATTERNS = {"train": "train*.jsonl", "validation": "validation*.jsonl"}
ROLES = ("system", "user", "assistant")


class DatasetError(UserError):
    """A dataset folder that is missing, empty or holds rows of the wrong shape (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Dataset:
    """The rows of a dataset folder by split, with the hash that identifies it."""

    folder: Path
    train: tuple[dict[str, Any], ...]
    validation: tuple[dict[str, Any], ...]
    manifest_sha256: str  # of manifest.json, or of the split files when there is none
    files: tuple[str, ...]


@dataclass(frozen=True)
class Example:
    """One tokenized conversation: ``labels`` are the targets (-100 = not learned)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object per line")
            rows.append(row)
    return rows


def _hash_files(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(sha256_of(path).encode())
    return digest.hexdigest()


def read_dataset(folder: str | Path) -> Dataset:
    """The train and validation rows of ``folder`` (DatasetError when there is no train split)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset folder not found (write one with `epistemic dataset export`)")
    found = {split: sorted(root.rglob(pattern)) for split, pattern in SPLIT_PATTERNS.items()}
    if not found["train"]:
        raise DatasetError(f"{root}: no train*.jsonl file in this folder (an SFT export has data/train.jsonl)")
    rows = {split: [row for p in paths for row in _read_jsonl(p)] for split, paths in found.items()}
    if not rows["train"]:
        raise DatasetError(f"{root}: the train split is empty")
    manifest = root / "manifest.json"
    paths = found["train"] + found["validation"]
    return Dataset(
        folder=root.resolve(), train=tuple(rows["train"]), validation=tuple(rows["validation"]),
        manifest_sha256=sha256_of(manifest) if manifest.is_file() else _hash_files(paths),
        files=tuple(str(p.relative_to(root)) for p in paths),
    )


def conversation(row: dict[str, Any], where: str = "row") -> list[dict[str, str]]:
    """The ``messages`` of an SFT row, checked (roles, text content, at least one assistant reply)."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{where}: expected {{\"messages\": [...]}} (an SFT export); keys: {', '.join(row) or 'none'}")
    out = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise DatasetError(f"{where}: each message needs a role (system, user, assistant) and text content")
        out.append({"role": message["role"], "content": message["content"]})
    if not any(m["role"] == "assistant" for m in out):
        raise DatasetError(f"{where}: no assistant message to learn from")
    return out


class ChatEncoder:
    """Renders conversations with a chat template and tokenizes them into :class:`Example` rows."""

    def __init__(self, tokenizer: Any, template: str, *, max_length: int, assistant_only: bool = True) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.assistant_only = assistant_only
        self.special = {"bos_token": tokenizer.bos_token or "", "eos_token": tokenizer.eos_token or ""}

    def render(self, messages: Sequence[dict[str, str]], *, generation_prompt: bool) -> str:
        """The text the backend would send for ``messages``."""
        return render_chat_template(self.template, messages, add_generation_prompt=generation_prompt, special_tokens=self.special)

    def assistant_spans(self, messages: Sequence[dict[str, str]]) -> list[tuple[int, int]]:
        """Character spans of each assistant reply (with its end-of-turn marker) in the full text."""
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            start = len(self.render(messages[:i], generation_prompt=True)) if i else 0
            spans.append((start, len(self.render(messages[: i + 1], generation_prompt=False))))
        return spans

    def encode(self, messages: Sequence[dict[str, str]]) -> Example | None:
        """Tokens and labels of one conversation; None when nothing to learn is left after cutting."""
        text = self.render(messages, generation_prompt=False)
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(encoded["input_ids"]), list(encoded["offset_mapping"])
        bos = self.tokenizer.bos_token_id
        if getattr(self.tokenizer, "add_bos_token", False) and bos is not None and (not ids or ids[0] != bos):
            ids, offsets = [bos, *ids], [(0, 0), *offsets]
        if self.assistant_only:
            spans = self.assistant_spans(messages)
            labels = [t if any(a <= s < b for a, b in spans) else IGNORE for t, (s, _e) in zip(ids, offsets, strict=True)]
        else:
            labels = list(ids)
        ids, labels = ids[: self.max_length], labels[: self.max_length]
        if not any(label != IGNORE for label in labels[1:]):
            return None
        return Example(tuple(ids), tuple(labels))

    def encode_rows(self, rows: Sequence[dict[str, Any]], split: str) -> list[Example]:
        """Every row of a split encoded (rows with nothing left to learn are skipped)."""
        examples = [self.encode(conversation(row, f"{split} row {n}")) for n, row in enumerate(rows, 1)]
        return [e for e in examples if e is not None]


def common_system_prompt(rows: Sequence[dict[str, Any]]) -> str:
    """The most frequent system message of the rows ("" when none has one): the persona's prompt."""
    counts: dict[str, int] = {}
    for row in rows:
        messages = row.get("messages") or []
        if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
            text = str(messages[0].get("content", ""))
            counts[text] = counts.get(text, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else ""
