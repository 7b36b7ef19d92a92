"""Errors that reach the user as one clear line (never a traceback)."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the CLI prints ``str(self)`` and exits with ``exit_code``."""

    exit_code = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(UserError):
    """A broken or invalid configuration file or value (exit code 2)."""

    exit_code = 2


class ModelError(UserError):
    """A model that is missing, corrupt, or cannot run on this machine."""

    exit_code = 3


class BackendUnavailable(UserError):
    """A backend whose runtime (e.g. CUDA) is not available here."""

    exit_code = 3


class LogError(UserError):
    """The dialogue log cannot be opened or written (read-only, locked, corrupt)."""

    exit_code = 4
