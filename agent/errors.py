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


class TurnInProgress(UserError):
    """Another turn (typed, spoken or regenerated) or a conversation switch is running."""

    exit_code = 1


class MissingExtra(UserError):
    """An optional extra (``pip install 'epistemic-engine[gpu]'``) that a command needs is not installed."""

    exit_code = 3


class AudioFailure(UserError):
    """No audio device, an unreadable audio file, or no speech in it (exit code 5)."""

    exit_code = 5


EXIT_AUDIO = AudioFailure.exit_code  # also what an audio.errors.AudioError exits with
EXIT_INTERNAL = 70  # a bug or a broken installation: one line, the traceback in the program log
EXIT_INTERRUPTED = 130  # Ctrl-C


class GenerationFailed(ModelError):
    """The backend failed while generating a reply; the partial reply is logged as an error."""


def one_line(message: str) -> str:
    """``message`` as one line: line breaks and other control characters written as escapes."""
    return "".join(ch if ch.isprintable() or ch == " " else ascii(ch)[1:-1] for ch in message)
