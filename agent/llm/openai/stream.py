"""One streamed chat completion turned into TokenSteps and a GenerationResult.

Each chunk's logprobs (one entry per token) become TokenSteps with the chosen token's logprob, the
top alternatives and a top-k lower bound on the entropy; a chunk without logprobs becomes one step
carrying its text. Token ids are not sent by OpenAI-compatible servers: steps carry ``-1``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Protocol

from agent.llm.base import (
    GenerationResult,
    PreparedPrompt,
    StopReason,
    Timings,
    TokenStep,
    TopAlternative,
)
from agent.llm.openai.client import Target, translate
from agent.llm.openai.errors import StreamCut
from agent.llm.openai.telemetry import ENTROPY_KIND, top_k_entropy_lower_bound

UNKNOWN_ID = -1
FINISH: dict[str, StopReason] = {"stop": "eos", "length": "max_tokens", "content_filter": "error"}
CANCEL_POLL_S = 0.02


class ChunkStream(Protocol):
    """The SDK's ``Stream[ChatCompletionChunk]``: iterable, closable from another thread."""

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class CancelWatcher:
    """Closes the stream the moment ``cancel`` is set, even while the reading thread waits on the socket.

    Runs in its own daemon thread (polling the event); the reading thread calls :meth:`stop`. No lock:
    the two events are the only shared state.
    """

    def __init__(self, cancel: threading.Event, close: Callable[[], None]) -> None:
        self._cancel, self._close, self._done = cancel, close, threading.Event()
        self._thread = threading.Thread(target=self._watch, name="openai-cancel", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            if self._cancel.wait(CANCEL_POLL_S):
                self._close()
                return

    def stop(self) -> None:
        self._done.set()


def interrupt(stream: Any) -> None:
    """Close ``stream`` from another thread, waking a read blocked on its socket (a plain close would not)."""
    extensions = getattr(getattr(stream, "response", None), "extensions", None) or {}
    network = extensions.get("network_stream")
    sock = network.get_extra_info("socket") if network is not None else None
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed by the server or the reader
            pass
    stream.close()


class StreamReader:
    """Reads one reply stream; lives in the thread that runs ``generate`` (the cancel watcher only closes)."""

    def __init__(self, prompt: PreparedPrompt, requested_k: int, target: Target, cancel: threading.Event | None) -> None:
        self.prompt, self.requested_k, self.target, self.cancel = prompt, requested_k, target, cancel
        self.steps: list[TokenStep] = []
        self.finish: str | None = None
        self.usage: Any = None
        self.served_model: str | None = None
        self.short_top = 0  # steps with fewer alternatives than asked for (byte-fragment collisions)
        self.started = time.perf_counter()
        self.first_at: float | None = None
        self.last_at: float | None = None

    def run(self, open_stream: Callable[[], ChunkStream]) -> Generator[TokenStep, None, GenerationResult]:
        """Open the stream, yield its tokens, return the result; RemoteModelError when it fails."""
        try:
            stream = open_stream()
        except Exception as exc:
            raise translate(exc, self.target) from exc
        watcher = CancelWatcher(self.cancel, lambda: interrupt(stream)) if self.cancel is not None else None
        try:
            yield from self._read(stream)
        except Exception as exc:
            if not self._cancelled():
                raise translate(exc, self.target, tokens=len(self.steps)) from exc
        finally:
            if watcher is not None:
                watcher.stop()
            stream.close()
        return self._result()

    def _read(self, stream: Iterable[Any]) -> Iterator[TokenStep]:
        for chunk in stream:
            if self._cancelled():
                return
            self.served_model = getattr(chunk, "model", None) or self.served_model
            self.usage = getattr(chunk, "usage", None) or self.usage
            for step in self._chunk_steps(chunk):
                self.steps.append(step)
                yield step

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def _chunk_steps(self, chunk: Any) -> list[TokenStep]:
        if not chunk.choices:
            return []
        choice = chunk.choices[0]
        self.finish = choice.finish_reason or self.finish
        text = choice.delta.content or ""
        entries = list(choice.logprobs.content or []) if choice.logprobs is not None else []
        if not entries:
            return [self._step(text, None, ())] if text else []
        pieces = [e.token for e in entries]
        if "".join(pieces) != text:  # the server decoded the text differently (held-back bytes)
            pieces = [""] * (len(entries) - 1) + [text]
        return [self._step(piece, e.logprob, e.top_logprobs or ()) for piece, e in zip(pieces, entries, strict=True)]

    def _step(self, text: str, logprob: float | None, top: Iterable[Any]) -> TokenStep:
        now = time.perf_counter()
        self.first_at = self.first_at or now
        self.last_at = now
        alternatives = tuple(TopAlternative(UNKNOWN_ID, alt.token, float(alt.logprob)) for alt in top)
        if self.requested_k and len(alternatives) < self.requested_k:
            self.short_top += 1
        entropy = top_k_entropy_lower_bound([a.logprob for a in alternatives], self.requested_k)
        return TokenStep(len(self.steps), UNKNOWN_ID, text, logprob, entropy, alternatives)

    def _result(self) -> GenerationResult:
        if self._cancelled():
            stop: StopReason = "cancelled"
        elif self.finish is None:
            raise StreamCut(f"openai backend: the reply from {self.target.base_url} ended after {len(self.steps)} tokens without a finish reason; is the server still running?")
        else:
            stop = FINISH.get(self.finish, "eos")
        return GenerationResult("".join(s.text for s in self.steps), tuple(self.steps), stop, self._timings(), self.prompt, extra=self._extra())

    def _timings(self) -> Timings:
        n, ended = len(self.steps), time.perf_counter()
        first, last = self.first_at, self.last_at
        decode = (last - first) if first is not None and last is not None else 0.0
        prompt_tokens = getattr(self.usage, "prompt_tokens", None) or self.prompt.token_count
        return Timings(
            prompt_tokens=int(prompt_tokens), completion_tokens=n,
            time_to_first_token=None if first is None else first - self.started,
            generation_seconds=ended - self.started,
            tokens_per_second=(n - 1) / decode if n > 1 and decode > 0 else None,
        )

    def _extra(self) -> dict[str, Any]:
        measured = any(s.entropy is not None for s in self.steps)
        return {
            "entropy": ENTROPY_KIND if measured else "unavailable",
            "logprob": "server" if any(s.logprob is not None for s in self.steps) else "unavailable",
            "openai": {
                "base_url": self.target.base_url, "model": self.target.model, "served_model": self.served_model,
                "finish_reason": self.finish, "top_logprobs": self.requested_k, "steps_short_of_top_k": self.short_top,
            },
        }
