"""Piper text-to-speech: the starter voice, any voice by path, and what is (not) spoken."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from audio.pcm import STT_RATE, resample
from audio.settings import TtsSettings
from audio.starter import joe_voice_path
from audio.tts import PiperTts
from tests.audio.wer import wer


def test_one_chunk_per_sentence_with_written_and_spoken_text(piper) -> None:
    chunks = list(piper.synthesize("It is 5 o'clock. **Time** for tea 🍵!"))
    assert [c.index for c in chunks] == [0, 1]
    assert all(c.sample_rate == piper.sample_rate == 22050 for c in chunks)
    assert chunks[0].written == "It is 5 o'clock. **Time** for tea 🍵!"
    assert chunks[0].spoken == "It is five o'clock. Time for tea!"
    assert all(0.4 < c.duration_s < 4 and c.pcm.dtype == np.float32 for c in chunks)
    assert all(np.abs(c.pcm).max() > 0.1 for c in chunks)


def test_nothing_is_spoken_for_reasoning_or_code_only(piper) -> None:
    assert list(piper.synthesize("<think>plan the answer</think>")) == []
    assert list(piper.synthesize("```python\nprint(42)\n```")) == []


def test_cancel_stops_between_sentences(piper) -> None:
    cancel = threading.Event()
    out = []
    for chunk in piper.synthesize("One sentence here. Another one. And a third one."):
        out.append(chunk)
        cancel.set()
        break
    assert len(out) == 1
    assert list(piper.synthesize("First. Second.", cancel=cancel)) == []


def test_wav_output_is_recognised_back(piper, whisper, tmp_path) -> None:
    import soundfile

    path = tmp_path / "out.wav"
    steady = PiperTts(piper.voice, TtsSettings(noise_scale=0.0, noise_w_scale=0.0), piper.voice_path)  # same audio every run
    said = steady.synthesize_to_wav("The meeting moved to 3 pm on Friday.", path)
    data, rate = soundfile.read(path, dtype="float32")
    assert rate == 22050 and data.ndim == 1 and len(data) / rate > 1.5
    assert said.spoken == "The meeting moved to three pm on Friday."
    text = whisper.transcribe(resample(data, rate, STT_RATE), language="en").text
    assert wer("The meeting moved to three pm on Friday", text) <= 0.3, text


def test_synthesis_settings_take_effect(piper) -> None:
    slow = PiperTts(piper.voice, TtsSettings(length_scale=1.6), piper.voice_path)
    normal, _ = piper.synthesize_all("Speaking at a different tempo.")
    stretched, _ = slow.synthesize_all("Speaking at a different tempo.")
    assert len(stretched) > 1.3 * len(normal)


def test_any_voice_by_path_and_russian_normalisation(tmp_path) -> None:
    """A voice loaded by path whose config asks for Russian phonemes reads normalised Russian."""
    onnx = tmp_path / "ru_RU-test-medium.onnx"
    shutil.copy(joe_voice_path(), onnx)
    config = json.loads(joe_voice_path().with_suffix(".onnx.json").read_text(encoding="utf-8"))
    config["espeak"]["voice"] = "ru"
    (tmp_path / "ru_RU-test-medium.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    tts = PiperTts.load(TtsSettings(voice=str(onnx)))
    assert tts.voice_path == onnx and tts.language == "ru"
    chunks = list(tts.synthesize("Встреча 12.03.2024 в 14:30. Возьмите 2 кг яблок."))
    assert len(chunks) == 2
    assert chunks[0].spoken.startswith("Встреча двенадцатое марта две тысячи двадцать четвёртого года")
    assert "два килограмма" in chunks[0].spoken
    assert all(c.duration_s > 0.8 for c in chunks)


def test_a_broken_voice_file_is_a_one_line_error(tmp_path) -> None:
    from audio.errors import AudioModelError

    onnx = tmp_path / "broken.onnx"
    onnx.write_bytes(b"not a model")
    shutil.copy(joe_voice_path().with_suffix(".onnx.json"), tmp_path / "broken.onnx.json")
    with pytest.raises(AudioModelError, match="cannot load Piper voice") as info:
        PiperTts.load(voice=onnx)
    assert "\n" not in str(info.value)
