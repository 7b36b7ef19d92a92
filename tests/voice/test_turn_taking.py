"""When a spoken turn ends, through the real PulseAudio null sink with the starter models: the
turn-end model keeps a mid-sentence pause inside one turn, ends a finished question without the
full silence timer, and an early reply whose final transcript differs never becomes the answer."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from agent.events import Notice, TurnStarted
from agent.voice.events import UserUtterance, WaterfallReady
from agent.voice.setup import build_voice_loop
from audio.pcm import STT_RATE, resample

pytestmark = pytest.mark.audio

WARM_UP_S = 2.5  # PortAudio's pulse plugin starts pulling output ~2 s after the stream opens
QUESTION = "What is the capital of France?"
LONG = "What is the capital of France, and what is the capital of Spain?"


@pytest.fixture(scope="module")
def steady_piper():
    """The starter voice without generator noise: the same text always sounds the same."""
    from audio.settings import TtsSettings
    from audio.tts import PiperTts

    return PiperTts.load(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))


@pytest.fixture(scope="module")
def detector():
    from audio.turn_end import SmartTurnDetector

    return SmartTurnDetector.load()


def silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def say(piper, *parts: str | float) -> np.ndarray:
    """Speech at the voice's rate: text parts spoken, float parts as that many seconds of silence."""
    chunks = [silence(0.3, piper.sample_rate)]
    for part in parts:
        chunks.append(silence(part, piper.sample_rate) if isinstance(part, float) else piper.synthesize_all(part)[0])
    return np.concatenate([*chunks, silence(0.3, piper.sample_rate)])


def at_16k(piper, audio: np.ndarray, trailing_s: float = 0.21) -> np.ndarray:
    return np.concatenate([resample(audio, piper.sample_rate, STT_RATE), silence(trailing_s, STT_RATE)])


@pytest.fixture
def loop_with(voice_runtime, voice_config, whisper, steady_piper, events, headphones):
    loops = []

    def start(vad: str):
        runtime = voice_runtime(voice_config(f"[vad]\n{vad}\n", max_tokens=24))
        loop = build_voice_loop(runtime, stt=whisper, tts=steady_piper, on_event=events)
        assert loop.start(), events.of(Notice)
        loops.append(loop)
        time.sleep(WARM_UP_S)
        return runtime, loop

    yield start
    for loop in loops:
        loop.stop()


def _logged_turns(runtime):
    [conversation] = runtime.log.list_conversations()
    return runtime.log.conversation_turns(conversation.id)


def test_a_pause_mid_sentence_stays_one_turn(loop_with, steady_piper, detector, play_to_mic, events):
    whole, _ = steady_piper.synthesize_all(LONG)
    first, rest = whole[: int(len(whole) * 0.6)], whole[int(len(whole) * 0.6):]
    assert detector.probability(at_16k(steady_piper, first)) < 0.5  # the pause sounds unfinished
    assert detector.probability(at_16k(steady_piper, whole)) >= 0.5  # the whole question does not
    runtime, loop = loop_with('end_of_turn = "model"')
    pad = silence(0.3, steady_piper.sample_rate)
    play_to_mic(np.concatenate([pad, first, silence(0.5, steady_piper.sample_rate), rest, pad]), steady_piper.sample_rate)
    [ready] = events.wait_for(WaterfallReady)
    time.sleep(1.5)  # a second turn would have been heard by now
    [heard] = events.of(UserUtterance)
    assert "france" in heard.text.lower() and "spain" in heard.text.lower(), heard.text
    assert len(events.of(TurnStarted)) == 1 and len(_logged_turns(runtime)) == 2
    assert ready.waterfall.turn_end.mode == "model" and ready.waterfall.turn_end.decision == "model"


def test_a_short_finished_question_does_not_wait_for_the_silence_timer(loop_with, steady_piper, play_to_mic, events):
    runtime, loop = loop_with('end_of_turn = "both"\nend_silence_ms = 1500')
    play_to_mic(say(steady_piper, QUESTION), steady_piper.sample_rate)
    [ready] = events.wait_for(WaterfallReady)
    waterfall = ready.waterfall
    assert waterfall.turn_end.decision == "model" and waterfall.turn_end.probability >= 0.5
    assert waterfall.end_silence_s < 0.5  # the model's pause (210 ms), far below the 1.5 s timer
    [heard] = events.of(UserUtterance)
    assert "capital" in heard.text.lower()
    record = _logged_turns(runtime)[1].data["extra"]["waterfall"]
    assert record["turn_end"]["decision"] == "model" and record["partial_wait_s"] < 0.02


def test_an_early_reply_is_used_when_the_transcript_matches(loop_with, steady_piper, play_to_mic, events):
    runtime, loop = loop_with('end_of_turn = "silence"\nearly_start = true\nend_silence_ms = 900')
    play_to_mic(say(steady_piper, QUESTION), steady_piper.sample_rate)
    [ready] = events.wait_for(WaterfallReady)
    waterfall = ready.waterfall
    assert waterfall.turn_end.decision == "silence" and waterfall.early_start == "used"
    model_s = waterfall.turn_end.model_s
    assert waterfall.early_saved_s is not None and model_s is not None
    assert waterfall.early_saved_s > 0.9 - 0.21 - model_s - 0.15  # begun at the 210 ms pause, not after 900 ms
    user, reply = _logged_turns(runtime)
    [heard] = events.of(UserUtterance)
    assert user.text == heard.text and "capital" in user.text.lower() and reply.text
    assert reply.data["extra"]["waterfall"]["early_start"] == "used"


def test_an_early_reply_whose_final_transcript_differs_is_discarded(loop_with, steady_piper, detector, play_to_mic,
                                                                     events, caplog):
    first = steady_piper.synthesize_all(QUESTION)[0]
    more = steady_piper.synthesize_all("And what about Spain?")[0]
    more = more[: len(more) // 2]  # trails off: no second early start at the end
    gap = silence(0.7, steady_piper.sample_rate)
    assert detector.probability(at_16k(steady_piper, first)) >= 0.5  # the pause sounds finished: early start
    assert detector.probability(at_16k(steady_piper, np.concatenate([first, gap, more]))) < 0.5
    runtime, loop = loop_with('end_of_turn = "silence"\nearly_start = true\nend_silence_ms = 1200')
    caplog.set_level(logging.INFO, logger="agent.voice.loop")
    pad = silence(0.3, steady_piper.sample_rate)
    play_to_mic(np.concatenate([pad, first, gap, more, pad]), steady_piper.sample_rate)
    [ready] = events.wait_for(WaterfallReady)
    time.sleep(1.0)
    assert ready.waterfall.early_start == "discarded"
    assert any("early start discarded" in r.getMessage() for r in caplog.records)
    [heard] = events.of(UserUtterance)
    assert "capital" in heard.text.lower() and "and" in heard.text.lower().split("france")[-1], heard.text
    assert len(events.of(TurnStarted)) == 1  # the early reply was never shown
    user, reply = _logged_turns(runtime)  # nor logged: one question, one answer
    assert user.text == heard.text and reply.parent_id == user.id
    assert reply.data["extra"]["waterfall"]["early_start"] == "discarded"
