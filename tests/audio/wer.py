"""Word error rate for transcript checks (numbers spelled out first: "2" equals "two")."""

from __future__ import annotations

from audio.accuracy import wer, words

__all__ = ["wer", "words"]
