"""Audio devices: list them and choose one by name substring or index (sounddevice / PortAudio)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from audio.errors import DeviceError

log = logging.getLogger(__name__)

Kind = Literal["input", "output"]


@dataclass(frozen=True)
class AudioDevice:
    """One PortAudio device as sounddevice reports it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    is_default_input: bool = False
    is_default_output: bool = False

    def channels(self, kind: Kind) -> int:
        """Channels available in the given direction."""
        return self.max_input_channels if kind == "input" else self.max_output_channels


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # libportaudio2 missing
        raise DeviceError(f"PortAudio is not available ({exc}); install libportaudio2") from None
    return sounddevice


def list_devices() -> list[AudioDevice]:
    """All devices PortAudio sees (none when there is no sound card or sound server)."""
    sd = _sounddevice()
    try:
        raw = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from None
    return [_to_device(d, hostapis, default_in, default_out) for d in raw]


def _to_device(d: dict, hostapis, default_in: int, default_out: int) -> AudioDevice:
    return AudioDevice(
        index=int(d["index"]),
        name=str(d["name"]),
        hostapi=str(hostapis[d["hostapi"]]["name"]),
        max_input_channels=int(d["max_input_channels"]),
        max_output_channels=int(d["max_output_channels"]),
        default_samplerate=float(d["default_samplerate"]),
        is_default_input=d["index"] == default_in,
        is_default_output=d["index"] == default_out,
    )


def find_device(spec: str | int | None, kind: Kind) -> AudioDevice:
    """The device named by ``spec`` (index, name substring, None = default) for ``kind``."""
    devices = [d for d in list_devices() if d.channels(kind) > 0]
    if not devices:
        raise DeviceError(f"no audio {kind} device found (is a sound server running?)")
    if spec is None or spec == "":
        return _default(devices, kind)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return _by_index(devices, int(spec), kind)
    return _by_name(devices, str(spec), kind)


def _default(devices: list[AudioDevice], kind: Kind) -> AudioDevice:
    for d in devices:
        if d.is_default_input if kind == "input" else d.is_default_output:
            return d
    return devices[0]


def _by_index(devices: list[AudioDevice], index: int, kind: Kind) -> AudioDevice:
    for d in devices:
        if d.index == index:
            return d
    raise DeviceError(f"audio {kind} device #{index} not found; available: {_names(devices)}")


def _by_name(devices: list[AudioDevice], name: str, kind: Kind) -> AudioDevice:
    wanted = name.casefold()
    exact = [d for d in devices if d.name.casefold() == wanted]
    matches = exact or [d for d in devices if wanted in d.name.casefold()]
    if not matches:
        raise DeviceError(f"audio {kind} device {name!r} not found; available: {_names(devices)}")
    if len(matches) > 1:
        log.info("device %r matches %d devices; using %s", name, len(matches), matches[0].name)
    return matches[0]


def _names(devices: list[AudioDevice]) -> str:
    return ", ".join(f"#{d.index} {d.name}" for d in devices) or "none"
