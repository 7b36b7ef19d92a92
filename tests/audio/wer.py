"""Word error rate for transcript checks."""

from __future__ import annotations

from audio.phantom import normalise_phrase


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (ё folded to е, hyphens split)."""
    return normalise_phrase(text.replace("-", " ")).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word-level edit distance divided by the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))
