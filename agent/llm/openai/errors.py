"""Errors of the OpenAI-compatible backend: each is one line that says what to change."""

from __future__ import annotations

from agent.errors import ModelError


class RemoteModelError(ModelError):
    """The remote server refused, failed or could not be reached; ``status`` is the HTTP status (0 = none)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class ServerUnreachable(RemoteModelError):
    """No connection to the server (down, wrong address) or it stopped answering in time."""


class ServerRefused(RemoteModelError):
    """The server answered with an HTTP error (401 key, 404 model, 429 busy, 5xx ...)."""


class StreamCut(RemoteModelError):
    """The reply stream ended before the server said it was finished (server killed, network cut)."""
