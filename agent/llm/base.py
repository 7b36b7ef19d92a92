"""The language-model interface every backend implements.

A backend turns a list of chat messages into a stream of :class:`TokenStep` records, one per
generated token, and finishes with a :class:`GenerationResult`. It renders the prompt with the
model's own chat template, can be cancelled between tokens through a ``threading.Event``, and
reports per-token telemetry computed from the real logits where the backend exposes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from agent.llm.sampler import SamplerSettings

if TYPE_CHECKING:
    import numpy as np

Role = Literal["system", "user", "assistant"]
StopReason = Literal["eos", "stop_string", "max_tokens", "cancelled", "context_full", "error"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of the conversation as the chat template sees it."""

    role: Role
    content: str


@dataclass(frozen=True)
class TopAlternative:
    """One of the most likely tokens at a step, with its log-probability."""

    token_id: int
    text: str
    logprob: float


@dataclass(frozen=True)
class TokenStep:
    """One generated token with what the model thought of it.

    ``logprob`` is the chosen token's log-probability under the full softmax of the raw logits
    (before truncation samplers); ``entropy`` is the Shannon entropy in nats of that same full
    distribution. Either is ``None`` where the backend cannot see the logits.

    ``varentropy`` is the variance of the surprisal ``-log p`` under that same full distribution
    (nats²): ``sum p (log p + entropy)²``. ``None`` where the backend sees only the top-k (remote
    servers) or no logits at all.

    ``action`` is what the entropy-adaptive sampler (``sampler.mode = "adaptive"``) chose for this
    token: ``"argmax"`` (confident: greedy), ``"sample"`` (the normal sampler chain),
    ``"explore"`` (uncertain: raised temperature, wider top-k) or ``"pause"`` (a token of the
    configured pause text, inserted rather than sampled). ``None`` in fixed mode.
    """

    index: int
    token_id: int
    text: str
    logprob: float | None
    entropy: float | None
    top: tuple[TopAlternative, ...] = ()
    accepted_draft: bool | None = None  # speculative decoding: this token came from the draft
    varentropy: float | None = None
    action: str | None = None


@dataclass(frozen=True)
class Timings:
    """How long the model took; all seconds."""

    prompt_tokens: int
    completion_tokens: int
    time_to_first_token: float | None
    generation_seconds: float
    tokens_per_second: float | None


@dataclass(frozen=True)
class SpeculativeStats:
    """Draft tokens proposed and accepted during one reply."""

    method: str  # "draft_model" | "ngram"
    proposed: int
    accepted: int

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.proposed if self.proposed else None


@dataclass(frozen=True, eq=False)
class MoERouting:
    """Mixture-of-experts routing of one reply: per generated token and MoE layer, the experts the
    router chose (best first), their gate weights and the router's entropy.

    Row ``i`` belongs to TokenStep ``token_index[i]`` and comes from the forward pass whose logits
    that token was sampled from (the same pass as its logprob and entropy). ``experts`` is
    ``[tokens, layers, k]`` (int), ``weights`` the same shape (float32, as the model mixes the experts;
    ``normalized`` when the model renormalises the chosen weights to sum to 1), ``entropy``
    ``[tokens, layers]`` in nats over the full softmax of the router logits. ``layers`` holds the model
    layer index of each column (dense layers of a mixed model are left out).
    """

    n_experts: int
    layers: tuple[int, ...]
    token_index: tuple[int, ...]
    experts: np.ndarray
    weights: np.ndarray
    entropy: np.ndarray
    normalized: bool = False

    @property
    def top_k(self) -> int:
        return int(self.experts.shape[2]) if self.experts.ndim == 3 else 0

    def usage(self) -> np.ndarray:
        """Expert-usage histogram of the reply: ``[layers, n_experts]`` counts of being chosen."""
        import numpy

        counts = numpy.zeros((len(self.layers), self.n_experts), dtype=numpy.int64)
        for column in range(len(self.layers)):
            ids = self.experts[:, column, :].ravel()
            counts[column] = numpy.bincount(ids[(ids >= 0) & (ids < self.n_experts)], minlength=self.n_experts)
        return counts


