"""``epistemic chat``: a plain-terminal chat that streams tokens (and ``--once`` for scripts)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

import click

from agent.cli.events_out import JsonPrinter, TextPrinter
from agent.cli.progress import StderrProgress
from agent.config_load import parse_literal
from agent.errors import UserError
from agent.runtime import Runtime, build_runtime

HELP = """Commands: /persona NAME  /personas  /set KEY=VALUE  /sampler  /reset  /regen  /new  /help  /quit
Ctrl-C stops a reply (the partial reply is logged as interrupted); Ctrl-D or /quit leaves."""


@contextlib.contextmanager
def _cancel_on_sigint() -> Iterator[threading.Event]:
    """While active, Ctrl-C sets the yielded event instead of raising KeyboardInterrupt."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


def _command(runtime: Runtime, line: str, sink) -> bool:
    """Handle a /command; return False to quit."""
    name, _, arg = line[1:].partition(" ")
    engine = runtime.engine
    if name in ("quit", "exit", "q"):
        return False
    if name == "help":
        click.echo(HELP)
    elif name == "personas":
        for p in runtime.personas.all():
            click.echo(f"{'*' if p.name == engine.persona.name else ' '} {p.name:<14} {p.description}")
    elif name == "persona":
        click.echo(f"persona: {engine.set_persona(arg.strip()).name}")
    elif name == "set":
        key, _, value = arg.partition("=")
        engine.set_sampler(**{key.strip(): parse_literal(value)})
        click.echo(f"{key.strip()} = {getattr(engine.sampler, key.strip())} (from the next turn)")
    elif name == "sampler":
        for key, value in engine.sampler.model_dump().items():
            click.echo(f"  {key} = {value}")
    elif name == "reset":
        engine.reset_sampler()
        click.echo("sampler reset to the persona's values")
    elif name == "new":
        engine.new_conversation()
        click.echo("new conversation")
    elif name == "regen":
        with _cancel_on_sigint() as cancel:
            engine.regenerate(on_event=sink, cancel=cancel)
    else:
        click.echo(f"unknown command /{name}; /help lists them")
    return True


def _interactive(runtime: Runtime, sink, prompt: str) -> None:
    engine = runtime.engine
    click.echo(f"{runtime.model.info.model_id} via {runtime.model.info.backend} - persona {engine.persona.name}. /help for commands.", err=True)
    while True:
        try:
            line = input(prompt).strip()
        except EOFError:
            click.echo("", err=True)
            return
        except KeyboardInterrupt:
            click.echo("", err=True)
            return
        if not line:
            continue
        if line.startswith("/"):
            try:
                if not _command(runtime, line, sink):
                    return
            except UserError as exc:
                click.secho(f"[error] {exc}", err=True, fg="red")
            continue
        try:
            with _cancel_on_sigint() as cancel:
                engine.respond(line, on_event=sink, cancel=cancel)
        except UserError as exc:  # a failed reply is logged; the conversation goes on
            click.secho(f"[error] {exc}", err=True, fg="red")


@click.command()
@click.option("--once", "once", metavar="TEXT", help="Send one message, print the reply, exit.")
@click.option("--persona", help="Persona to talk to (see `epistemic personas list`).")
@click.option("--conversation", type=int, help="Continue this logged conversation (see `epistemic log list`).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable events, one JSON object per line.")
@click.option("--show-reasoning/--hide-reasoning", default=None, help="Show <think> reasoning (default: shown on a terminal).")
@click.pass_context
def chat(ctx: click.Context, once: str | None, persona: str | None, conversation: int | None, as_json: bool, show_reasoning: bool | None) -> None:
    """Chat with the model in the plain terminal, tokens streaming as they come."""
    config = ctx.obj["config"]
    tty = sys.stdout.isatty()
    runtime = build_runtime(config, persona=persona, progress=StderrProgress(quiet=as_json))
    sink = JsonPrinter() if as_json else TextPrinter(show_reasoning if show_reasoning is not None else tty, color=tty)
    try:
        if conversation is not None:
            runtime.engine.open_conversation(conversation)
        if once is not None:
            with _cancel_on_sigint() as cancel:
                finished = runtime.engine.respond(once, on_event=sink, cancel=cancel)
            if finished is None:
                ctx.exit(1)
            if finished.interrupted:
                ctx.exit(130)
            return
        _interactive(runtime, sink, "you> " if sys.stdin.isatty() and not as_json else "")
    finally:
        runtime.close()
