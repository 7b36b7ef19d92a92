"""``epistemic reply`` (answer a voice message with a spoken reply) and ``epistemic voice`` (talk to
the agent hands-free in the plain terminal)."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from agent.errors import EXIT_AUDIO, AudioFailure, UserError

LANGUAGES = click.Choice(["ru", "en", "auto"])


def _check_output(path: Path) -> None:
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a .wav file to write")
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: folder not found (for the answer file)")


def _keep_voice_file(config: Any, source: Path) -> str | None:
    """Copy the voice message into the data dir (when ``[log] keep_audio``); its relative path."""
    if not config.settings.log.keep_audio or not config.settings.log.enabled:
        return None
    from agent.private import copy_private, private_dir

    relative = Path("audio") / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}{source.suffix.lower()}"
    try:
        private_dir(config.data_dir())
        copy_private(source, config.data_dir() / relative)
    except OSError as exc:
        click.echo(f"epistemic: warning: could not keep the voice message: {exc.strerror or exc}", err=True)
        return None
    return relative.as_posix()


@click.command()
@click.argument("voice_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="WAV file for the spoken reply.")
@click.option("--persona", help="Persona that answers (its voice and language are used).")
@click.option("--language", type=LANGUAGES, default=None, help="Language of the voice message (default: [stt] language, else the persona's).")
@click.pass_context
def reply(ctx: click.Context, voice_file: str, output: str, persona: str | None, language: str | None) -> None:
    """Answer a voice message (wav, flac, mp3, ogg/opus) with a spoken reply in a WAV file.

    The exchange is logged like any other turn (source "file"); the message itself is kept
    under the data dir when [log] keep_audio is on.
    """
    from agent.cli.progress import StderrProgress
    from agent.runtime import build_runtime
    from agent.voice.setup import listen_language, load_stt, load_tts, recorder_for
    from agent.voice.speaker import Speaker
    from agent.voice.waterfall import WaterfallClock
    from agent.voice.wavout import WavCollector
    from audio.stt import load_audio_file

    config = ctx.obj["config"]
    out_path = Path(output)
    _check_output(out_path)
    audio = load_audio_file(voice_file)  # a bad file fails before any model loads
    runtime = build_runtime(config, persona=persona, progress=StderrProgress())
    try:
        engine = runtime.engine
        stt = load_stt(config)
        lang = listen_language(config, engine.persona, language)
        started = time.perf_counter()
        transcript = stt.transcribe_audio(audio, language=lang)
        if not transcript.text:
            raise AudioFailure(f"{voice_file}: no speech recognised in the voice message")
        click.echo(f"you> {transcript.text}", err=True)
        tts = load_tts(config, engine.persona)
        clock = WaterfallClock(started)
        clock.mark("transcript")
        clock.duration("stt", transcript.compute_s)
        collector = WavCollector(tts.sample_rate)
        spoken = Speaker(tts, collector).begin(clock)
        finished = engine.respond(
            transcript.text, on_event=_reply_events(clock, spoken), source="file",
            audio_path=_keep_voice_file(config, Path(voice_file)), stt=transcript.as_record() | {"file": str(voice_file)},
        )
        outcome = spoken.finish()
        if finished is None:
            raise UserError("the voice message could not be answered (see the notice above)")
        try:
            collector.write(out_path)
        except (OSError, RuntimeError) as exc:
            raise UserError(f"{out_path}: cannot write the answer: {exc}") from None
        recorder_for(runtime).store_reply(finished, outcome, clock.result())
        click.echo(finished.answer)
        click.echo(f"wrote {out_path} ({outcome.played_s:.1f} s): {outcome.spoken_text}", err=True)
    finally:
        runtime.close()


def _reply_events(clock: Any, spoken: Any) -> Any:
    """The engine's event sink for ``reply``: waterfall marks, answer text to the voice, notices out."""
    from agent.events import Notice
    from agent.voice.speaker import speech_events

    def notices(event: Any) -> None:
        if isinstance(event, Notice):
            click.echo(f"[{event.level}] {event.message}", err=True)

    return speech_events(clock, spoken, forward=notices)


