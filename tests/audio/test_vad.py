"""VadSegmenter on real synthesized speech, silence and noise."""

from __future__ import annotations

import numpy as np
import pytest

from audio.events import SpeechEnded, SpeechRejected, SpeechStarted
from audio.pcm import STT_RATE, resample
from audio.settings import VadSettings
from audio.vad import SileroCheck, VadSegmenter
from tests.audio.wer import wer

SENTENCE = "Turn on the kitchen lights, please."


@pytest.fixture(scope="module")
def utterance(piper) -> np.ndarray:
    pcm, _ = piper.synthesize_all(SENTENCE)
    return resample(pcm, piper.sample_rate, STT_RATE)


@pytest.fixture(scope="module")
def silero() -> SileroCheck:
    return SileroCheck()


def _onset(pcm: np.ndarray, threshold: float = 0.01) -> int:
    return int(np.argmax(np.abs(pcm) > threshold))


def _feed(seg: VadSegmenter, audio: np.ndarray, block: int = 480) -> list:
    events = []
    for i in range(0, len(audio), block):
        events += seg.feed(audio[i:i + block])
    return events + seg.flush()


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_one_utterance_with_pre_roll(whisper, utterance, silero, frame_ms: int) -> None:
    gap = np.zeros(STT_RATE, np.float32)
    audio = np.concatenate([gap, utterance, gap])
    seg = VadSegmenter(VadSettings(frame_ms=frame_ms, pre_roll_ms=300, end_silence_ms=600), silero=silero)
    events = _feed(seg, audio, block=737)  # blocks that do not line up with frames
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, SpeechEnded], events
    started, ended = events
    onset_s = (len(gap) + _onset(utterance)) / STT_RATE
    assert started.at_s == pytest.approx(onset_s, abs=0.1)
    assert ended.start_s <= onset_s - 0.2, "pre-roll missing: the first syllable could be clipped"
    assert _onset(ended.pcm) >= int(0.2 * STT_RATE)
    assert ended.end_s - ended.start_s == pytest.approx(ended.duration_s, abs=0.05)
    assert wer(SENTENCE, whisper.transcribe(ended.pcm, language="en").text) <= 0.2


def test_two_utterances_are_separated(utterance, silero) -> None:
    pause = np.zeros(STT_RATE, np.float32)
    audio = np.concatenate([pause, utterance, pause, utterance, pause])
    events = _feed(VadSegmenter(VadSettings(end_silence_ms=500), silero=silero), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded, SpeechStarted, SpeechEnded]


def test_a_minute_of_silence_and_of_noise_triggers_nothing(silero) -> None:
    rng = np.random.default_rng(3)
    silence = np.zeros(60 * STT_RATE, np.float32)
    noise = (rng.standard_normal(60 * STT_RATE) * 0.05).astype(np.float32)
    seg = VadSegmenter(VadSettings(aggressiveness=3), silero=silero)
    events = _feed(seg, silence) + _feed(seg, noise)
    assert not [e for e in events if isinstance(e, SpeechEnded)], events


def test_a_click_is_rejected_as_too_short() -> None:
    click = (np.sin(np.arange(int(0.12 * STT_RATE)) * 0.3) * 0.5).astype(np.float32)
    audio = np.concatenate([np.zeros(STT_RATE, np.float32), click, np.zeros(STT_RATE, np.float32)])
    events = _feed(VadSegmenter(VadSettings(start_ms=60, min_speech_ms=300, silero_check=False)), audio)
    assert [type(e) for e in events] == [SpeechStarted, SpeechRejected], events
    assert "ms of speech" in events[-1].reason


def test_silero_vetoes_a_tone_that_webrtcvad_takes_for_speech(silero) -> None:
    t = np.arange(2 * STT_RATE) / STT_RATE
    tone = (0.5 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    audio = np.concatenate([np.zeros(STT_RATE // 2, np.float32), tone, np.zeros(STT_RATE, np.float32)])
    plain = _feed(VadSegmenter(VadSettings(aggressiveness=0)), audio)
    checked = _feed(VadSegmenter(VadSettings(aggressiveness=0), silero=silero), audio)
    assert any(isinstance(e, SpeechEnded) for e in plain), "webrtcvad did not trigger; the test shows nothing"
    assert not any(isinstance(e, SpeechEnded) for e in checked)
    assert any(isinstance(e, SpeechRejected) and "Silero" in e.reason for e in checked)


def test_max_utterance_cuts_a_long_stream(utterance) -> None:
    audio = np.concatenate([utterance] * 4)
    seg = VadSegmenter(VadSettings(max_utterance_s=2.0, end_silence_ms=2000, silero_check=False))
    ended = [e for e in _feed(seg, audio) if isinstance(e, SpeechEnded)]
    assert len(ended) >= 2 and all(e.duration_s <= 2.05 for e in ended)
