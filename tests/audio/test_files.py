"""Audio files: formats, rates and channel counts are resampled; broken files give one clear line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from audio.errors import AudioFileError, AudioModelError
from audio.pcm import resample
from tests.audio.wer import wer

SENTENCE = "Please send the report to my office before noon tomorrow."


@pytest.fixture(scope="module")
def speech(piper) -> tuple[np.ndarray, int]:
    pcm, _ = piper.synthesize_all(SENTENCE)
    return pcm, piper.sample_rate


@pytest.mark.parametrize(("rate", "channels", "fmt", "subtype"), [
    (8000, 1, "WAV", "PCM_16"),
    (48000, 2, "WAV", "PCM_16"),
    (44100, 2, "FLAC", "PCM_16"),
    (48000, 1, "OGG", "OPUS"),
    (44100, 2, "MP3", "MPEG_LAYER_III"),
])
def test_formats_rates_and_channels_are_resampled(whisper, speech, tmp_path, rate, channels, fmt, subtype) -> None:
    import soundfile

    pcm, src_rate = speech
    data = resample(pcm, src_rate, rate)
    if channels == 2:
        data = np.stack([data, data * 0.8], axis=1)
    path = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(path, data, rate, format=fmt, subtype=subtype)
    result = whisper.transcribe_file(path, language="en")
    assert result.audio_s == pytest.approx(len(pcm) / src_rate, abs=0.15)
    assert wer(SENTENCE, result.text) <= 0.2, result.text


def _write(tmp_path, name: str, payload: bytes):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


@pytest.mark.parametrize(("name", "make", "message"), [
    ("empty.wav", lambda ok: b"", "empty file"),
    ("noise.mp3", lambda ok: bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), "not a readable audio file"),
    ("text.ogg", lambda ok: "это не звук, а текст\n".encode() * 50, "not a readable audio file"),
    ("header.wav", lambda ok: ok[:30], "not a readable audio file"),
    ("cut.wav", lambda ok: ok[: len(ok) // 5], "truncated"),
])
def test_broken_files_raise_one_line(whisper, speech, tmp_path, name, make, message) -> None:
    import soundfile

    good = tmp_path / "good.wav"
    soundfile.write(good, speech[0], speech[1])
    path = _write(tmp_path, name, make(good.read_bytes()))
    with pytest.raises(AudioFileError) as info:
        whisper.transcribe_file(path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_truncated_flac_is_reported(whisper, speech, tmp_path) -> None:
    import soundfile

    good = tmp_path / "good.flac"
    soundfile.write(good, speech[0], speech[1], format="FLAC")
    cut = _write(tmp_path, "cut.flac", good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(AudioFileError, match="truncated"):
        whisper.transcribe_file(cut)


def test_missing_file(whisper, tmp_path) -> None:
    with pytest.raises(AudioFileError, match="file not found"):
        whisper.transcribe_file(tmp_path / "nope.wav")


def test_missing_models_are_one_line_errors(tmp_path) -> None:
    from audio.stt import resolve_model
    from audio.tts import resolve_voice

    with pytest.raises(AudioModelError, match="Whisper model folder not found"):
        resolve_model(str(tmp_path / "no-model"))
    with pytest.raises(AudioModelError, match="Piper voice not found"):
        resolve_voice(tmp_path / "voice.onnx")
    (tmp_path / "voice.onnx").write_bytes(b"x")
    with pytest.raises(AudioModelError, match="config missing"):
        resolve_voice(tmp_path / "voice.onnx")


def _cli(*args: str, cwd) -> subprocess.CompletedProcess:
    code = "import sys; from agent.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_cli_say_then_transcribe(tmp_path) -> None:
    out = tmp_path / "said.wav"
    said = _cli("say", "Meet me at 5 in the garden. **Bring** tea 🍵", "-o", str(out), cwd=tmp_path)
    assert said.returncode == 0, said.stderr
    assert "five" in said.stderr and "**" not in said.stderr
    bad = _write(tmp_path, "bad.wav", b"RIFF....WAVEjunk")
    heard = _cli("transcribe", str(out), str(bad), "--language", "en", "--json", cwd=tmp_path)
    assert heard.returncode == 5
    assert heard.stderr.strip().count("\n") == 0 and "bad.wav" in heard.stderr
    import json

    row = json.loads(heard.stdout)
    assert row["file"] == str(out) and row["language"] == "en"
    assert wer("Meet me at five in the garden. Bring tea.", row["text"]) <= 0.3, row["text"]


def test_cli_say_with_a_missing_voice_fails_cleanly(tmp_path) -> None:
    done = _cli("say", "hi", "-o", str(tmp_path / "x.wav"), "--voice", str(tmp_path / "none.onnx"), cwd=tmp_path)
    assert done.returncode != 0
    assert "Piper voice not found" in done.stderr and "Traceback" not in done.stderr
