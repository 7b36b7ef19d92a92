"""The transcript comparison the voice tests use does not count "2" against "two"."""

from __future__ import annotations

import pytest

from tests.audio.wer import wer
from tests.voice.spoken import spoken_wer

SAID = "Stop. What is two plus two?"


@pytest.mark.parametrize("written", ["Stop. What is 2+2?", "Stop, what is 2 plus 2?", "stop what is two plus two"])
def test_numbers_written_as_digits_are_the_words_said(written: str) -> None:
    assert spoken_wer(SAID, written) == 0.0


def test_digits_alone_would_fail_the_barge_in_check() -> None:
    assert wer(SAID, "Stop. What is 2+2?") > 0.4  # the flaky failure: a bound of 0.4 on plain WER


def test_wrong_words_still_count() -> None:
    assert spoken_wer(SAID, "Stop. What is three plus two?") == pytest.approx(1 / 6)
