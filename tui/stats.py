"""Live numbers of the reply in flight: tokens, time to first token, tokens/s, context used."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.events import TurnFinished, TurnStarted
from agent.llm.base import entropy_is_lower_bound


@dataclass
class TurnStats:
    """What the status bar shows about the current (or last) reply."""

    prompt_tokens: int = 0
    context_size: int = 0
    tokens: int = 0
    started_at: float | None = None
    first_token_at: float | None = None
    last_token_at: float | None = None
    final_ttft: float | None = None
    final_rate: float | None = None
    acceptance: float | None = None
    last_index: int = -1
    entropies: list[float] = field(default_factory=list)
    entropy_lower_bound: bool = False  # the entropies come from the top-k only (a remote server)

    @classmethod
    def started(cls, event: TurnStarted, at: float) -> TurnStats:
        return cls(prompt_tokens=event.prompt_tokens, context_size=event.context_size, started_at=at)

    def token(self, at: float, index: int, entropy: float | None) -> None:
        """Count generated token number ``index`` received at ``at`` (once, however it was split)."""
        if index == self.last_index:
            return
        self.last_index = index
        self.tokens += 1
        if self.first_token_at is None:
            self.first_token_at = at
        self.last_token_at = at
        if entropy is not None:
            self.entropies.append(entropy)

    def finished(self, event: TurnFinished) -> None:
        """Replace the live estimates with the backend's own timings."""
        timings = event.result.timings
        self.tokens = timings.completion_tokens or self.tokens
        self.final_ttft = timings.time_to_first_token
        self.final_rate = timings.tokens_per_second
        self.entropy_lower_bound = entropy_is_lower_bound(event.result.extra)
        spec = event.result.speculative
        self.acceptance = spec.acceptance_rate if spec is not None else None

    @property
    def ttft(self) -> float | None:
        if self.final_ttft is not None:
            return self.final_ttft
        if self.first_token_at is None or self.started_at is None:
            return None
        return self.first_token_at - self.started_at

    @property
    def rate(self) -> float | None:
        if self.final_rate is not None:
            return self.final_rate
        if self.first_token_at is None or self.last_token_at is None or self.tokens < 2:
            return None
        span = self.last_token_at - self.first_token_at
        return (self.tokens - 1) / span if span > 0 else None

    @property
    def context_used(self) -> int:
        return self.prompt_tokens + self.tokens
