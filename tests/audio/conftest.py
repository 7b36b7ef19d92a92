"""Audio test fixtures: a real PulseAudio null sink, and the starter Whisper and Piper models.

Tests marked ``audio`` get a PulseAudio daemon with a null sink ("vsink"), started once per
session by ``scripts/pulse-null-sink.sh`` (with ``$EPISTEMIC_PULSE_DIR`` as its runtime folder when
set, else a temporary one that is stopped at the end). Audio played to the default sink can be
captured from its monitor, which is the default source.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PULSE_SCRIPT = ROOT / "scripts" / "pulse-null-sink.sh"


def start_pulse(runtime_dir: str) -> None:
    """Start (or find running) the null-sink daemon whose runtime folder is ``runtime_dir``."""
    env = {**os.environ, "EPISTEMIC_PULSE_DIR": runtime_dir}
    done = subprocess.run([str(PULSE_SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"could not start PulseAudio: {done.stderr.strip()}")


def stop_pulse(runtime_dir: str) -> None:
    """Stop the daemon started by :func:`start_pulse`."""
    env = {**os.environ, "EPISTEMIC_PULSE_DIR": runtime_dir}
    subprocess.run([str(PULSE_SCRIPT), "stop"], env=env, capture_output=True, timeout=30)


def _reinit_portaudio() -> None:
    """PortAudio lists devices once per initialisation: refresh it after the server started."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


@pytest.fixture(scope="session")
def pulse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A running PulseAudio null sink; yields its runtime folder (this process's XDG_RUNTIME_DIR)."""
    if shutil.which("pulseaudio") is None:
        pytest.skip("pulseaudio is not installed (scripts/setup.sh installs it)")
    given = os.environ.get("EPISTEMIC_PULSE_DIR")
    runtime = given or str(tmp_path_factory.mktemp("pulse"))
    start_pulse(runtime)
    previous = os.environ.get("XDG_RUNTIME_DIR")
    os.environ["XDG_RUNTIME_DIR"] = runtime
    _reinit_portaudio()
    yield runtime
    if previous is None:
        os.environ.pop("XDG_RUNTIME_DIR", None)
    else:
        os.environ["XDG_RUNTIME_DIR"] = previous
    if not given:
        stop_pulse(runtime)


@pytest.fixture(autouse=True)
def _pulse_for_audio_tests(request: pytest.FixtureRequest) -> None:
    """Tests marked ``audio`` get the null sink."""
    if request.node.get_closest_marker("audio"):
        request.getfixturevalue("pulse_server")


@pytest.fixture(scope="session")
def whisper():
    """The starter Whisper base model, loaded once."""
    from audio.settings import SttSettings
    from audio.stt import WhisperStt

    return WhisperStt.load(SttSettings())


@pytest.fixture(scope="session")
def piper():
    """The starter English Piper voice (en_US-joe-medium), loaded once."""
    from audio.tts import PiperTts

    return PiperTts.load()


@pytest.fixture(scope="session")
def festival_ru(tmp_path_factory: pytest.TempPathFactory):
    """A function that speaks Russian text into a 16 kHz WAV with Festival (festvox-ru)."""
    if shutil.which("text2wave") is None:
        pytest.skip("Festival is not installed (apt-get install festival festvox-ru)")
    folder = tmp_path_factory.mktemp("festival")

    def speak(text: str, name: str = "ru") -> Path:
        src, out = folder / f"{name}.txt", folder / f"{name}.wav"
        src.write_text(text, encoding="utf-8")
        subprocess.run(["text2wave", "-o", str(out), "-eval", "(voice_msu_ru_nsh_clunits)", str(src)],
                       check=True, capture_output=True, timeout=120)
        return out

    return speak
