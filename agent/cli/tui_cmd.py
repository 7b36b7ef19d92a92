"""``epistemic tui`` (the default command): the Textual terminal UI."""

from __future__ import annotations

import click


@click.command()
@click.option("--persona", help="Persona to talk to (see `epistemic personas list`).")
@click.option("--voice", is_flag=True, help="Switch the microphone on at start (F7 toggles it in the UI).")
@click.pass_context
def tui(ctx: click.Context, persona: str | None, voice: bool) -> None:
    """Open the terminal UI: read the conversation, steer persona and sampler, inspect tokens."""
    config = ctx.obj["config"]
    if persona is not None:
        from agent.personas import PersonaBook

        PersonaBook(config).get(persona)  # unknown persona: one clear line before the UI opens
    from tui.app import make_app

    make_app(config, persona=persona, voice=voice).run()
