"""Voice in the TUI, driven with the pilot: the real engine and starter model, and for the spoken
turn the real Whisper and Piper models and a PulseAudio null sink (the mic hears "vsink", the
agent speaks into "vout")."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.runtime import build_runtime
from tests.audio.conftest import _pulse_for_audio_tests, piper, pulse_server, whisper  # noqa: F401
from tests.tui.conftest import SIZE, send, wait_idle, wait_until
from tests.voice.conftest import headphones, play_to_mic, reply_sink  # noqa: F401
from tui.app import make_app
from tui.widgets.transcript import AssistantMessage, UserMessage
from tui.widgets.voice_messages import SpokenMessage
from tui.widgets.voice_strip import VoiceStrip

QUESTION = "What is the capital of France?"
WARM_UP_S = 2.5  # PortAudio's pulse plugin starts pulling output ~2 s after the stream opens


def _utterance(voice, text: str) -> np.ndarray:
    pcm, _ = voice.synthesize_all(text)
    silence = np.zeros(int(0.3 * voice.sample_rate), dtype=np.float32)
    return np.concatenate([silence, pcm, silence])


def _record_notices(app) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    notify = app.notify

    def record(message, *args, **kwargs):
        seen.append((kwargs.get("severity", "information"), str(message)))
        notify(message, *args, **kwargs)

    app.notify = record
    return seen


@pytest.mark.audio
async def test_no_audio_device_notifies_and_typing_goes_on(make_config, starter_model, pulse_server):  # noqa: F811
    config = make_config('[sampler]\nseed = 7\nmax_tokens = 8\n[audio]\ninput_device = "no-such-microphone"\n')
    runtime = build_runtime(config, model=starter_model)
    app = make_app(config, runtime=runtime)
    seen = _record_notices(app)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f7")
            await wait_until(pilot, lambda: not app.voice.loading, 30)
            assert app.voice.loop is None and app.voice.models is None  # no device: no model was loaded
            errors = [m for s, m in seen if s == "error"]
            assert errors and "no-such-microphone" in errors[0] and "Typing still works" in errors[0]
            assert not app.voice_strip.has_class("-active")

            await send(pilot, app, "Hello there.")
            await wait_idle(pilot, app)
            [user] = app.conversation.query(UserMessage)
            assert not isinstance(user, SpokenMessage) and user.text == "Hello there."
            assert app.conversation.query_one(AssistantMessage).turn_id is not None
    finally:
        runtime.log.close()


@pytest.mark.audio
async def test_a_spoken_turn_and_a_typed_one_mix_in_the_transcript(  # noqa: F811
        make_config, starter_model, whisper, piper, play_to_mic, headphones, monkeypatch):  # noqa: F811
    config = make_config('[sampler]\ntemperature = 0.0\nmax_tokens = 16\n[stt]\nlanguage = "en"\n')
    runtime = build_runtime(config, model=starter_model)
    app = make_app(config, runtime=runtime, voice=True)  # as `epistemic tui --voice`
    app.voice.models = (whisper, piper)  # the session's models: no second load
    seen = _record_notices(app)
    lines: list[tuple[str, bool]] = []
    original = VoiceStrip.set_partial

    def spy(self, text, *, final=False):
        lines.append((text, final))
        original(self, text, final=final)

    monkeypatch.setattr(VoiceStrip, "set_partial", spy)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.voice.active, 60)
            strip = app.voice_strip
            assert strip.has_class("-active") and "hands-free · half-duplex" in str(strip.render())
            await pilot.pause(WARM_UP_S)

            play_to_mic(_utterance(piper, QUESTION), piper.sample_rate, wait=False)
            await wait_until(pilot, lambda: "last turn" in strip.waterfall, 180)
            await pilot.pause(0.2)

            [said] = app.conversation.query(SpokenMessage)
            assert "capital" in said.text.lower() and "france" in said.text.lower(), said.text
            assert (said.text, True) in lines  # the strip showed the final transcript
            reply = app.conversation.query_one(AssistantMessage)
            user, answer = runtime.log.conversation_turns(runtime.log.list_conversations()[0].id)
            assert user.text == said.text and user.data["source"] == "voice"
            assert (runtime.config.data_dir() / user.data["audio_path"]).stat().st_size > 16000
            assert reply.turn_id == answer.id and reply.answer == answer.text
            assert "→ audio" in strip.waterfall and "audio -" not in strip.waterfall

            await send(pilot, app, "And of Italy?")  # typed while voice is on: goes through the loop
            await wait_until(pilot, lambda: len(app.conversation.query(AssistantMessage)) == 2
                             and app.conversation.query(AssistantMessage).last().turn_id is not None, 120)
            turns = runtime.log.conversation_turns(runtime.log.list_conversations()[0].id)
            assert [(t.role, t.data.get("source")) for t in turns[::2]] == [("user", "voice"), ("user", "typed")]
            await wait_until(pilot, lambda: strip.speaking, 60)  # the typed turn's reply is spoken too
            await pilot.press("escape")  # Esc stops the speech
            await wait_until(pilot, lambda: not strip.speaking, 2)
            assert not any("Nothing to stop" in m for _, m in seen)

            def typed_reply_voice() -> dict:
                last = runtime.log.conversation_turns(runtime.log.list_conversations()[0].id)[-1]
                return last.data.get("extra", {}).get("voice", {})

            await wait_until(pilot, lambda: bool(typed_reply_voice()), 10)
            assert typed_reply_voice()["interrupted"]  # logged as cut off, with what was heard

            await pilot.press("f9")  # push-to-talk
            assert app.voice.loop.listener.push_to_talk and "push-to-talk" in str(strip.render())
            await pilot.press("f8")
            await wait_until(pilot, lambda: strip.vad_state == "speech", 10)
            await pilot.press("f8")
            await wait_until(pilot, lambda: strip.vad_state == "push_to_talk", 10)
            await pilot.press("f10")
            assert app.voice.loop.barge_in_enabled and "barge-in" in str(strip.render())

            await pilot.press("f7")
            assert app.voice.loop is None and not strip.has_class("-active")
            started = time.monotonic()
            await wait_until(pilot, lambda: strip.vad_state == "off", 15)
            assert time.monotonic() - started < 15
    finally:
        await app.voice.shutdown()
        runtime.log.close()


def test_voice_strip_and_a_spoken_turn(snap_compare, app):
    from agent.voice.events import UserUtterance
    from agent.voice.waterfall import Waterfall
    from tests.tui.conftest import steady_cursors
    from tui.bridge import Stamped

    async def show_voice(pilot):
        app.conversation.apply([Stamped(0.0, UserUtterance("What is the capital of France?", None))])
        strip = app.voice_strip
        strip.set_mode(push_to_talk=False, barge_in=True)
        strip.set_level(0.6)
        strip.set_vad_state("speech")
        strip.set_partial("and of Italy")
        strip.set_speaking(True)
        strip.set_waterfall(Waterfall(0.7, 0.42, 0.91, 1.3, 1.62, 0.4, 0.0, 0.8, 0.3))
        strip.activate()
        steady_cursors(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 24), run_before=show_voice)


HUNG_S = 3.0


@pytest.mark.audio
async def test_esc_never_waits_for_the_sound_device(make_config, starter_model, whisper, piper, headphones):  # noqa: F811
    config = make_config('[sampler]\ntemperature = 0.0\nmax_tokens = 60\n[stt]\nlanguage = "en"\n')
    runtime = build_runtime(config, model=starter_model)
    app = make_app(config, runtime=runtime, voice=True)
    app.voice.models = (whisper, piper)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.voice.active, 60)
            player = app.voice.loop.player
            real_stop = player.stop

            def hung_stop():  # PortAudio's abort when the sound server has gone away
                time.sleep(HUNG_S)
                return real_stop()

            player.stop = hung_stop
            await send(pilot, app, "Tell me a story about a dragon.")
            await wait_until(pilot, lambda: app.voice_strip.speaking, 120)
            started = time.monotonic()
            await pilot.press("escape")
            await pilot.pause()
            assert time.monotonic() - started < HUNG_S / 3  # the UI went on drawing
            await wait_until(pilot, lambda: not app.voice_strip.speaking, HUNG_S + 10)
    finally:
        await app.voice.shutdown()
        runtime.log.close()
