"""The OpenAI-compatible backend: replies streamed from a server (vLLM, TabbyAPI, llama.cpp's server).

``load(config, progress)`` reads ``[openai]``, asks the server which models it serves (a missing
model or a refused key fails here, with a one-line message), finds its tokenize endpoint, and
returns an :class:`OpenAIModel`. The messages themselves are the prompt: ``render_prompt`` keeps
them on the PreparedPrompt (its ``text`` is their JSON) and ``generate`` sends them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ModelError, UserError
from agent.llm.base import (
    ChatMessage,
    GenerationResult,
    LoadProgress,
    ModelInfo,
    PreparedPrompt,
    ProgressCallback,
    TokenStep,
)
from agent.llm.openai.client import Target, make_client, translate
from agent.llm.openai.errors import ServerRefused
from agent.llm.openai.http import Endpoint
from agent.llm.openai.sampling import check_remote_sampler, request_fields
from agent.llm.openai.settings import OpenAISettings
from agent.llm.openai.stream import StreamReader
from agent.llm.openai.tokens import ServerTokenizer, messages_json, probe_tokenizer, prompt_text
from agent.llm.sampler import SamplerSettings

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig

log = logging.getLogger(__name__)

BACKEND = "openai"
TOKENIZE_TIMEOUT_S = 10.0  # a tokenize call that takes longer falls back to an estimate


class OpenAIModel:
    """A model served by a remote OpenAI-compatible server; usable from any thread.

    ``_lock`` guards ``_model`` (the served name requests go to: the base model or a persona's
    adapter) and ``info``, which ``set_adapters`` replaces between turns. Generations may overlap:
    each has its own stream.
    """

    def __init__(self, client: Any, settings: OpenAISettings, info: ModelInfo, served: Sequence[str], tokenizer: ServerTokenizer) -> None:
        self._client = client
        self._settings = settings
        self._base_model = info.model_id
        self._model = info.model_id
        self._served = tuple(served)
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        self.info = info

    # --- tokens and prompt ---------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` through the server's tokenizer (estimated where it has none)."""
        return self._tokenizer.count(text)

    def tokenize_pieces(self, text: str) -> list[tuple[int, str]]:
        """How the server's model splits ``text`` (UserError where the server cannot tokenize)."""
        return self._tokenizer.pieces(text)

    def render_prompt(self, messages: Sequence[ChatMessage]) -> PreparedPrompt:
        """The messages as sent (``text`` = their JSON), with the server's token ids where it gives them."""
        counted = self._tokenizer.prompt(messages)
        return PreparedPrompt(text=prompt_text(messages), token_ids=counted.ids, messages=tuple(messages),
                              counted_tokens=counted.count)

    # --- adapters ------------------------------------------------------------------------

    def set_adapters(self, adapters: Sequence[tuple[str, float]]) -> None:
        """Send requests to the served model that stands for the persona's LoRA (vLLM: ``--lora-modules``)."""
        if len(adapters) > 1:
            raise UserError("openai backend: a server serves one LoRA adapter per model name; give the persona one adapter")
        if adapters and adapters[0][1] != 1.0:
            raise UserError(f"openai backend: adapter scale {adapters[0][1]:g}: a server applies LoRA adapters at scale 1.0 only")
        name = self._served_name(adapters[0][0]) if adapters else self._base_model
        if self._served and name not in self._served:
            raise ModelError(f"openai backend: {self._settings.base_url} does not serve adapter model {name!r}; it serves {', '.join(self._served)} (map it in [openai] adapter_models)")
        with self._lock:
            self._model = name
            refs = ({"path": adapters[0][0], "scale": 1.0, "served_as": name},) if adapters else ()
            self.info = replace(self.info, adapters=refs)

    def _served_name(self, path: str) -> str:
        mapping = self._settings.adapter_models
        return mapping.get(path) or mapping.get(Path(path).name) or Path(path).name

    # --- generation ----------------------------------------------------------------------

    def check_sampler(self, sampler: SamplerSettings) -> None:
        """Refuse sampler values an OpenAI-compatible server cannot honour, naming them."""
        check_remote_sampler(sampler)

    def generate(
        self, prompt: PreparedPrompt, sampler: SamplerSettings, *, cancel: threading.Event | None = None
    ) -> Generator[TokenStep, None, GenerationResult]:
        """Stream the reply from the server; RemoteModelError (one line) if it fails or is cut."""
        check_remote_sampler(sampler)
        if not prompt.messages:
            raise ModelError("openai backend: this prompt carries no messages; render it with this backend's render_prompt")
        with self._lock:
            model = self._model
        fields, extra_body = request_fields(sampler, logprobs=self._settings.logprobs)
        target = Target(self._settings.base_url, model, self._settings.api_key_env, self._settings.read_timeout_s)
        reader = StreamReader(prompt, int(fields.get("top_logprobs", 0)), target, cancel)

        def open_stream() -> Any:
            return self._client.chat.completions.create(
                model=model, messages=messages_json(prompt.messages), stream=True,
                stream_options={"include_usage": True}, extra_body=extra_body or None, **fields,
            )

        return self._with_rendered(reader.run(open_stream), prompt)

    def _with_rendered(self, stream: Generator[TokenStep, None, GenerationResult], prompt: PreparedPrompt) -> Generator[TokenStep, None, GenerationResult]:
        result: GenerationResult = yield from stream
        result.extra["openai"]["prompt_tokens_exact"] = bool(prompt.token_ids)
        rendered = self._tokenizer.rendered(prompt.token_ids) if result.stop_reason != "error" else None
        if rendered is not None:
            result.extra["openai"]["rendered_prompt"] = rendered
        return result

    def close(self) -> None:
        """Close the HTTP connections (the server keeps running)."""
        self._client.close()


