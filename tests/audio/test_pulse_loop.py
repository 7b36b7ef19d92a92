"""The whole audio path through a real PulseAudio null sink.

Piper speaks into the sink; we capture its monitor, segment with the VAD and transcribe with
Whisper. Playback is stopped mid-utterance and must fall silent at once.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from audio.capture import MicCapture
from audio.events import PlaybackFinished, SpeechEnded, SpeechStarted
from audio.pcm import rms_dbfs
from audio.playback import Player
from audio.settings import VadSettings
from audio.vad import VadSegmenter
from tests.audio.wer import wer

pytestmark = pytest.mark.audio

SENTENCE = "Please remind me to call my sister at seven tonight."


class Recorder:
    """Captures the sink's monitor in a thread, keeping (arrival time, block) pairs."""

    def __init__(self) -> None:
        self.mic = MicCapture("pulse", block_ms=20)
        self.blocks: list[tuple[float, np.ndarray]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Recorder:
        self.mic.start()
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.blocks and time.monotonic() < deadline:  # the server's first frames take a while
            time.sleep(0.05)
        assert self.blocks, "no frames from the monitor"
        return self

    def _run(self) -> None:
        for block in self.mic.frames(self._stop):
            self.blocks.append((time.monotonic(), block))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.mic.close()

    def audio_since(self, t: float) -> np.ndarray:
        return np.concatenate([b for at, b in self.blocks if at >= t] or [np.zeros(0, np.float32)])


def test_spoken_utterance_is_captured_segmented_and_transcribed(piper, whisper) -> None:
    pcm, said = piper.synthesize_all(SENTENCE)
    events: list = []
    with Recorder() as rec, Player("pulse", emit=events.append) as player:
        start = time.monotonic()
        player.enqueue(pcm, piper.sample_rate, tag=said.written)
        assert player.wait(timeout=20)
        time.sleep(1.2)  # the end-of-speech silence
        captured = rec.audio_since(start)
    report = [e for e in events if isinstance(e, PlaybackFinished)][-1].report
    assert report.chunks[0].complete and report.heard_tags() == [SENTENCE]
    segmenter = VadSegmenter.from_settings(VadSettings(end_silence_ms=700, end_of_turn="silence", early_start=False))
    vad_events = segmenter.feed(captured) + segmenter.flush()
    assert [type(e) for e in vad_events] == [SpeechStarted, SpeechEnded], vad_events
    utterance = vad_events[1]
    assert utterance.duration_s == pytest.approx(len(pcm) / piper.sample_rate + 0.7, abs=0.6)
    text = whisper.transcribe(utterance.pcm, language="en").text
    assert wer(SENTENCE, text) <= 0.15, text


def test_stop_silences_playback_at_once_and_reports_the_part_heard() -> None:
    rate = 22050
    t = np.arange(6 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    with Recorder() as rec, Player("pulse") as player:
        start = time.monotonic()
        player.enqueue(tone, rate, tag="first")
        player.enqueue(tone[: rate // 2], rate, tag="second")
        while time.monotonic() - start < 10 and rms_dbfs(rec.audio_since(start)) < -20:
            time.sleep(0.02)
        time.sleep(0.8)
        asked = time.monotonic()
        report = player.stop()
        returned = time.monotonic() - asked
        time.sleep(0.6)
        after = [(at - asked, rms_dbfs(b)) for at, b in rec.blocks if at >= asked]
    assert returned < 0.05, f"stop() took {returned * 1000:.0f} ms"
    # blocks arriving later than 250 ms after stop() (output + capture latency) must be silent
    late = [level for dt, level in after if dt > 0.25]
    assert late and max(late) < -50, after[:20]
    first, second = report.chunks
    assert report.stopped and 0 < first.played < first.samples and second.played == 0
    assert 0.5 < report.played_s < 3.0
    assert report.heard_tags() == ["first"]
    assert not player.playing


def test_playback_restarts_after_stop_and_signals_the_end() -> None:
    rate = 16000
    beep = (0.3 * np.sin(2 * np.pi * 660 * np.arange(rate // 2) / rate)).astype(np.float32)
    events: list = []
    with Player("pulse", emit=events.append) as player:
        player.enqueue(beep, rate, tag="a")
        player.stop()
        player.reset()
        player.enqueue(beep, rate, tag="b")
        assert player.wait(timeout=5)
    finished = [e for e in events if isinstance(e, PlaybackFinished)]
    assert finished[0].stopped and not finished[-1].stopped
    assert finished[-1].report.heard_tags() == ["b"] and finished[-1].report.chunks[-1].complete
