"""``epistemic devices | transcribe | say``: the audio building blocks from the command line."""

from __future__ import annotations

import dataclasses
import json
import sys

import click

from agent.errors import EXIT_AUDIO
from audio.errors import AudioError


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def devices(as_json: bool) -> None:
    """List audio input and output devices (use a name or index in [audio] input_device / output_device)."""
    from audio.devices import list_devices

    rows = list_devices()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(d) for d in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("# no audio devices found (no sound card or sound server); voice is off, typing works", err=True)
        return
    for d in rows:
        marks = ("in" if d.is_default_input else "") + (" out" if d.is_default_output else "")
        default = f"  (default {marks.strip()})" if marks else ""
        click.echo(f"{d.index:>3}  {d.name:<32} in {d.max_input_channels:>2}  out {d.max_output_channels:>2}  "
                   f"{d.default_samplerate:>7.0f} Hz  {d.hostapi}{default}")


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--language", type=click.Choice(["ru", "en", "auto"]), default=None, help="Spoken language (default: [stt] language).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, with confidence and timings.")
@click.pass_context
def transcribe(ctx: click.Context, files: tuple[str, ...], language: str | None, as_json: bool) -> None:
    """Print the transcript of each audio FILE (wav, flac, mp3, ogg/opus; any rate or channels)."""
    from audio.stt import WhisperStt

    config = ctx.obj["config"]
    settings = config.settings.stt
    stt = WhisperStt.load(settings, model=config.resolve_model(settings.model))
    failed = 0
    for name in files:
        try:
            result = stt.transcribe_file(name, language=language)
        except AudioError as exc:
            click.echo(f"epistemic: {exc}", err=True)
            failed += 1
            continue
        if as_json:
            click.echo(json.dumps({"file": name, **result.as_record()}, ensure_ascii=False))
        else:
            click.echo(f"{name}: {result.text}" if len(files) > 1 else result.text)
    if failed:
        sys.exit(EXIT_AUDIO)


@click.command()
@click.argument("text")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="WAV file to write.")
@click.option("--voice", type=click.Path(dir_okay=False), default=None, help="Piper voice .onnx (default: [tts] voice, else the starter English voice).")
@click.pass_context
def say(ctx: click.Context, text: str, output: str, voice: str | None) -> None:
    """Speak TEXT with Piper into a WAV file (numbers, dates and units spelled out; Markdown skipped)."""
    from audio.tts import PiperTts

    config = ctx.obj["config"]
    settings = config.settings.tts
    chosen = voice if voice is not None else config.resolve_model(settings.voice)
    tts = PiperTts.load(settings, voice=chosen or None)
    said = tts.speakable(text)
    if not said.spoken:
        raise AudioError("nothing to say: the text has no speakable words")
    try:
        tts.synthesize_to_wav(text, output)
    except OSError as exc:
        raise AudioError(f"{output}: cannot write ({exc.strerror or exc})") from None
    click.echo(f"wrote {output}: {said.spoken}", err=True)

