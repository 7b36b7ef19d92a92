"""The VAD's pauses for the turn-end model, on real synthesized speech: when it reports them, that
speech after one resumes the utterance, and that :meth:`VadSegmenter.end_now` ends it at once."""

from __future__ import annotations

import numpy as np
import pytest

from audio.events import SpeechEnded, SpeechStarted
from audio.pcm import STT_RATE, resample
from audio.settings import VadSettings
from audio.vad import SpeechPaused, SpeechResumed, VadSegmenter


@pytest.fixture(scope="module")
def words(piper) -> tuple[np.ndarray, np.ndarray]:
    first, _ = piper.synthesize_all("What is the capital of France?")
    second, _ = piper.synthesize_all("And what about Spain?")
    return resample(first, piper.sample_rate, STT_RATE), resample(second, piper.sample_rate, STT_RATE)


def _quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * STT_RATE), dtype=np.float32)


def _events(seg: VadSegmenter, audio: np.ndarray, block: int = 480) -> list:
    found: list = []
    for i in range(0, len(audio), block):
        found += seg.feed(audio[i:i + block])
    return found


def test_silence_mode_without_early_start_reports_no_pauses(words):
    assert [type(e) for e in _events(VadSegmenter(VadSettings(silero_check=False)), np.concatenate([_quiet(0.3), words[0], _quiet(1.0)]))] == [SpeechStarted, SpeechEnded]  # built without pauses
    seg = VadSegmenter.from_settings(VadSettings(silero_check=False, end_of_turn="silence", early_start=False))
    kinds = [type(e) for e in _events(seg, np.concatenate([_quiet(0.3), words[0], _quiet(1.0)]))]
    assert kinds == [SpeechStarted, SpeechEnded]


def test_a_pause_is_reported_once_then_speech_resumes_it(words):
    seg = VadSegmenter.from_settings(VadSettings(silero_check=False, end_of_turn="both", turn_check_ms=210, end_silence_ms=900))
    audio = np.concatenate([_quiet(0.3), words[0], _quiet(0.6), words[1], _quiet(1.2)])
    events = _events(seg, audio)
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechPaused, SpeechResumed, SpeechPaused, SpeechEnded]
    pause = events[1]
    assert pause.silence_ms == 210 and len(pause.pcm) >= len(words[0])  # all the speech so far, pre-roll included
    assert seg.last_silence_ms == 900


def test_model_mode_asks_at_every_pause_until_its_maximum(words):
    seg = VadSegmenter.from_settings(VadSettings(silero_check=False, end_of_turn="model", turn_check_ms=210, turn_max_silence_ms=900))
    events = _events(seg, np.concatenate([_quiet(0.3), words[0], _quiet(1.2)]))
    pauses = [e.silence_ms for e in events if isinstance(e, SpeechPaused)]
    assert pauses == [210, 420, 630, 840] and isinstance(events[-1], SpeechEnded)
    assert seg.last_silence_ms == 900


def test_end_now_ends_the_utterance_with_its_audio(words):
    seg = VadSegmenter(VadSettings(silero_check=False, end_of_turn="both", turn_check_ms=210), pauses=True)
    events = _events(seg, np.concatenate([_quiet(0.3), words[0], _quiet(0.3)]))
    assert isinstance(events[-1], SpeechPaused) and seg.in_speech
    ended = seg.end_now()
    assert isinstance(ended, SpeechEnded) and not seg.in_speech
    paused = events[-1].pcm
    assert np.array_equal(ended.pcm[: len(paused)], paused) and len(ended.pcm) - len(paused) <= 0.3 * STT_RATE  # at most the trailing quiet fed
    assert seg.end_now() is None
