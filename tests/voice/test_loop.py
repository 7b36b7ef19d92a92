"""The whole voice loop through PulseAudio: a Piper utterance is played into the null sink, the
loop hears it on the monitor, transcribes it, answers with the starter model and speaks into a
second sink that the test records."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.events import Notice
from agent.voice.events import (
    BargedIn,
    SpeakingChanged,
    UserUtterance,
    VadStateChanged,
    WaterfallReady,
)
from agent.voice.setup import build_voice_loop
from tests.audio.wer import wer
from tests.voice.held_turn import HeldTurn

pytestmark = pytest.mark.audio

QUESTION = "What is the capital of France?"
WARM_UP_S = 2.5  # PortAudio's pulse plugin starts pulling output ~2 s after the stream opens


def _utterance(piper, text: str) -> np.ndarray:
    pcm, _ = piper.synthesize_all(text)
    silence = np.zeros(int(0.3 * piper.sample_rate), dtype=np.float32)
    return np.concatenate([silence, pcm, silence])


@pytest.fixture
def started_loop(voice_runtime, whisper, piper, events):
    loops = []

    def start(config):
        runtime = voice_runtime(config)
        loop = build_voice_loop(runtime, stt=whisper, tts=piper, on_event=events)
        assert loop.start(), events.of(Notice)
        loops.append(loop)
        time.sleep(WARM_UP_S)
        return runtime, loop

    yield start
    for loop in loops:
        loop.stop()


def test_a_spoken_question_is_heard_answered_spoken_and_logged(started_loop, voice_config, piper, whisper,
                                                                  play_to_mic, record_sink, headphones, events):
    runtime, loop = started_loop(voice_config())
    recording = record_sink(headphones)
    play_to_mic(_utterance(piper, QUESTION), piper.sample_rate)
    [ready] = events.wait_for(WaterfallReady)
    reply_audio = recording()

    [said] = events.of(UserUtterance)
    assert wer(QUESTION, said.text) <= 0.2, said.text
    assert [e.speaking for e in events.of(SpeakingChanged)] == [True, False]
    assert VadStateChanged("speech") in events.of(VadStateChanged)

    log = runtime.log
    [conversation] = log.list_conversations()
    user, answer = log.conversation_turns(conversation.id)
    assert user.text == said.text and user.data["source"] == "voice"
    audio_file = runtime.config.data_dir() / user.data["audio_path"]
    import soundfile

    kept, rate = soundfile.read(audio_file, dtype="float32")
    assert rate == 16000 and 1.5 < len(kept) / rate < 6
    assert wer(QUESTION, whisper.transcribe(kept, language="en").text) <= 0.2
    assert 0 < user.data["stt"]["confidence"] <= 1 and user.data["stt"]["language"] == "en"

    waterfall = answer.data["extra"]["waterfall"]
    assert ready.turn_id == answer.id
    marks = [waterfall[k] for k in ("transcript_s", "first_token_s", "first_sentence_s", "first_audio_s")]
    assert all(m is not None for m in marks) and marks == sorted(marks), waterfall
    assert waterfall["stt_compute_s"] > 0 and waterfall["tts_compute_s"] > 0
    spoken = answer.data["spoken_text"]
    assert spoken and answer.data["heard_text"] == answer.text and not answer.interrupted

    loud = np.abs(reply_audio) > 0.02
    assert loud.sum() / 16000 > 0.3, "no reply audio reached the speaker sink"
    heard_back = whisper.transcribe(reply_audio, language="en").text
    assert wer(spoken, heard_back) <= 0.5, (spoken, heard_back)


def test_barge_in_stops_the_reply_and_logs_what_was_heard(started_loop, voice_config, piper, play_to_mic,
                                                          headphones, events):
    config = voice_config("[audio]\nbarge_in = true\n", max_tokens=200)
    runtime, loop = started_loop(config)
    play_to_mic(_utterance(piper, "Tell me a long story about a dragon and a knight."), piper.sample_rate)
    events.wait_for(SpeakingChanged, timeout=120)
    time.sleep(1.5)
    interrupted_at = play_to_mic(_utterance(piper, "Stop. What is two plus two?"), piper.sample_rate, wait=False)
    [barged] = events.wait_for(BargedIn, timeout=30)
    assert loop.last_barge_in_s is not None and loop.last_barge_in_s <= 0.25, loop.last_barge_in_s
    assert events.time_of(BargedIn) - interrupted_at < 1.5
    events.wait_for(WaterfallReady, count=2, timeout=120)

    log = runtime.log
    [conversation] = log.list_conversations()
    turns = log.conversation_turns(conversation.id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    first = turns[1]
    assert first.data["extra"]["voice"]["interrupted"]  # generation may have ended before playback did
    heard = first.data["heard_text"]
    assert heard == barged.heard_text and heard and len(heard) < len(first.text)
    assert first.text.startswith(heard.split()[0])
    assert wer("Stop. What is two plus two?", turns[2].text) <= 0.4, turns[2].text  # numbers spelled out: Whisper may write 2+2


def test_half_duplex_does_not_hear_its_own_voice(started_loop, voice_config, piper, play_to_mic, events):
    runtime, loop = started_loop(voice_config())  # the reply goes to the sink the mic listens to
    play_to_mic(_utterance(piper, QUESTION), piper.sample_rate)
    events.wait_for(WaterfallReady)
    time.sleep(2.0)
    assert len(events.of(UserUtterance)) == 1
    [conversation] = runtime.log.list_conversations()
    assert len(runtime.log.conversation_turns(conversation.id)) == 2


def test_no_input_device_is_a_notice_not_a_crash(voice_runtime, voice_config, whisper, piper, events, pulse_server):
    from audio.settings import AudioSettings

    runtime = voice_runtime(voice_config())
    loop = build_voice_loop(runtime, stt=whisper, tts=piper, on_event=events,
                            audio=AudioSettings(input_device="no such microphone"))
    assert loop.start() is False
    [notice] = events.of(Notice)
    assert notice.level == "error" and "no such microphone" in notice.message and "Typing" in notice.message
    assert not loop.running
    assert runtime.engine.respond("Hello") is not None  # typing goes on


def test_a_vanished_device_stops_the_loop_cleanly(voice_runtime, voice_config, whisper, piper, events,
                                                  tmp_path, monkeypatch, pulse_server):
    from agent.voice.events import DeviceLost
    from tests.audio.conftest import _reinit_portaudio, start_pulse, stop_pulse

    doomed = str(tmp_path / "doomed-pulse")
    start_pulse(doomed)
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", doomed)
        _reinit_portaudio()
        runtime = voice_runtime(voice_config())
        loop = build_voice_loop(runtime, stt=whisper, tts=piper, on_event=events)
        assert loop.start()
        time.sleep(1.0)
    finally:
        stop_pulse(doomed)
    [lost] = events.wait_for(DeviceLost, timeout=15)
    assert loop.wait(5) and not loop.running
    assert any("typing still works" in n.message for n in events.of(Notice))
    loop.stop()
    monkeypatch.setenv("XDG_RUNTIME_DIR", pulse_server)
    _reinit_portaudio()
    assert lost.kind in ("input", "output")


def test_push_to_talk_listens_only_while_the_key_is_down(started_loop, voice_config, piper, play_to_mic,
                                                         headphones, events):
    runtime, loop = started_loop(voice_config('[audio]\nturn_taking = "push_to_talk"\n'))
    play_to_mic(_utterance(piper, "This sentence is said before the key is pressed."), piper.sample_rate)
    time.sleep(1.0)
    assert not events.of(UserUtterance) and VadStateChanged("speech") not in events.of(VadStateChanged)
    loop.start_listening()
    play_to_mic(_utterance(piper, QUESTION), piper.sample_rate)
    loop.stop_listening()
    [said] = events.wait_for(UserUtterance)
    assert wer(QUESTION, said.text) <= 0.2, said.text
    [ready] = events.wait_for(WaterfallReady)
    assert ready.waterfall.end_silence_s == 0 and ready.waterfall.first_audio_s is not None


def _warnings(events) -> list[str]:
    return [n.message for n in events.of(Notice) if n.level != "info"]


def test_a_turn_waits_for_a_typed_job_and_is_answered_after_it(started_loop, voice_config, events):
    runtime, loop = started_loop(voice_config(max_tokens=8))
    typed = HeldTurn(runtime.engine, "Name a colour.", source="typed").start()
    loop.submit_text("Name a fruit.")  # answered by the turn worker, as a spoken turn is
    time.sleep(1.5)
    assert not events.of(WaterfallReady)  # waiting for the gate, not answering beside the typed reply
    typed.end()
    events.wait_for(WaterfallReady, timeout=60)
    assert not _warnings(events), _warnings(events)
    [conversation] = runtime.log.list_conversations()
    turns = runtime.log.conversation_turns(conversation.id)
    assert [t.role for t in turns] == ["user", "assistant", "user", "assistant"]
    assert [turns[0].text, turns[2].text] == ["Name a colour.", "Name a fruit."]


def test_a_turn_that_cannot_get_the_gate_in_time_says_so_and_the_loop_goes_on(started_loop, voice_config, events):
    runtime, loop = started_loop(voice_config(max_tokens=8))
    loop.turn_wait_s = 1.0
    typed = HeldTurn(runtime.engine, "Name a colour.", source="typed").start()
    loop.submit_text("Name a fruit.")
    deadline = time.monotonic() + 20
    while not _warnings(events) and time.monotonic() < deadline:
        time.sleep(0.05)
    [warning] = _warnings(events)
    assert "Not answered" in warning and "running" in warning, warning
    typed.end()
    [conversation] = runtime.log.list_conversations()
    assert [t.text for t in runtime.log.conversation_turns(conversation.id) if t.role == "user"] == ["Name a colour."]
    loop.submit_text("Name a fruit.")
    events.wait_for(WaterfallReady, timeout=60)
    assert [t.role for t in runtime.log.conversation_turns(conversation.id)] == ["user", "assistant"] * 2
