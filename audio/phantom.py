"""Guard against Whisper's phantom text on silence and noise.

Whisper trained on subtitles "hears" «Спасибо.», «Продолжение следует...», "Thank you." or
subtitle credits in silence. A segment is dropped when its no-speech probability is high (with a
poor log-prob, or very high on its own) or it is too repetitive; a known phantom phrase is dropped
when the audio is near-silent or Whisper doubts there was speech.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audio.settings import SttSettings

_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)


def normalise_phrase(text: str) -> str:
    """Lower case, no punctuation, single spaces (``ё`` folded to ``е``)."""
    text = _PUNCT.sub(" ", text.casefold().replace("ё", "е"))
    return " ".join(text.split())


@dataclass(frozen=True)
class SegmentStats:
    """The numbers Whisper gives for one segment."""

    text: str
    no_speech_prob: float
    avg_logprob: float
    compression_ratio: float


class PhantomGuard:
    """Decides which segments, and which whole transcripts, are phantoms."""

    def __init__(self, settings: SttSettings) -> None:
        self.s = settings
        self._phantoms = {normalise_phrase(p) for p in settings.phantoms}

    def segment_reason(self, seg: SegmentStats) -> str | None:
        """Why a segment is dropped, or None to keep it."""
        s = self.s
        if seg.no_speech_prob > s.hard_no_speech_threshold:
            return f"no-speech probability {seg.no_speech_prob:.2f}"
        if seg.no_speech_prob > s.no_speech_threshold and seg.avg_logprob < s.guard_logprob:
            return f"no-speech probability {seg.no_speech_prob:.2f} with log-prob {seg.avg_logprob:.2f}"
        if seg.compression_ratio > s.compression_ratio_threshold:
            return f"repetitive text (compression ratio {seg.compression_ratio:.2f})"
        return None

    def is_known_phantom(self, text: str) -> bool:
        """True when ``text`` is (only) a known phantom phrase, or a subtitle credit."""
        phrase = normalise_phrase(text)
        if not phrase:
            return False
        return phrase in self._phantoms or phrase.startswith(("редактор субтитров", "субтитры"))

    def transcript_reason(self, text: str, level_dbfs: float, no_speech_prob: float, confidence: float) -> str | None:
        """Why a whole transcript is dropped as a phantom, or None to keep it."""
        if not self.is_known_phantom(text):
            return None
        if level_dbfs < self.s.phantom_silence_dbfs:
            return f"known phantom {text.strip()!r} on near-silent audio ({level_dbfs:.0f} dBFS)"
        if no_speech_prob > self.s.phantom_no_speech:
            return f"known phantom {text.strip()!r} with no-speech probability {no_speech_prob:.2f}"
        if confidence < 0.5:
            return f"known phantom {text.strip()!r} with low confidence {confidence:.2f}"
        return None
