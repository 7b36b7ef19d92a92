"""The waterfall's new stages: how the turn ended and what the early start did, as logged and as
the TUI's voice strip and the terminal show them."""

from __future__ import annotations

import json

from agent.voice.waterfall import TurnEnd, WaterfallClock
from tui.widgets.voice_strip import describe_waterfall


def _clock(turn_end: TurnEnd, end_silence_s: float) -> WaterfallClock:
    clock = WaterfallClock(100.0, end_silence_s, turn_end)
    for name, at in (("transcript", 100.4), ("turn_started", 100.45), ("first_token", 100.5),
                     ("first_sentence", 100.7), ("first_audio", 100.9)):
        clock.mark(name, at)
    clock.duration("stt", 0.4)
    clock.duration("tts", 0.2)
    return clock


def test_a_model_decision_is_logged_with_its_probability_and_counts_in_the_wait():
    clock = _clock(TurnEnd("both", "model", 0.97, 0.05), 0.21)
    clock.early("none")
    waterfall = clock.result()
    record = json.loads(json.dumps(waterfall.as_record()))  # what the dialogue log stores
    assert record["turn_end"] == {"mode": "both", "decision": "model", "probability": 0.97, "model_s": 0.05}
    assert record["early_start"] == "none" and record["early_saved_s"] is None
    assert abs(record["last_word_s"] - (0.21 + 0.05 + 0.9)) < 1e-9
    strip = describe_waterfall(waterfall)
    assert strip == "last turn: model 0.97 @210 ms │ stt 400 → token 500 → sentence 700 → audio 900 ms"
    assert "end of turn: model 0.97 at 210 ms" in waterfall.describe()


def test_a_silence_decision_with_a_used_early_start():
    clock = _clock(TurnEnd("silence", "silence", 0.9, 0.05), 0.7)
    clock.early("used", 0.45)
    waterfall = clock.result()
    assert abs(waterfall.last_word_s - (0.7 + 0.9)) < 1e-9  # the model ran during the silence, off the path
    assert "silence 0.90 @700 ms, early −450 │" in describe_waterfall(waterfall)
    assert "early start used (-450 ms)" in waterfall.describe()


def test_push_to_talk_has_no_probability():
    waterfall = _clock(TurnEnd("push_to_talk", "key"), 0.0).result()
    assert "last turn: key @0 ms │ stt" in describe_waterfall(waterfall) and waterfall.early_start == "off"
