"""Smart Turn v3 from the pipecat-ai wheel on real synthesized speech: a finished question sounds
finished, the same question cut off mid-phrase does not; a missing wheel or model file is one
clear line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from audio.errors import AudioModelError
from audio.pcm import STT_RATE, resample
from audio.turn_end import INSTALL_HINT, SmartTurnDetector, last_window, smart_turn_dir

LONG = "How many legs does a spider have, and how many does an ant have?"
COMPLETE = ["What is the capital of France?", "What color is the sky on a clear day?", "Where do penguins live?"]


@pytest.fixture(scope="module")
def detector() -> SmartTurnDetector:
    return SmartTurnDetector.load()


@pytest.fixture(scope="module")
def steady_piper():
    """The starter voice without generator noise, so the same text always sounds the same."""
    from audio.settings import TtsSettings
    from audio.tts import PiperTts

    return PiperTts.load(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))


def spoken(piper, text: str, keep: float = 1.0) -> np.ndarray:
    """``text`` at 16 kHz, its first ``keep`` share only, with 0.3 s before and 0.21 s of silence after."""
    pcm, _ = piper.synthesize_all(text)
    audio = resample(pcm, piper.sample_rate, STT_RATE)
    audio = audio[: int(len(audio) * keep)]
    return np.concatenate([np.zeros(int(0.3 * STT_RATE), np.float32), audio, np.zeros(int(0.21 * STT_RATE), np.float32)])


def test_a_finished_question_scores_high(detector, steady_piper):
    scores = [detector.probability(spoken(steady_piper, text)) for text in COMPLETE]
    assert min(scores) > 0.5, scores


def test_a_question_cut_off_mid_phrase_scores_lower(detector, steady_piper):
    whole = detector.probability(spoken(steady_piper, "What is the capital of France?"))
    cut = [detector.probability(spoken(steady_piper, LONG, keep)) for keep in (0.6, 0.75)]
    assert max(cut) < 0.5 < whole, (cut, whole)


def test_int16_and_float_input_agree_and_long_audio_keeps_its_end(detector, steady_piper):
    audio = spoken(steady_piper, "Where do penguins live?")
    as_int16 = np.clip(audio * 32767, -32768, 32767).astype(np.int16)
    assert abs(detector.probability(as_int16) - detector.probability(audio)) < 0.02
    padded = np.concatenate([np.zeros(12 * STT_RATE, np.float32), audio])  # 12 s of silence first
    window = last_window(padded)
    assert len(window) == 8 * STT_RATE and np.array_equal(window[-len(audio):], audio)
    assert abs(detector.probability(padded) - detector.probability(audio)) < 0.02


def test_a_missing_wheel_names_the_install_command():
    with pytest.raises(AudioModelError, match="pip install --no-deps pipecat-ai"):
        SmartTurnDetector.load(package="no_such_pipecat_package")
    assert INSTALL_HINT == "pip install --no-deps pipecat-ai"


def test_a_missing_model_file_is_one_clear_line(tmp_path: Path):
    with pytest.raises(AudioModelError) as caught:
        SmartTurnDetector.load(tmp_path / "gone.onnx")
    assert "gone.onnx" in str(caught.value) and "\n" not in str(caught.value)


def test_a_corrupt_model_file_is_one_clear_line(tmp_path: Path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(AudioModelError) as caught:
        SmartTurnDetector.load(broken)
    assert "cannot load the Smart Turn model" in str(caught.value) and "\n" not in str(caught.value)


def test_the_model_is_found_without_importing_pipecat():
    sys.modules.pop("pipecat", None)
    folder = smart_turn_dir()
    assert (folder / "data" / "smart-turn-v3.2-cpu.onnx").is_file()
    assert "pipecat" not in sys.modules  # find_spec located it; pipecat's runtime never ran
