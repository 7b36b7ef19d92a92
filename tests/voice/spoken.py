"""Comparing what was said with what Whisper wrote: numbers and symbols read out first, since
Whisper writes "two plus two" as "2+2" or "2 plus 2" as it pleases."""

from __future__ import annotations

from audio.normalize import normalize
from tests.audio.wer import wer


def spoken_wer(reference: str, hypothesis: str, language: str = "en") -> float:
    """Word error rate after both texts have their numbers and symbols spelled out."""
    return wer(normalize(reference, language), normalize(hypothesis, language))
