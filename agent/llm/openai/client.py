"""The openai SDK client for one server, and its exceptions turned into one-line RemoteModelErrors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from agent.errors import one_line
from agent.llm.openai.errors import RemoteModelError, ServerRefused, ServerUnreachable, StreamCut
from agent.llm.openai.settings import OpenAISettings

DETAIL_CHARS = 200


@dataclass(frozen=True)
class Target:
    """What a message about the server names: its address, the model asked for, the key's variable."""

    base_url: str
    model: str
    api_key_env: str
    read_timeout_s: float

    @property
    def key_is_set(self) -> bool:
        return bool(os.environ.get(self.api_key_env))


def api_key(settings: OpenAISettings) -> str | None:
    """The key from the environment variable named in [openai] api_key_env (None when unset)."""
    return os.environ.get(settings.api_key_env) or None


def make_client(settings: OpenAISettings) -> Any:
    """An ``openai.OpenAI`` client for the server (imports the SDK; MissingExtra if it is absent)."""
    try:
        import openai
    except ImportError:
        from agent.errors import MissingExtra

        raise MissingExtra("the openai backend needs the openai package: pip install 'epistemic-engine[remote]'") from None
    timeout = openai.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    # read at each request, so a changed key takes effect without a restart; the SDK insists on
    # some key, and servers started without one ignore whatever is sent
    return openai.OpenAI(base_url=settings.base_url, api_key=lambda: api_key(settings) or "no-key",
                         timeout=timeout, max_retries=settings.max_retries)


def translate(exc: BaseException, target: Target, *, tokens: int | None = None) -> RemoteModelError:
    """A one-line RemoteModelError for an SDK/transport exception; ``tokens`` = tokens received so far."""
    import openai

    where = target.base_url
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc.status_code, _detail(exc), target)
    if tokens is not None and isinstance(exc, (openai.APIConnectionError, OSError)):
        return StreamCut(f"openai backend: the reply from {where} was cut after {tokens} tokens ({_cause(exc)}); is the server still running?")
    if isinstance(exc, openai.APITimeoutError):
        return ServerUnreachable(f"openai backend: {where} did not answer within {target.read_timeout_s:g} s; check the server or raise [openai] read_timeout_s")
    if isinstance(exc, (openai.APIConnectionError, OSError)):
        return ServerUnreachable(f"openai backend: cannot reach {where} ({_cause(exc)}); start the server or fix [openai] base_url")
    return RemoteModelError(f"openai backend: {where} failed ({type(exc).__name__}: {_detail(exc)})")


def _status_error(status: int, detail: str, target: Target) -> ServerRefused:
    where = target.base_url
    if status in (401, 403):
        unset = "" if target.key_is_set else ", which is not set"
        return ServerRefused(f"openai backend: {where} refused the API key ({status}); set the variable named in [openai] api_key_env ({target.api_key_env}{unset})", status=status)
    if status == 404:
        return ServerRefused(f"openai backend: {where} does not serve model {target.model!r} (404); set [openai] model to a name listed at {where}/models", status=status)
    if status == 429:
        return ServerRefused(f"openai backend: {where} is overloaded (429 too many requests: {detail}); wait and try again, or raise [openai] max_retries", status=status)
    if status in (400, 422):
        return ServerRefused(f"openai backend: {where} rejected the request ({status}: {detail}); check the sampler values and [openai] model", status=status)
    return ServerRefused(f"openai backend: {where} failed ({status}: {detail})", status=status)


def _detail(exc: BaseException) -> str:
    text = one_line(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return _detail(cause) if cause is not None and str(cause) else _detail(exc)
