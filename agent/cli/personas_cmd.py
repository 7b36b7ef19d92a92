"""``epistemic personas``: the personas available under the current configuration."""

from __future__ import annotations

import json

import click

from agent.personas import PersonaBook


@click.group()
def personas() -> None:
    """Personas: system prompt, language, sampler overrides, LoRA adapters, voice."""


@personas.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_personas(ctx: click.Context, as_json: bool) -> None:
    """List personas (built-in, personas/ folder, [personas.NAME] in config)."""
    config = ctx.obj["config"]
    book = PersonaBook(config)
    base = config.settings.sampler
    if as_json:
        rows = [{"name": p.name, "description": p.description, "language": p.language, "source": p.source,
                 "sampler": p.sampler(base).changed_from_default(), "adapters": [a.model_dump() for a in p.settings.adapters]}
                for p in book.all()]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for p in book.all():
        mark = "*" if p.name == book.default_name else " "
        sampler = p.sampler(base)
        adapters = f" lora={','.join(a.path for a in p.settings.adapters)}" if p.settings.adapters else ""
        click.echo(f"{mark} {p.name:<14} [{p.language}] T={sampler.temperature} max={sampler.max_tokens}{adapters}  {p.description}  ({p.source})")
