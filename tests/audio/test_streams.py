"""Aborting and closing PortAudio streams when the device hangs: bounded, never frozen."""

from __future__ import annotations

import threading
import time

from audio.events import DeviceLost, PlaybackFinished
from audio.playback import Player
from audio.streams import abort_stream, close_stream


class _HangingStream:
    """The part of ``sounddevice.OutputStream`` the player touches, whose abort never returns
    (what PortAudio's PulseAudio plugin does after the daemon died; not reproducible on demand)."""

    def __init__(self) -> None:
        self.active = True
        self.release = threading.Event()
        self.aborts = 0

    def abort(self) -> None:
        self.aborts += 1
        self.release.wait(30)

    def close(self) -> None:
        self.release.wait(30)


class _BrokenStream(_HangingStream):
    def abort(self) -> None:
        raise RuntimeError("PortAudio: device unavailable")


def test_abort_and_close_give_up_on_a_hanging_stream() -> None:
    stream = _HangingStream()
    started = time.monotonic()
    assert abort_stream(stream, "output", timeout=0.2) is False
    assert close_stream(stream, "output", timeout=0.2) is False
    assert time.monotonic() - started < 2.0
    stream.release.set()


def test_a_failing_abort_counts_as_returned() -> None:
    assert abort_stream(_BrokenStream(), "output", timeout=0.5) is True


def test_player_stop_abandons_a_hanging_device_and_reports_it() -> None:
    events: list[object] = []
    player = Player(emit=events.append)
    player.rate = 16000
    hanging = _HangingStream()
    player._stream = hanging  # a started player whose device has just vanished
    started = time.monotonic()
    report = player.stop()
    assert time.monotonic() - started < 3.0
    assert report.stopped
    assert hanging.aborts == 1
    assert player._stream is None  # abandoned, not reused by the next enqueue
    assert [type(e) for e in events] == [DeviceLost, PlaybackFinished]
    assert not player.playing
    hanging.release.set()
