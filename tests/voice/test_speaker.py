"""The speaker on the real Piper voice: streaming sentence by sentence, what is (not) spoken,
and barge-in through a real PulseAudio sink."""

from __future__ import annotations

import threading
import time

import pytest

from agent.voice.fences import FenceFilter
from agent.voice.speaker import Speaker
from agent.voice.waterfall import WaterfallClock
from agent.voice.wavout import WavCollector
from audio.pcm import resample
from tests.audio.wer import wer, words


def _tokens(text: str, size: int = 3) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("pieces", [["a ```py\nx = 1\n``` b"], ["a `", "``py\nx", " = 1\n`", "``", " b"], ["a ~~~\ncode\n~~", "~ b"]])
def test_fenced_code_is_dropped_even_when_markers_are_split(pieces):
    fences = FenceFilter()
    out = "".join(fences.feed(p) for p in pieces) + fences.flush()
    assert out.split() == ["a", "b"]
    assert "1" in fences.dropped or "code" in fences.dropped


def test_first_sentence_is_synthesized_while_the_reply_is_still_coming(piper):
    out = WavCollector(piper.sample_rate)
    reply = Speaker(piper, out).begin()
    for piece in _tokens("The first sentence is short. The second one"):
        reply.feed(piece)
    deadline = time.monotonic() + 20
    while not out.report().chunks and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [c.tag for c in out.report().chunks] == [0], "the first sentence must be spoken before the reply ends"
    for piece in _tokens(" arrives later."):
        reply.feed(piece)
    outcome = reply.finish()
    assert outcome.sentences == 2 and not outcome.interrupted
    assert outcome.heard_text == "The first sentence is short. The second one arrives later."


def test_markdown_code_emoji_are_not_spoken_and_numbers_are(piper, whisper):
    reply_text = ("## Result 🎉\nYou need **3 apples** and `numpy`.\n```python\nimport numpy\nprint(42)\n```\n"
                  "That is *all*. 😀")
    out = WavCollector(piper.sample_rate)
    reply = Speaker(piper, out).begin()
    for piece in _tokens(reply_text):
        reply.feed(piece)
    outcome = reply.finish()
    spoken = outcome.spoken_text
    for absent in ("#", "*", "`", "🎉", "😀", "print", "import", "42"):
        assert absent not in spoken, (absent, spoken)
    assert "three apples" in spoken and "That is all" in spoken
    heard = whisper.transcribe(resample(out.audio(), out.rate, 16000), language="en").text
    assert wer(spoken, heard) <= 0.35, (spoken, heard)
    assert not {"print", "import", "python"} & set(words(heard))


@pytest.mark.audio
def test_stop_silences_playback_and_reports_the_part_heard(piper, headphones, record_sink):
    from audio.playback import Player

    recording = record_sink(headphones)
    player = Player()
    player.start()
    time.sleep(2.5)  # PortAudio's pulse plugin pulls its first blocks ~2 s after the stream starts
    try:
        speaking = threading.Event()
        clock = WaterfallClock()
        reply = Speaker(piper, player, on_speaking=lambda on: speaking.set()).begin(clock)
        text = ("This is the first sentence of a long reply. Here comes a second sentence with more words in it. "
                "A third sentence follows. And a fourth one that nobody will hear.")
        for piece in _tokens(text):
            reply.feed(piece)
        assert speaking.wait(30)
        time.sleep(1.2)
        stopped_at = time.perf_counter()
        outcome = reply.stop()
        stop_s = time.perf_counter() - stopped_at
        time.sleep(0.5)
        assert not player.playing
    finally:
        player.close()
    audio = recording()
    assert outcome.interrupted and stop_s < 0.2
    assert outcome.heard_text and outcome.heard_text != text
    assert text.startswith(outcome.heard_text.split(".")[0])
    assert 0.5 < outcome.played_s < 3.0, outcome.played_s
    assert clock.result().first_audio_s is not None
    loud = (abs(audio) > 0.02).nonzero()[0]
    assert len(loud), "nothing reached the sink"
    assert (loud[-1] - loud[0]) / 16000 < outcome.played_s + 0.5, "audio went on after stop()"
