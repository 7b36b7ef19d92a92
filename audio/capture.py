"""Microphone capture: PortAudio input at the device's own rate, delivered as 16 kHz mono float32.

The PortAudio callback only copies frames into a queue; mixing and resampling happen in the
consumer's thread (``read`` / ``frames``). A device that vanishes (stream error, unexpected end,
no frames for ``timeout_s``) is reported as a :class:`~audio.events.DeviceLost` event, never a crash.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from audio.devices import AudioDevice, find_device
from audio.errors import DeviceError
from audio.events import AudioEventSink, DeviceLost
from audio.pcm import STT_RATE, StreamResampler, to_mono
from audio.streams import close_stream

log = logging.getLogger(__name__)

_END = object()
START_GRACE_S = 5.0  # a sound server may take a second or two to deliver the first frames


class MicCapture:
    """A running microphone stream; iterate :meth:`frames` in a worker thread."""

    def __init__(
        self,
        device: str | int | None = None,
        *,
        block_ms: int = 30,
        sample_rate: int = STT_RATE,
        timeout_s: float = 2.0,
        emit: AudioEventSink | None = None,
    ) -> None:
        self.device_spec = device
        self.block_ms = block_ms
        self.sample_rate = sample_rate
        self.timeout_s = timeout_s
        self._emit = emit
        self._raw: queue.SimpleQueue = queue.SimpleQueue()
        self._stream: Any = None  # sounddevice.InputStream (untyped library)
        self._closing = threading.Event()
        self._resampler: StreamResampler | None = None
        self.device: AudioDevice | None = None
        self.lost: str | None = None
        self.overflows = 0

    def start(self) -> None:
        """Open and start the input stream (DeviceError when no usable device)."""
        import sounddevice as sd

        self.device = device = find_device(self.device_spec, "input")
        rate = int(device.default_samplerate) or 48000
        try:
            self._stream = sd.InputStream(
                device=device.index, samplerate=rate, channels=1, dtype="float32",
                blocksize=max(1, rate * self.block_ms // 1000), callback=self._on_audio,
                finished_callback=self._on_finished,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            raise DeviceError(f"cannot open input device {device.name!r}: {exc}") from None
        self._resampler = StreamResampler(rate, self.sample_rate)
        log.info("capturing from %s at %d Hz", device.name, rate)

    def _on_audio(self, indata, frames, time_info, status) -> None:  # PortAudio thread
        if status.input_overflow:
            self.overflows += 1
        self._raw.put_nowait(indata.copy())

    def _on_finished(self) -> None:  # PortAudio thread
        if not self._closing.is_set():
            self._raw.put_nowait(_END)

    def read(self, timeout: float | None = None) -> np.ndarray | None:
        """The next block at ``sample_rate`` mono; None on timeout or once the device is lost."""
        if self.lost is not None or self._resampler is None:
            return None
        try:
            item = self._raw.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _END:
            self._mark_lost("the input stream ended unexpectedly (device unplugged or sound server gone)")
            return None
        return self._resampler.process(to_mono(item))

    def frames(self, stop: threading.Event | None = None) -> Iterator[np.ndarray]:
        """Yield 16 kHz mono blocks until ``stop`` is set, :meth:`close` is called or the device is lost."""
        stop = stop or threading.Event()
        silent_since, limit = time.monotonic(), max(self.timeout_s, START_GRACE_S)
        while not stop.is_set() and not self._closing.is_set() and self.lost is None:
            block = self.read(timeout=0.1)
            if block is None:
                if self.lost is None and time.monotonic() - silent_since > limit:
                    self._mark_lost(f"no audio from the input device for {limit:g} s")
                continue
            silent_since, limit = time.monotonic(), self.timeout_s
            if len(block):
                yield block

    def _mark_lost(self, message: str) -> None:
        self.lost = message
        log.warning("input device lost: %s", message)
        if self._emit is not None:
            self._emit(DeviceLost(kind="input", message=message))

    def close(self) -> None:
        """Stop and close the stream (safe to call twice, and after the device was lost)."""
        self._closing.set()
        stream, self._stream = self._stream, None
        if stream is not None:
            close_stream(stream, "input")

    def __enter__(self) -> MicCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
