"""Voice-loop fixtures: the audio tests' PulseAudio null sink and speech models, plus a second
null sink ("vout") for the agent's voice, so the microphone (vsink.monitor) hears only the user,
as with headphones. Utterances are played into "vsink" with paplay.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.audio.conftest import _pulse_for_audio_tests, festival_ru, piper, pulse_server, whisper  # noqa: F401

REPLY_SINK = "vout"


def _pactl(*args: str) -> str:
    done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.fail(f"pactl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="session")
def reply_sink(pulse_server: str) -> str:  # noqa: F811
    """A second null sink for the agent's voice; returns its name."""
    if REPLY_SINK not in _pactl("list", "short", "sinks"):
        _pactl("load-module", "module-null-sink", f"sink_name={REPLY_SINK}", "rate=22050", "channels=1")
    return REPLY_SINK


@pytest.fixture
def headphones(reply_sink: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The agent speaks into ``vout`` (PortAudio's pulse plugin reads PULSE_SINK when it opens)."""
    monkeypatch.setenv("PULSE_SINK", reply_sink)
    return reply_sink


@pytest.fixture
def play_to_mic(tmp_path: Path, pulse_server: str) -> Callable[..., float]:  # noqa: F811
    """Play audio (a WAV path, or float32 mono PCM with its rate) into the microphone's sink.

    Blocks until played; returns the perf_counter time at which playing started."""
    counter = iter(range(1000))

    def play(audio: Path | np.ndarray, sample_rate: int = 22050, wait: bool = True) -> float:
        if isinstance(audio, np.ndarray):
            from audio.pcm import write_wav

            audio = write_wav(tmp_path / f"utterance-{next(counter)}.wav", audio, sample_rate)
        started = time.perf_counter()
        proc = subprocess.Popen(["paplay", "--device=vsink", str(audio)], env={**os.environ, "PULSE_SINK": "vsink"})
        if wait:
            assert proc.wait(timeout=60) == 0
        return started

    return play


@pytest.fixture
def record_sink(tmp_path: Path, pulse_server: str) -> Iterator[Callable[[str], Callable[[], np.ndarray]]]:  # noqa: F811
    """Record a sink's monitor with parec; ``start(sink)`` returns a function that stops and
    returns the recording (16 kHz mono float32)."""
    procs: list[subprocess.Popen] = []

    def start(sink: str) -> Callable[[], np.ndarray]:
        path = tmp_path / f"{sink}-{len(procs)}.raw"
        out = path.open("wb")
        proc = subprocess.Popen(["parec", f"--device={sink}.monitor", "--format=s16le", "--rate=16000", "--channels=1"], stdout=out)
        procs.append(proc)

        def stop() -> np.ndarray:
            proc.terminate()
            proc.wait(timeout=10)
            out.close()
            return np.fromfile(path, dtype=np.int16).astype(np.float32) / 32768.0

        return stop

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)


class EventLog:
    """Collects loop events from worker threads; ``wait_for(kind)`` blocks until one arrives."""

    def __init__(self) -> None:
        self.events: list[tuple[float, object]] = []

    def __call__(self, event: object) -> None:
        self.events.append((time.perf_counter(), event))

    def of(self, kind: type) -> list:
        return [e for _, e in self.events if isinstance(e, kind)]

    def wait_for(self, kind: type, count: int = 1, timeout: float = 90.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(kind)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        names = [type(e).__name__ for _, e in self.events if type(e).__name__ != "MicLevel"]
        pytest.fail(f"no {kind.__name__} (x{count}) within {timeout:g} s; events: {names[-30:]}")

    def time_of(self, kind: type) -> float:
        return next(t for t, e in self.events if isinstance(e, kind))


@pytest.fixture
def events() -> EventLog:
    """A fresh event collector."""
    return EventLog()


@pytest.fixture
def voice_config(make_config):
    """A config for voice tests: greedy, short replies, a data dir in tmp."""

    def build(extra: str = "", max_tokens: int = 40) -> object:
        # a persona without sampler overrides, so the reply really is greedy (the built-in
        # assistant samples at 0.3 and then sometimes answers in French, which Piper's English
        # voice cannot say back recognisably)
        return make_config(
            f"[sampler]\ntemperature = 0.0\nmax_tokens = {max_tokens}\n"
            '[chat]\npersona = "plain"\n'
            '[personas.plain]\nsystem_prompt = "You are a helpful assistant. Answer briefly, in English."\n'
            f"{extra}"
        )

    return build


@pytest.fixture
def voice_runtime(starter_model):
    """A runtime on the session's starter model (closing it leaves the shared model loaded)."""
    from agent.runtime import build_runtime

    made = []

    def build(config, persona: str | None = None):
        runtime = build_runtime(config, persona=persona, model=starter_model)
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        if runtime.log is not None:
            runtime.log.close()
