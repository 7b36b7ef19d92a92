"""Errors of the audio package: each carries one line the user can act on.

``audio`` knows nothing of ``agent``; the CLI turns these into its own user errors.
"""

from __future__ import annotations


class AudioError(Exception):
    """An audio problem reported as one clear line (no device, a bad file, a missing model)."""


class DeviceError(AudioError):
    """No audio device, or the one asked for is not there."""


class AudioFileError(AudioError):
    """An audio file that is empty, truncated, unreadable or not audio at all."""


class AudioModelError(AudioError):
    """A speech model (Whisper, Piper voice) that is missing or cannot be loaded."""
