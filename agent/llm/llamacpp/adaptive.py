"""How each token is picked on llama.cpp: one sampler chain (fixed mode), or entropy-adaptive.

In adaptive mode (``sampler.mode = "adaptive"``, in the spirit of entropix) the entropy and
varentropy of the full distribution at each step, computed anyway for telemetry, choose an action
through :meth:`SamplerSettings.adaptive_action`:

* ``argmax``  — confident (both low): greedy, after the same token bias and penalties;
* ``sample``  — the configured sampler chain;
* ``explore`` — uncertain (either high): the chain with ``explore_temp`` and ``explore_top_k``;
* ``pause``   — both high: the tokens of ``pause_text`` are inserted into the reply instead of
  sampling, at most ``pause_max`` times per reply and never while a pause is still being
  inserted, so it cannot loop.

Three chains are kept; whichever picks a token, the others ``accept`` it too, so repetition
penalties see the same history whatever the action. The chains' random states are seeded from
the reply's seed, so a seed gives the same reply.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from agent.llm.llamacpp.sampling import build_chain
from agent.llm.sampler import AdaptiveAction, SamplerSettings


class Picker(Protocol):
    """Chooses the next token from the context's logits; closes its llama.cpp samplers."""

    def pick(self, ctx: Any, entropy: float, varentropy: float) -> tuple[int, AdaptiveAction | None]:
        ...

    def close(self) -> None:
        ...


class FixedPicker:
    """Fixed mode: every token from one sampler chain. Used by the generating thread only."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain

    def pick(self, ctx: Any, entropy: float, varentropy: float) -> tuple[int, AdaptiveAction | None]:
        return int(self.chain.sample(ctx, -1)), None

    def close(self) -> None:
        self.chain.close()


class AdaptivePicker:
    """Adaptive mode: an action per token from its entropy and varentropy (see the module docstring).

    Used by the generating thread only; ``pending`` holds the pause tokens still to insert.
    """

    def __init__(self, settings: SamplerSettings, *, n_vocab: int, n_ctx: int, seed: int, pause_tokens: Sequence[int]) -> None:
        self.settings = settings
        fixed = settings.merged({"mode": "fixed"})
        chains: dict[AdaptiveAction, Any] = {}
        try:
            chains["sample"] = build_chain(fixed, n_vocab=n_vocab, n_ctx=n_ctx, seed=seed)
            chains["argmax"] = build_chain(fixed.merged({"temperature": 0.0}), n_vocab=n_vocab, n_ctx=n_ctx, seed=seed)
            explore = fixed.merged({"temperature": settings.explore_temp, "top_k": settings.explore_top_k})
            chains["explore"] = build_chain(explore, n_vocab=n_vocab, n_ctx=n_ctx, seed=(seed + 1) & 0xFFFFFFFF)
        except BaseException:
            for chain in chains.values():
                chain.close()
            raise
        self.chains = chains
        self.pause_tokens = tuple(pause_tokens)
        self.pending: deque[int] = deque()
        self.pauses = 0

    def pick(self, ctx: Any, entropy: float, varentropy: float) -> tuple[int, AdaptiveAction | None]:
        if not self.pending:
            may_pause = bool(self.pause_tokens) and self.pauses < self.settings.pause_max
            action = self.settings.adaptive_action(entropy, varentropy, may_pause=may_pause)
            if action != "pause":
                chosen = self.chains[action]
                token = int(chosen.sample(ctx, -1))  # accepts the token into this chain
                for chain in self.chains.values():
                    if chain is not chosen:
                        chain.accept(token)
                return token, action
            self.pauses += 1
            self.pending.extend(self.pause_tokens)
        token = self.pending.popleft()
        for chain in self.chains.values():
            chain.accept(token)
        return token, "pause"

    def close(self) -> None:
        for chain in self.chains.values():
            chain.close()


def build_picker(settings: SamplerSettings, *, n_vocab: int, n_ctx: int, seed: int, pause_tokens: Sequence[int] = ()) -> Picker:
    """The picker ``settings.mode`` asks for."""
    if settings.mode == "adaptive":
        return AdaptivePicker(settings, n_vocab=n_vocab, n_ctx=n_ctx, seed=seed, pause_tokens=pause_tokens)
    return FixedPicker(build_chain(settings, n_vocab=n_vocab, n_ctx=n_ctx, seed=seed))
