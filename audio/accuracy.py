"""How close a transcript is to what was said: word error rate after normalisation.

Both texts are normalised the same way before their words are compared: numbers, dates and units
spelled out (:func:`audio.normalize.normalize`, so Whisper's «5» equals «пять» and "2" equals
"two"), lower case, punctuation stripped, «ё» folded to «е», hyphens split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from audio.normalize import normalize
from audio.phantom import normalise_phrase


@dataclass(frozen=True)
class WordScore:
    """Word-level edit distance of a hypothesis against a reference (summable over clips)."""

    errors: int  # substitutions + deletions + insertions
    reference_words: int

    @property
    def wer(self) -> float:
        """Word error rate: errors per reference word (0 is perfect; can exceed 1)."""
        return self.errors / max(1, self.reference_words)

    @property
    def accuracy(self) -> float:
        """Word accuracy, 1 - WER (1 is perfect)."""
        return 1.0 - self.wer

    def __add__(self, other: WordScore) -> WordScore:
        return WordScore(self.errors + other.errors, self.reference_words + other.reference_words)


def words(text: str, language: str = "auto") -> list[str]:
    """The words of ``text`` as they are compared: numbers spelled out, lower case, no punctuation."""
    return normalise_phrase(normalize(text, language).replace("-", " ")).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between two word lists."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)]


def score(reference: str, hypothesis: str, language: str = "auto") -> WordScore:
    """The :class:`WordScore` of ``hypothesis`` against ``reference``."""
    ref, hyp = words(reference, language), words(hypothesis, language)
    return WordScore(edit_distance(ref, hyp), len(ref))


def total(scores: Iterable[WordScore]) -> WordScore:
    """Corpus-level score: errors and reference words summed over clips."""
    return sum(scores, WordScore(0, 0))


def wer(reference: str, hypothesis: str, language: str = "auto") -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after normalisation."""
    return score(reference, hypothesis, language).wer
