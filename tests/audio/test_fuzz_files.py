"""Bad audio files, as a careless user or a fuzzer makes them: a clear line or a transcript, never a
traceback or a hang, from the library (``load_audio_file`` / ``transcribe_file``) and the CLI.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.errors import AudioFileError
from audio.files import load_audio_file
from audio.pcm import STT_RATE

EXTENSIONS = ("wav", "flac", "mp3", "ogg", "opus")
_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", "MPEG_LAYER_III"),
            "ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS")}
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _tone(seconds: float, rate: int = STT_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="module")
def good_files(tmp_path_factory) -> dict[str, bytes]:
    """A valid one-second file of each extension, as bytes."""
    folder = tmp_path_factory.mktemp("good")
    out = {}
    for ext, (fmt, subtype) in _FORMATS.items():
        path = folder / f"tone.{ext}"
        soundfile.write(path, _tone(1.0, 48000), 48000, format=fmt, subtype=subtype)
        out[ext] = path.read_bytes()
    return out


def check_load(path: Path) -> np.ndarray | None:
    """Decoded audio that is sane, or None after a one-line AudioFileError naming the file."""
    try:
        audio = load_audio_file(path)
    except AudioFileError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        return None
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > 0
    assert np.isfinite(audio).all() and np.abs(audio).max() <= 1.0
    return audio


@FUZZ
@given(payload=st.binary(min_size=0, max_size=4096), ext=st.sampled_from(EXTENSIONS))
def test_random_bytes_with_audio_extensions(tmp_path, payload: bytes, ext: str) -> None:
    path = tmp_path / f"random.{ext}"
    path.write_bytes(payload)
    started = time.monotonic()
    check_load(path)
    assert time.monotonic() - started < 10


@FUZZ
@given(ext=st.sampled_from(EXTENSIONS), cut=st.floats(0.0, 1.0), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=12))
def test_truncated_and_corrupted_files(tmp_path, good_files, ext: str, cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(good_files[ext][: max(1, int(len(good_files[ext]) * cut))])
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    path = tmp_path / f"broken.{ext}"
    path.write_bytes(bytes(data))
    check_load(path)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ext=st.sampled_from(EXTENSIONS), cut=st.floats(0.3, 1.0), flips=st.lists(st.tuples(st.floats(0.05, 1), st.integers(0, 255)), max_size=6))
def test_whatever_decodes_also_transcribes(whisper, tmp_path, good_files, ext: str, cut: float, flips: list[tuple[float, int]]) -> None:
    data = bytearray(good_files[ext][: int(len(good_files[ext]) * cut)])
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    path = tmp_path / f"maybe.{ext}"
    path.write_bytes(bytes(data))
    try:
        result = whisper.transcribe_file(path, language="ru")
    except AudioFileError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert result.audio_s > 0 and isinstance(result.text, str)


def _wav_header_edit(good: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(good)
    data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(data)


BROKEN = {  # name -> (make bytes from a good 16 kHz WAV, what the error says)
    "header-only.wav": (lambda good: good[:44], "no audio in file"),
    "ten-bytes.wav": (lambda good: good[:10], "not a readable audio file"),
    "claims-more.wav": (lambda good: _wav_header_edit(good, 40, "<I", len(good) * 10), "truncated"),
    "no-channels.wav": (lambda good: _wav_header_edit(good, 22, "<H", 0), "not a readable audio file"),
    "rate-zero.wav": (lambda good: _wav_header_edit(good, 24, "<I", 0), "not a readable audio file"),
    "text.mp3": (lambda good: "это не звук\n".encode() * 100, "not a readable audio file"),
}


@pytest.fixture(scope="module")
def good_wav(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("wav") / "good.wav"
    soundfile.write(path, _tone(1.0), STT_RATE, subtype="PCM_16")
    return path.read_bytes()


@pytest.mark.parametrize("ext", EXTENSIONS)
def test_empty_files(tmp_path, ext: str) -> None:
    path = tmp_path / f"empty.{ext}"
    path.touch()
    with pytest.raises(AudioFileError, match="empty file"):
        load_audio_file(path)


def test_zero_length_wav(tmp_path) -> None:
    path = tmp_path / "zero.wav"
    soundfile.write(path, np.zeros(0, np.float32), STT_RATE)
    with pytest.raises(AudioFileError, match="no audio in file"):
        load_audio_file(path)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_headers_name_the_problem(tmp_path, good_wav, name: str) -> None:
    make, message = BROKEN[name]
    path = tmp_path / name
    path.write_bytes(make(good_wav))
    with pytest.raises(AudioFileError, match=message) as info:
        load_audio_file(path)
    assert "\n" not in str(info.value) and "avcodec" not in str(info.value)


def test_a_folder_and_a_missing_file(tmp_path) -> None:
    (tmp_path / "folder.wav").mkdir()
    with pytest.raises(AudioFileError, match="not a file"):
        load_audio_file(tmp_path / "folder.wav")
    with pytest.raises(AudioFileError, match="file not found"):
        load_audio_file(tmp_path / "missing.wav")


ODD = {  # name -> (samples (frames[, channels]), rate, subtype)
    "stereo-8k.wav": (np.stack([_tone(1.0, 8000), -_tone(1.0, 8000)], axis=1), 8000, "PCM_16"),
    "six-channels.wav": (np.stack([_tone(1.0, 44100)] * 6, axis=1), 44100, "PCM_16"),
    "u8-11k.wav": (_tone(1.0, 11025), 11025, "PCM_U8"),
    "s24-96k.flac": (_tone(1.0, 96000), 96000, "PCM_24"),
    "one-sample.wav": (_tone(1.0)[:1], STT_RATE, "PCM_16"),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_but_valid_files_decode_and_transcribe(whisper, tmp_path, name: str) -> None:
    samples, rate, subtype = ODD[name]
    path = tmp_path / name
    soundfile.write(path, samples, rate, subtype=subtype)
    audio = check_load(path)
    assert audio is not None and len(audio) == pytest.approx(len(samples) * STT_RATE / rate, abs=STT_RATE // 100)
    assert whisper.transcribe_file(path, language="ru").text == ""  # a tone is not speech


def test_float_wav_with_nan_inf_and_overrange_samples(whisper, tmp_path) -> None:
    samples = _tone(1.0)
    samples[100:200], samples[300], samples[400:500] = np.nan, np.inf, 50.0
    path = tmp_path / "float.wav"
    soundfile.write(path, samples, STT_RATE, subtype="FLOAT")
    assert check_load(path) is not None
    assert whisper.transcribe_file(path).text == ""


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory) -> dict[str, Path]:
    """Ten minutes of digital silence (WAV) and of white noise (FLAC)."""
    folder = tmp_path_factory.mktemp("long")
    rng = np.random.default_rng(10)
    silence, noise = folder / "silence.wav", folder / "noise.flac"
    soundfile.write(silence, np.zeros(600 * STT_RATE, np.float32), STT_RATE)
    soundfile.write(noise, (rng.standard_normal(600 * STT_RATE) * 0.05).astype(np.float32), STT_RATE)
    return {"silence": silence, "noise": noise}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_ten_minutes_without_speech_is_quick_and_empty(whisper, ten_minutes, kind: str) -> None:
    started = time.monotonic()
    result = whisper.transcribe_file(ten_minutes[kind], language="ru")
    assert result.text == "" and result.audio_s == pytest.approx(600, abs=0.1)
    assert time.monotonic() - started < 60, "a file without speech must not be decoded window by window"


def _epistemic(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("epistemic")
    command = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from agent.cli import main; main(sys.argv[1:])"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.timeout(360)
def test_cli_reports_each_bad_file_on_one_line_and_transcribes_the_rest(tmp_path, good_wav, good_files, ten_minutes) -> None:
    rng = np.random.default_rng(3)
    bad = {name: make(good_wav) for name, (make, _msg) in BROKEN.items()}
    bad |= {f"random.{ext}": rng.integers(0, 256, 3000, dtype=np.uint8).tobytes() for ext in EXTENSIONS}
    bad |= {f"empty.{ext}": b"" for ext in EXTENSIONS}
    bad["half.flac"] = good_files["flac"][: len(good_files["flac"]) // 2]
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    good = [tmp_path / "tone.wav", ten_minutes["noise"], ten_minutes["silence"]]
    good[0].write_bytes(good_wav)
    done = _epistemic("transcribe", *map(str, good), *(str(tmp_path / n) for n in bad), "--language", "ru", cwd=tmp_path)
    assert done.returncode == 5, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    for name in bad:
        named = [line for line in lines if f"{tmp_path / name}:" in line]
        assert len(named) == 1 and named[0].startswith("epistemic: "), (name, lines)
    assert len(lines) == len(bad), lines
    assert sorted(line.split(":")[0] for line in done.stdout.splitlines()) == sorted(map(str, good))


def test_cli_single_unreadable_file(tmp_path) -> None:
    path = tmp_path / "voice.opus"
    path.write_bytes(b"OggS" + bytes(200))
    done = _epistemic("transcribe", str(path), cwd=tmp_path)
    assert done.returncode == 5 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and str(path) in done.stderr, done.stderr