@click.command()
@click.option("--persona", help="Persona to talk to (its voice and language are used).")
@click.option("--language", type=LANGUAGES, default=None, help="Language you speak (default: [stt] language, else the persona's).")
@click.option("--barge-in/--half-duplex", "barge_in", default=None, help="Let your speech interrupt the reply (headphones), or mute the mic while it speaks (default: [audio] barge_in).")
@click.option("--max-turns", type=int, default=None, help="Stop after this many answered turns.")
@click.option("--seconds", type=float, default=None, help="Stop after this many seconds.")
@click.pass_context
def voice(ctx: click.Context, persona: str | None, language: str | None, barge_in: bool | None,
          max_turns: int | None, seconds: float | None) -> None:
    """Talk to the agent hands-free: it listens, answers and speaks (Ctrl-C to stop).

    On a terminal, typed lines are answered too; if the microphone or speaker is lost, typing
    goes on.
    """
    from agent.cli.progress import StderrProgress
    from agent.runtime import build_runtime
    from agent.voice.console import VoicePrinter
    from agent.voice.setup import build_voice_loop, load_stt, load_tts
    from audio.devices import find_device

    config = ctx.obj["config"]
    audio = config.settings.audio
    if not sys.stdin.isatty():  # no typing to fall back to: fail before the models load
        find_device(audio.input_device, "input")
        find_device(audio.output_device, "output")
    if barge_in is not None:
        audio = audio.model_copy(update={"barge_in": barge_in, "turn_taking": "hands_free"})
    runtime = build_runtime(config, persona=persona, progress=StderrProgress())
    printer = VoicePrinter(color=sys.stdout.isatty())
    watch = _knowledge_watch(config)
    try:
        loop = build_voice_loop(runtime, stt=load_stt(config), tts=load_tts(config, runtime.engine.persona),
                                on_event=printer, language=language, audio=audio)
        started = loop.start()
        if not started and not sys.stdin.isatty():
            raise AudioFailure("voice needs an audio device; none could be opened")
        click.echo("listening... (Ctrl-C to stop)" if started else "typing only", err=True)
        try:
            _run(loop, runtime, printer, max_turns, seconds, typed=sys.stdin.isatty())
        except KeyboardInterrupt:
            click.echo("", err=True)
        finally:
            loop.stop()
        if loop.lost and not sys.stdin.isatty():
            sys.exit(EXIT_AUDIO)
    finally:
        if watch is not None:
            watch.stop()
        runtime.close()


def _knowledge_watch(config: Any) -> Any:
    """The ``[knowledge] watch`` folders followed in a background thread, one stderr line per change
    (None when none are configured)."""
    from agent.knowledge.watch import BackgroundWatch

    watch = BackgroundWatch(config, lambda level, line: click.echo(f"knowledge: {line}", err=True))
    return watch if watch.start() else None


def _run(loop: Any, runtime: Any, printer: Any, max_turns: int | None, seconds: float | None, typed: bool) -> None:
    """Wait for the end: a turn count, a time, a lost device (non-interactive) or end of input."""
    import threading

    deadline = None if seconds is None else time.monotonic() + seconds
    end_of_input = threading.Event()
    if typed:
        threading.Thread(target=_read_typed, args=(loop, runtime, printer, end_of_input), daemon=True).start()
    while deadline is None or time.monotonic() < deadline:
        if end_of_input.is_set() or (max_turns is not None and loop.turns_done >= max_turns):
            return
        if loop.wait(0.1) and not typed:
            return


def _read_typed(loop: Any, runtime: Any, printer: Any, end_of_input: Any) -> None:
    """Typed lines join the conversation; after the loop stopped they are answered in text only."""
    for line in sys.stdin:
        text = line.strip()
        if text in ("/quit", "/exit"):
            break
        if not text:
            continue
        if loop.running:
            loop.submit_text(text)
        else:
            runtime.engine.respond(text, on_event=printer, source="typed")
    end_of_input.set()
