"""Audio devices through a real PulseAudio null sink; missing and lost devices never crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from audio.devices import find_device, list_devices
from audio.errors import DeviceError
from tests.audio.conftest import ROOT


@pytest.mark.audio
def test_null_sink_is_listed_and_found_by_name_and_index() -> None:
    devices = list_devices()
    pulse = find_device("puls", "input")
    assert pulse.name == "pulse" and pulse.max_input_channels > 0
    assert find_device(pulse.index, "output").index == pulse.index
    assert find_device(str(pulse.index), "output").index == pulse.index
    assert find_device(None, "output").index in {d.index for d in devices}


@pytest.mark.audio
def test_unknown_device_is_a_one_line_error() -> None:
    with pytest.raises(DeviceError, match=r"'no such mic' not found; available: #\d+ pulse"):
        find_device("no such mic", "input")
    with pytest.raises(DeviceError, match="#999 not found"):
        find_device(999, "output")


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**os.environ, **env})


def test_no_sound_server_means_no_device_and_a_clear_error(tmp_path) -> None:
    done = _run("""
        from audio.devices import list_devices, find_device
        from audio.errors import DeviceError
        from audio.capture import MicCapture
        print(len(list_devices()))
        try:
            MicCapture().start()
        except DeviceError as exc:
            print(exc)
    """, {"XDG_RUNTIME_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    count, message = done.stdout.strip().splitlines()
    assert count == "0"
    assert message == "no audio input device found (is a sound server running?)"


def test_cli_devices_without_any_device(tmp_path) -> None:
    code = "import sys; from agent.cli import main; main(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, "devices"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)})
    assert done.returncode == 0 and done.stdout == ""
    assert "no audio devices found" in done.stderr


@pytest.mark.audio
def test_cli_devices_lists_the_null_sink(pulse_server, tmp_path) -> None:
    code = "import sys; from agent.cli import main; main(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, "devices", "--json"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={**os.environ, "XDG_RUNTIME_DIR": pulse_server})
    assert done.returncode == 0, done.stderr
    assert "pulse" in [d["name"] for d in json.loads(done.stdout)]


@pytest.mark.audio
def test_a_microphone_lost_mid_stream_becomes_an_event(tmp_path) -> None:
    """A second daemon is killed while we capture from it: DeviceLost, no exception, no hang."""
    runtime = str(tmp_path / "pulse")
    done = _run(f"""
        import os, subprocess, threading, time
        from audio.capture import MicCapture
        from audio.events import DeviceLost
        script, env = {str(ROOT / "scripts" / "pulse-null-sink.sh")!r}, dict(os.environ, EPISTEMIC_PULSE_DIR={runtime!r})
        subprocess.run([script, "start"], env=env, check=True, capture_output=True)
        os.environ["XDG_RUNTIME_DIR"] = {runtime!r}
        events, got = [], 0
        mic = MicCapture("pulse", timeout_s=2.0, emit=events.append)
        mic.start()
        threading.Timer(3.0, lambda: subprocess.run([script, "stop"], env=env, check=True)).start()
        started = time.monotonic()
        for block in mic.frames():
            got += len(block)
        mic.close()
        print(got > 8000, round(time.monotonic() - started, 2), [type(e).__name__ for e in events], mic.lost)
    """, {})
    assert done.returncode == 0, done.stderr
    enough, seconds, kinds, message = done.stdout.strip().split(" ", 3)
    assert enough == "True"
    assert kinds == "['DeviceLost']"
    assert float(seconds) < 6.0
    assert "ended unexpectedly" in message or "no audio" in message