def _report(progress: ProgressCallback | None, fraction: float, message: str) -> None:
    log.debug("load %.0f%%: %s", fraction * 100, message)
    if progress is not None:
        progress(LoadProgress(fraction, message))


def served_models(client: Any, target: Target) -> list[tuple[str, int | None]]:
    """(name, max context or None) of each model the server lists at /v1/models."""
    try:
        listed = client.models.list()
    except Exception as exc:
        raise translate(exc, target) from exc
    return [(m.id, getattr(m, "max_model_len", None)) for m in listed.data]


def pick_model(wanted: str, served: Sequence[tuple[str, int | None]], base_url: str) -> tuple[str, int | None]:
    """The configured model (or the first served one when none is configured); ModelError if not served."""
    if not served:
        raise ServerRefused(f"openai backend: {base_url} lists no models at /models; is the model loaded?")
    for name, size in served:
        if name == wanted or not wanted:
            return name, size
    names = ", ".join(name for name, _ in served[:8])
    raise ServerRefused(f"openai backend: {base_url} does not serve model {wanted!r}; it serves {names} (set [openai] model)", status=404)


def load(config: LoadedConfig, progress: ProgressCallback | None = None) -> OpenAIModel:
    """Connect to the server in ``[openai]`` and check it serves the model (no weights load here)."""
    settings: OpenAISettings = config.settings.openai
    _report(progress, 0.0, f"connecting to {settings.base_url}")
    client = make_client(settings)
    target = Target(settings.base_url, settings.model, settings.api_key_env, settings.read_timeout_s)
    served = served_models(client, target)
    name, trained = pick_model(settings.model, served, settings.base_url)
    _report(progress, 0.5, f"{name} is served; finding its tokenizer")
    endpoint = Endpoint(settings.base_url, settings.api_key_env, min(settings.read_timeout_s, TOKENIZE_TIMEOUT_S))
    tokenizer = probe_tokenizer(endpoint, name)
    context = min(config.settings.llm.context_size, trained) if trained else config.settings.llm.context_size
    info = ModelInfo(backend=BACKEND, model_id=name, path=settings.base_url, file_hash="", context_size=int(context))
    _report(progress, 1.0, f"{name} ready at {settings.base_url}")
    return OpenAIModel(client, settings, info, [n for n, _ in served], tokenizer)
