"""Counting and showing tokens through the server, whichever tokenize endpoint it offers.

- vLLM: ``POST /tokenize`` renders the messages with the served model's own chat template and
  returns the prompt's token ids (exact); ``POST /detokenize`` turns them back into the rendered
  prompt, which is logged.
- llama-cpp-python's server: ``POST /extras/tokenize`` tokenizes text only, so a prompt's count is
  the sum of its messages' tokens plus a few per message for the template's markers (approximate).
- Anything else: about one token per three bytes of UTF-8 (approximate).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agent.errors import UserError
from agent.llm.base import ChatMessage
from agent.llm.openai.errors import RemoteModelError
from agent.llm.openai.http import Endpoint

log = logging.getLogger(__name__)

Dialect = Literal["vllm", "llama_cpp_python", "estimate"]
MESSAGE_OVERHEAD = 4  # template markers per message (role header, end-of-turn), for approximate counts
GENERATION_PROMPT = 3  # the assistant header the template appends
BYTES_PER_TOKEN = 3.0


def messages_json(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Messages in the OpenAI wire shape."""
    return [{"role": m.role, "content": m.content} for m in messages]


@dataclass(frozen=True)
class PromptTokens:
    """A prompt's tokens as far as the server lets us see them."""

    ids: tuple[int, ...]
    count: int
    exact: bool


class ServerTokenizer:
    """Tokenizes through one server's endpoint (found by :func:`probe_tokenizer`); stateless, any thread."""

    def __init__(self, endpoint: Endpoint, model: str, dialect: Dialect) -> None:
        self.endpoint = endpoint
        self.model = model
        self.dialect: Dialect = dialect

    def _ask(self, path: str, body: dict[str, object]) -> dict[str, object] | None:
        """The server's answer, or None when it fails: counting falls back to an estimate, so a
        refused key or a dead server surfaces as the reply's own clear error, with the turn logged."""
        try:
            return self.endpoint.post(path, body)
        except RemoteModelError as exc:
            log.warning("token count estimated: %s", exc)
            return None

    def text_ids(self, text: str) -> list[int] | None:
        """Token ids of ``text`` without special tokens; None when the server cannot tell."""
        if self.dialect == "vllm":
            answer = self._ask("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})
        elif self.dialect == "llama_cpp_python":
            answer = self._ask("/extras/tokenize", {"model": self.model, "input": text})
        else:
            return None
        tokens = (answer or {}).get("tokens")
        return [int(t) for t in tokens] if isinstance(tokens, list) else None

    def count(self, text: str) -> int:
        """Tokens in ``text`` (estimated from its length when the server has no tokenizer)."""
        ids = self.text_ids(text) if text else []
        return len(ids) if ids is not None else math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)

    def prompt(self, messages: Sequence[ChatMessage]) -> PromptTokens:
        """The prompt's tokens: exact ids from vLLM, an approximate count otherwise."""
        if self.dialect == "vllm":
            answer = self._ask("/tokenize", {"model": self.model, "messages": messages_json(messages), "add_generation_prompt": True})
            tokens = (answer or {}).get("tokens")
            if isinstance(tokens, list):
                ids = tuple(int(t) for t in tokens)
                return PromptTokens(ids, len(ids), True)
        total = sum(self.count(m.content) + MESSAGE_OVERHEAD for m in messages) + GENERATION_PROMPT
        return PromptTokens((), total, False)

    def rendered(self, ids: Sequence[int]) -> str | None:
        """The prompt as the server's template rendered it (vLLM), or None."""
        if self.dialect != "vllm" or not ids:
            return None
        answer = self._ask("/detokenize", {"model": self.model, "tokens": list(ids)})
        text = (answer or {}).get("prompt")
        return text if isinstance(text, str) else None

    def pieces(self, text: str) -> list[tuple[int, str]]:
        """(token id, piece) pairs; UserError where the server cannot tokenize."""
        ids = self.text_ids(text)
        if ids is None:
            raise UserError(f"openai backend: {self.endpoint.base_url} offers no tokenize endpoint, so pieces cannot be shown")
        return [(t, self._piece(t)) for t in ids]

    def _piece(self, token_id: int) -> str:
        path, key = ("/detokenize", "prompt") if self.dialect == "vllm" else ("/extras/detokenize", "text")
        answer = self._ask(path, {"model": self.model, "tokens": [token_id]})
        text = (answer or {}).get(key)
        # a byte fragment of a multi-byte character cannot be decoded on its own (the server answers 500)
        return text if isinstance(text, str) and text else f"<token {token_id}>"


def probe_tokenizer(endpoint: Endpoint, model: str) -> ServerTokenizer:
    """Which tokenize endpoint the server offers: vLLM's, llama-cpp-python's, or none (estimate)."""
    for dialect, path, body in (
        ("vllm", "/tokenize", {"model": model, "prompt": "hello", "add_special_tokens": False}),
        ("llama_cpp_python", "/extras/tokenize", {"model": model, "input": "hello"}),
    ):
        answer = endpoint.post(path, body)
        tokens = (answer or {}).get("tokens")
        if isinstance(tokens, list) and tokens and all(isinstance(t, int) for t in tokens):
            log.info("%s tokenizes through %s", endpoint.base_url, path)
            return ServerTokenizer(endpoint, model, dialect)  # type: ignore[arg-type]
    log.info("%s offers no tokenize endpoint: token counts are estimated", endpoint.base_url)
    return ServerTokenizer(endpoint, model, "estimate")


def prompt_text(messages: Sequence[ChatMessage]) -> str:
    """The prompt as sent: the messages as JSON (what the log keeps as the prompt text)."""
    return json.dumps(messages_json(messages), ensure_ascii=False)
