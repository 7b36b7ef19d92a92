"""The transcript comparison the tests use does not count "2" against "two" (Whisper writes
"two plus two" as "2+2" or "2 plus 2" as it pleases), but still counts wrong words."""

from __future__ import annotations

import pytest

from audio.accuracy import wer

SAID = "Stop. What is two plus two?"


@pytest.mark.parametrize("written", ["Stop. What is 2+2?", "Stop, what is 2 plus 2?", "stop what is two plus two"])
def test_numbers_written_as_digits_are_the_words_said(written: str) -> None:
    assert wer(SAID, written) == 0.0


def test_wrong_words_still_count() -> None:
    assert wer(SAID, "Stop. What is three plus two?") == pytest.approx(1 / 6)
    assert wer("Скажи два слова.", "Скажи 3 слова.") == pytest.approx(1 / 3)
