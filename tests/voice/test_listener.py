"""The listener's lock discipline: the capture thread feeds speech while another thread flips the
turn-taking mode and the push-to-talk key, as the TUI's F8/F9 do. Real VAD, real Whisper
(partials kept from running: only the threads matter here) and real Piper speech.

The exact interleavings that used to break are produced with :class:`SwitchingVad`, the real VAD
that lets a mode switch land on another thread at a chosen moment of the capture thread's feed.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from agent.voice.events import VadStateChanged
from agent.voice.setup import build_voice_loop
from audio.events import SpeechStarted
from audio.pcm import STT_RATE, resample
from audio.settings import SttSettings, VadSettings
from audio.stt import WhisperStt
from audio.vad import VadEvent, VadSegmenter

BLOCK = STT_RATE * 30 // 1000  # the capture block of [audio] block_ms = 30
ROUNDS = 6


@pytest.fixture
def quiet_whisper(whisper) -> WhisperStt:
    """The session's Whisper model with partial transcripts too rare to run during the test."""
    return WhisperStt(whisper.model, SttSettings(partial_interval_ms=600_000), whisper.model_name)


@pytest.fixture
def speech_blocks(piper) -> list[np.ndarray]:
    """A spoken sentence with silence either side, in capture blocks (16 kHz mono)."""
    pcm, _ = piper.synthesize_all("What is the capital of France? Tell me about Paris.")
    audio = resample(pcm, piper.sample_rate, STT_RATE)
    silence = np.zeros(STT_RATE, dtype=np.float32)  # more than [vad] end_silence_ms
    audio = np.concatenate([silence, audio, silence])
    return [audio[i:i + BLOCK] for i in range(0, len(audio) - BLOCK, BLOCK)]


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter can, so that unlocked reads would interleave."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _partial_workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("stt-partials", "stt-partials-stop")]


def _on_another_thread(action: Callable[[], object]) -> None:
    """Run ``action`` as the UI thread would, and wait for it (bounded: a lock may hold it)."""
    thread = threading.Thread(target=action, name="ui")
    thread.start()
    thread.join(5)


class SwitchingVad(VadSegmenter):
    """The real VAD; an armed action runs on another thread (once) when the listener next reads
    ``in_speech`` after a feed, or when a feed starts an utterance."""

    def __init__(self, settings: VadSettings) -> None:
        self.on_read: Callable[[], object] | None = None
        self.on_start: Callable[[], object] | None = None
        self._speech_now = False
        self._feeding = False
        super().__init__(settings)

    @property  # type: ignore[override]
    def in_speech(self) -> bool:
        action, self.on_read = (self.on_read, None) if not self._feeding else (None, self.on_read)
        if action is not None:
            _on_another_thread(action)
        return self._speech_now

    @in_speech.setter
    def in_speech(self, value: bool) -> None:
        self._speech_now = value

    def feed(self, pcm: np.ndarray) -> list[VadEvent]:
        self._feeding = True
        try:
            events = super().feed(pcm)
        finally:
            self._feeding = False
        if self.on_start is not None and any(isinstance(e, SpeechStarted) for e in events):
            action, self.on_start = self.on_start, None
            _on_another_thread(action)
        return events


@pytest.fixture
def switching_loop(voice_runtime, voice_config, quiet_whisper, piper, events):
    runtime = voice_runtime(voice_config())
    vad = SwitchingVad(runtime.config.settings.vad)
    loop = build_voice_loop(runtime, stt=quiet_whisper, tts=piper, on_event=events, vad=vad)  # not started: we are the mic
    yield loop, vad
    loop.listener.close()


def _drain_utterances(loop) -> list:
    found = []
    while not loop._turns.empty():
        utterance = loop._turns.get()
        utterance.transcriber.stop()
        found.append(utterance)
    return found


def test_switching_to_push_to_talk_mid_utterance_is_no_lost_microphone(switching_loop, speech_blocks, events):
    loop, vad = switching_loop
    blocks = iter(speech_blocks)
    while VadStateChanged("speech") not in events.of(VadStateChanged):
        loop.listener.feed(next(blocks))
    vad.on_read = lambda: loop.set_push_to_talk(True)  # F9 lands between two reads of the utterance
    loop.listener.feed(next(blocks))  # used to raise AttributeError: the loop said "Microphone lost"
    assert vad.on_read is None and loop.listener.push_to_talk
    for block in blocks:  # push-to-talk, key up: nothing is heard
        loop.listener.feed(block)
    assert _drain_utterances(loop) == []


def test_an_utterance_the_vad_opens_during_a_switch_is_not_left_running(switching_loop, speech_blocks, events):
    loop, vad = switching_loop
    vad.on_start = lambda: loop.set_push_to_talk(True)  # F9 while the VAD decides speech started
    for block in speech_blocks:
        loop.listener.feed(block)
    assert vad.on_start is None and loop.listener.push_to_talk
    assert VadStateChanged("speech") not in events.of(VadStateChanged)  # no utterance opened after all
    loop.set_push_to_talk(False)
    for block in speech_blocks:  # hands-free again: one utterance, and nothing else left running
        loop.listener.feed(block)
    assert len(_drain_utterances(loop)) == 1
    loop.listener.close()
    deadline = time.monotonic() + 10
    while _partial_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _partial_workers(), "a transcriber was left running"


def test_a_storm_of_mode_switches_during_speech_never_breaks_the_capture_thread(voice_runtime, voice_config, quiet_whisper,
                                                                      piper, speech_blocks, events, fast_switching):
    runtime = voice_runtime(voice_config())
    loop = build_voice_loop(runtime, stt=quiet_whisper, tts=piper, on_event=events)  # not started: we are the mic
    listener = loop.listener
    failures: list[BaseException] = []
    done = threading.Event()

    def capture() -> None:
        try:
            for _ in range(ROUNDS):
                for block in speech_blocks:
                    listener.feed(block)
        except BaseException as exc:  # what the loop would report as "Microphone lost"
            failures.append(exc)
        finally:
            done.set()

    def keys() -> None:
        on = False
        while not done.is_set():
            on = not on
            loop.set_push_to_talk(on)
            if on:
                listener.press()
            listener.release()
            listener.close()

    threads = [threading.Thread(target=capture, name="voice-capture"), threading.Thread(target=keys, name="keys")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures

    loop.set_push_to_talk(False)
    listener.close()
    _drain_utterances(loop)  # utterances sent on: nobody answers them here
    deadline = time.monotonic() + 10
    while _partial_workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _partial_workers(), "a transcriber was left running (its utterance was lost)"


def test_hands_free_speech_still_makes_one_utterance(voice_runtime, voice_config, quiet_whisper, piper,
                                                     speech_blocks, events):
    # the silence timer alone: the two sentences are one utterance by silence, while the turn-end
    # model may rightly end the turn after the question (how long Piper pauses there varies)
    runtime = voice_runtime(voice_config('[vad]\nend_of_turn = "silence"\n'))
    loop = build_voice_loop(runtime, stt=quiet_whisper, tts=piper, on_event=events)
    for block in speech_blocks:
        loop.listener.feed(block)
    [utterance] = _drain_utterances(loop)
    assert 2.0 < len(utterance.pcm) / STT_RATE < 6.0
    assert len(utterance.transcriber.audio()) >= len(utterance.pcm) - 2 * BLOCK  # every block reached it
