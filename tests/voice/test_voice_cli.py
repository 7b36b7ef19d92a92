"""``epistemic reply`` and ``epistemic voice`` as a user runs them: real processes, real models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from agent.log import DialogueLog
from tests.audio.wer import wer

QUESTION = "What is the capital of France?"
RUSSIAN = "Какая сегодня погода в Москве?"
# the CLI group maps "reply"; "voice" is added here in case this checkout's group lacks it
RUN = "from agent.cli import COMMANDS, main; COMMANDS.setdefault('voice', 'agent.cli.voice_cmds:voice'); main()"


def _epistemic(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EPISTEMIC_") or k == "EPISTEMIC_PULSE_DIR"}
    clean.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
                 XDG_STATE_HOME=str(tmp_path / "state"), EPISTEMIC_SAMPLER__TEMPERATURE="0",
                 EPISTEMIC_SAMPLER__MAX_TOKENS="40", **env)
    return subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=clean, timeout=300, stdin=subprocess.DEVNULL)


def _data(tmp_path: Path) -> Path:
    return tmp_path / "data" / "epistemic-engine"


def _voice_message(piper, path: Path) -> Path:
    pcm, _ = piper.synthesize_all(QUESTION)
    if path.suffix == ".ogg":
        from audio.pcm import resample

        soundfile.write(str(path), resample(pcm, piper.sample_rate, 48000), 48000, format="OGG", subtype="OPUS")
    else:
        soundfile.write(str(path), pcm, piper.sample_rate, subtype="PCM_16")
    return path


def _check_reply(tmp_path: Path, proc, answer: Path, whisper, language: str, question: str, max_wer: float):
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    audio, rate = soundfile.read(str(answer), dtype="float32")
    assert rate == 22050 and len(audio) / rate > 0.3 and np.abs(audio).max() > 0.05
    with DialogueLog(_data(tmp_path) / "dialogues.sqlite3") as log:
        [conversation] = log.list_conversations()
        user, reply = log.conversation_turns(conversation.id)
    assert user.data["source"] == "file" and wer(question, user.text) <= max_wer, user.text
    assert user.data["stt"]["language"] == language and user.data["stt"]["confidence"] > 0
    kept = _data(tmp_path) / user.data["audio_path"]
    assert kept.is_file() and kept.suffix == answer.suffix or kept.stat().st_size > 0
    assert reply.text and proc.stdout.strip() == reply.text.strip()
    assert reply.data["spoken_text"] and reply.data["extra"]["waterfall"]["first_audio_s"] is not None
    return user, reply


@pytest.mark.parametrize("suffix", [".wav", ".ogg"])
def test_reply_answers_a_voice_message_with_speech_and_logs_it(tmp_path, piper, whisper, suffix):
    message = _voice_message(piper, tmp_path / f"message{suffix}")
    answer = tmp_path / "answer.wav"
    proc = _epistemic(tmp_path, "reply", str(message), "-o", str(answer), "--language", "en")
    user, reply = _check_reply(tmp_path, proc, answer, whisper, "en", QUESTION, 0.2)
    assert Path(user.data["audio_path"]).suffix == suffix
    heard_back = whisper.transcribe(_as_16k(answer), language="en").text
    assert wer(reply.data["spoken_text"], heard_back) <= 0.5, (reply.data["spoken_text"], heard_back)


def test_reply_understands_russian(tmp_path, festival_ru, whisper):
    message = festival_ru(RUSSIAN, "pogoda")
    answer = tmp_path / "answer.wav"
    proc = _epistemic(tmp_path, "reply", str(message), "-o", str(answer), "--language", "ru")
    _check_reply(tmp_path, proc, answer, whisper, "ru", RUSSIAN, 0.5)


def test_keep_audio_off_keeps_no_file(tmp_path, piper, whisper):
    message = _voice_message(piper, tmp_path / "message.wav")
    proc = _epistemic(tmp_path, "reply", str(message), "-o", str(tmp_path / "a.wav"), EPISTEMIC_LOG__KEEP_AUDIO="false")
    assert proc.returncode == 0, proc.stderr
    with DialogueLog(_data(tmp_path) / "dialogues.sqlite3") as log:
        [conversation] = log.list_conversations()
        user, _ = log.conversation_turns(conversation.id)
    assert user.data["audio_path"] is None and not (_data(tmp_path) / "audio").exists()


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10])
def test_reply_to_an_unreadable_file_is_one_line_and_non_zero(tmp_path, content):
    bad = tmp_path / "message.ogg"
    bad.write_bytes(content)
    proc = _epistemic(tmp_path, "reply", str(bad), "-o", str(tmp_path / "answer.wav"))
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and str(bad) in proc.stderr, proc.stderr
    assert not (tmp_path / "answer.wav").exists()


@pytest.mark.audio
def test_voice_with_a_missing_microphone_is_one_line_and_non_zero(tmp_path, make_config):
    config = make_config('[audio]\ninput_device = "no such microphone"\n')
    proc = _epistemic(tmp_path, "--config", str(config.file), "voice", "--seconds", "5")
    assert proc.returncode == 5
    assert len(proc.stderr.strip().splitlines()) == 1 and "no such microphone" in proc.stderr, proc.stderr


def test_voice_without_a_sound_server_is_one_line_and_non_zero(tmp_path):
    nowhere = tmp_path / "no-sound-server"
    nowhere.mkdir(mode=0o700)
    proc = _epistemic(tmp_path, "voice", "--seconds", "5", XDG_RUNTIME_DIR=str(nowhere))
    assert proc.returncode == 5
    assert len(proc.stderr.strip().splitlines()) == 1 and "device" in proc.stderr, proc.stderr


def _as_16k(path: Path) -> np.ndarray:
    from audio.pcm import resample

    audio, rate = soundfile.read(str(path), dtype="float32")
    return resample(audio, rate, 16000)