@dataclass(frozen=True)
class PreparedPrompt:
    """The prompt exactly as it is sent to the model.

    Backends that send chat messages rather than tokens (a remote OpenAI-compatible server) keep
    them in ``messages``; where they only know how many tokens the prompt has, not which,
    ``token_ids`` is empty and ``counted_tokens`` holds that (possibly approximate) count.
    """

    text: str
    token_ids: tuple[int, ...]
    messages: tuple[ChatMessage, ...] = ()
    counted_tokens: int | None = None

    @property
    def token_count(self) -> int:
        if self.token_ids or self.counted_tokens is None:
            return len(self.token_ids)
        return self.counted_tokens


@dataclass(frozen=True)
class GenerationResult:
    """Everything about one finished (or interrupted) generation."""

    text: str
    steps: tuple[TokenStep, ...]
    stop_reason: StopReason
    timings: Timings
    prompt: PreparedPrompt
    speculative: SpeculativeStats | None = None
    extra: dict = field(default_factory=dict)
    moe_routing: MoERouting | None = None  # llama.cpp with [llm] moe_routing on a mixture-of-experts model


LOWER_BOUND = "top_k_lower_bound"  # result.extra["entropy"]: entropy from the top-k only (remote servers)


def entropy_is_lower_bound(extra: dict) -> bool:
    """Whether a reply's entropies are lower bounds from the top-k (not the full distribution)."""
    return extra.get("entropy") == LOWER_BOUND


def token_id_label(token_id: int) -> str:
    """A token id for display: "?" where the backend does not report ids (remote servers: -1)."""
    return "?" if token_id < 0 else str(token_id)


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the loaded model, logged with every turn."""

    backend: str
    model_id: str
    path: str
    file_hash: str  # sha256 of the weights (first file for folders), "" if unknown
    context_size: int
    chat_template: str | None = None
    adapters: tuple[dict, ...] = ()


@dataclass(frozen=True)
class LoadProgress:
    """Progress while a model loads: ``fraction`` in [0, 1] and a short description."""

    fraction: float
    message: str


TokenCallback = Callable[[TokenStep], None]
ProgressCallback = Callable[[LoadProgress], None]


@runtime_checkable
class LanguageModel(Protocol):
    """A loaded model that generates replies with telemetry."""

    info: ModelInfo

    def render_prompt(self, messages: Sequence[ChatMessage]) -> PreparedPrompt:
        """Render ``messages`` with the model's chat template (generation prompt appended) and tokenize."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` without special tokens."""
        ...

    def tokenize_pieces(self, text: str) -> list[tuple[int, str]]:
        """How the model splits ``text``: (token id, piece as text) pairs."""
        ...

    def check_sampler(self, sampler: SamplerSettings) -> None:
        """Refuse (UserError / ConfigError, naming the fields) values this backend cannot honour."""
        ...

    def generate(
        self,
        prompt: PreparedPrompt,
        sampler: SamplerSettings,
        *,
        cancel: threading.Event | None = None,
    ) -> Generator[TokenStep, None, GenerationResult]:
        """Stream tokens; the iterator's return value (``StopIteration.value``) is the GenerationResult.

        Use :func:`run_generation` to consume it. Checks ``cancel`` between tokens.
        """
        ...

    def close(self) -> None:
        """Free the model."""
        ...


def run_generation(
    stream: Generator[TokenStep, None, GenerationResult], on_token: TokenCallback | None = None
) -> GenerationResult:
    """Drive a backend's ``generate`` iterator to the end and return its result."""
    while True:
        try:
            step = next(stream)
        except StopIteration as done:
            result = done.value
            if not isinstance(result, GenerationResult):
                raise TypeError("backend generate() must return a GenerationResult") from None
            return result
        if on_token is not None:
            on_token(step)
