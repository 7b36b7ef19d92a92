"""Speech-to-text with the starter Whisper base: real speech in, words out; no phantoms."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from audio.events import FinalTranscript, PartialTranscript
from audio.pcm import STT_RATE, resample
from audio.phantom import PhantomGuard, SegmentStats
from audio.settings import SttSettings
from audio.streaming import StreamingTranscriber
from audio.stt import WhisperStt, load_audio_file
from tests.audio.wer import wer

ENGLISH = "The weather is lovely today, so we will walk to the park after lunch."
RUSSIAN = "Привет, сегодня хорошая погода, и мы пойдём гулять в парк."


@pytest.fixture(scope="module")
def english_pcm(piper) -> np.ndarray:
    """Piper's English voice reading ENGLISH, at 16 kHz."""
    pcm, _ = piper.synthesize_all(ENGLISH)
    return resample(pcm, piper.sample_rate, STT_RATE)


def test_piper_speech_is_transcribed_back(whisper, english_pcm) -> None:
    result = whisper.transcribe(english_pcm, language="en")
    assert wer(ENGLISH, result.text) <= 0.15, result.text
    assert result.language == "en" and result.is_final
    assert 0.5 < result.confidence <= 1.0
    assert result.no_speech_prob < 0.2
    assert result.audio_s == pytest.approx(len(english_pcm) / STT_RATE)
    assert result.as_record()["text"] == result.text


def test_language_is_detected_when_auto(whisper, english_pcm) -> None:
    result = whisper.transcribe(english_pcm, language="auto")
    assert result.language == "en" and result.language_probability > 0.8
    assert wer(ENGLISH, result.text) <= 0.15


def test_russian_festival_speech_has_low_wer(whisper, festival_ru) -> None:
    result = whisper.transcribe_file(festival_ru(RUSSIAN), language="ru")
    assert result.language == "ru"
    assert wer(RUSSIAN, result.text) <= 0.35, result.text


def test_partial_transcripts_then_a_final_one(whisper, english_pcm) -> None:
    events: list = []
    streaming = StreamingTranscriber(whisper, interval_ms=300, language="en", emit=events.append).start()
    step = STT_RATE // 10
    half = len(english_pcm) // 2
    for i in range(0, half, step):  # in real time, as a microphone delivers it
        streaming.append(english_pcm[i:i + step])
        threading.Event().wait(0.1)
    deadline = time.monotonic() + 60  # the user is still speaking; on a busy machine a partial takes a while
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    streaming.append(english_pcm[half:])
    final = streaming.finish()
    partials = [e for e in events if isinstance(e, PartialTranscript)]
    assert partials, "no partial transcript while speaking"
    assert all(p.audio_s <= half / STT_RATE + 0.01 < final.audio_s for p in partials)
    heard = partials[0].text.split()
    assert wer(" ".join(ENGLISH.split()[: len(heard)]), partials[0].text) <= 0.5, partials[0].text
    assert isinstance(events[-1], FinalTranscript) and events[-1].transcript is final
    assert wer(ENGLISH, final.text) <= 0.15


def test_a_cancelled_transcription_does_no_work(whisper, english_pcm) -> None:
    cancel = threading.Event()
    cancel.set()
    result = whisper.transcribe(english_pcm, language="en", cancel=cancel)
    assert result.cancelled and result.text == "" and result.compute_s < 0.1


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_a_minute_of_silence_or_noise_gives_no_text(whisper, tmp_path, kind: str) -> None:
    import soundfile

    rng = np.random.default_rng(7)
    audio = np.zeros(60 * STT_RATE, np.float32) if kind == "silence" else (rng.standard_normal(60 * STT_RATE) * 0.1).astype(np.float32)
    path = tmp_path / f"{kind}.wav"
    soundfile.write(path, audio, STT_RATE)
    assert whisper.transcribe_file(path, language="ru").text == ""
    assert whisper.transcribe_file(path, language="en").text == ""


def test_phantom_guard_drops_what_whisper_invents_on_silence(whisper) -> None:
    """With the silence gate off, Whisper base "hears" subtitle credits in silence; the guard drops them."""
    ungated = WhisperStt(whisper.model, SttSettings(silence_dbfs=-1000.0), whisper.model_name)
    result = ungated.transcribe(np.zeros(30 * STT_RATE, np.float32), language="ru")
    assert result.text == ""
    assert result.dropped, "Whisper produced nothing to guard against"
    assert result.no_speech_prob > 0.5


def test_near_silent_audio_is_not_transcribed(whisper) -> None:
    result = whisper.transcribe(np.full(5 * STT_RATE, 1e-4, np.float32), language="ru")
    assert result.text == "" and result.compute_s < 0.1
    assert "near-silent" in result.dropped[0] and result.audio_s == 5.0


def test_known_phantoms_are_dropped_only_when_doubtful() -> None:
    guard = PhantomGuard(SttSettings())
    assert guard.transcript_reason("Спасибо.", level_dbfs=-70.0, no_speech_prob=0.1, confidence=0.9)
    assert guard.transcript_reason("Thank you.", level_dbfs=-20.0, no_speech_prob=0.5, confidence=0.9)
    assert guard.transcript_reason("Продолжение следует...", level_dbfs=-20.0, no_speech_prob=0.1, confidence=0.3)
    assert guard.transcript_reason("Спасибо.", level_dbfs=-20.0, no_speech_prob=0.05, confidence=0.9) is None
    assert guard.transcript_reason("Спасибо большое, друг.", level_dbfs=-70.0, no_speech_prob=0.9, confidence=0.1) is None
    assert guard.segment_reason(SegmentStats("x", 0.95, -0.2, 1.0))
    assert guard.segment_reason(SegmentStats("x", 0.7, -1.5, 1.0))
    assert guard.segment_reason(SegmentStats("x x x x", 0.0, -0.2, 3.0))
    assert guard.segment_reason(SegmentStats("x", 0.1, -0.3, 1.2)) is None


def test_starter_model_is_joined_once_atomically(tmp_path) -> None:
    from audio.starter import whisper_base_dir

    folder = whisper_base_dir(tmp_path)
    model = folder / "model.bin"
    first_mtime = model.stat().st_mtime_ns
    assert model.stat().st_size > 100_000_000
    assert {p.name for p in folder.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    assert whisper_base_dir(tmp_path) == folder and model.stat().st_mtime_ns == first_mtime
    with model.open("r+b") as f:  # a damaged (short) join is redone
        f.truncate(1000)
    whisper_base_dir(tmp_path)
    assert model.stat().st_size > 100_000_000


def test_load_audio_file_returns_16k_mono(festival_ru) -> None:
    audio = load_audio_file(festival_ru("Раз, два, три.", "count"))
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) > STT_RATE // 2
