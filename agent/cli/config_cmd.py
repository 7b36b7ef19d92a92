"""``epistemic config check|show``: validate the configuration and show where values come from."""

from __future__ import annotations

import json

import click

from agent.config_load import effective_values
from agent.personas import PersonaBook


@click.group()
def config() -> None:
    """Check and show the effective configuration."""


@config.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the config file, environment overrides and personas (exit 2 on a problem)."""
    loaded = ctx.obj["config"]
    book = PersonaBook(loaded)
    where = str(loaded.file) if loaded.file else "built-in defaults (no config file found)"
    click.echo(f"OK: {where}; {len(book.names())} personas; log at {loaded.log_path()}")


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--section", help="Only this section (e.g. sampler).")
@click.pass_context
def show(ctx: click.Context, as_json: bool, section: str | None) -> None:
    """Print every effective value and where it came from (default, file, env)."""
    loaded = ctx.obj["config"]
    rows = [r for r in effective_values(loaded) if section is None or r[0].split(".")[0] == section]
    if as_json:
        click.echo(json.dumps([{"key": k, "value": v, "source": s} for k, v, s in rows], ensure_ascii=False, indent=2))
        return
    click.echo(f"# config file: {loaded.file or 'none (built-in defaults)'}")
    width = max((len(k) for k, _, _ in rows), default=10)
    for key, value, source in rows:
        click.echo(f"{key:<{width}} = {json.dumps(value, ensure_ascii=False):<30} # {source}")
