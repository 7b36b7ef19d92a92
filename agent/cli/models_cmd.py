"""``epistemic models list|pull``: what models this machine has, and downloading more."""

from __future__ import annotations

import json

import click

from agent.models import ModelEntry, list_models, models_dir, pull_model


def _human(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _as_dict(row: ModelEntry) -> dict:
    return {
        "name": row.name, "kind": row.kind, "source": row.source,
        "path": str(row.path) if row.path else None, "size_bytes": row.size_bytes, "status": row.status,
    }


@click.group()
def models() -> None:
    """List the models this machine has, or download one."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Starter models (from Python packages) and the .gguf files / model folders in the models dir."""
    config = ctx.obj["config"]
    rows = list_models(config)
    if as_json:
        click.echo(json.dumps([_as_dict(r) for r in rows], ensure_ascii=False, indent=2))
        return
    click.echo(f"# models dir: {models_dir(config)}")
    width = max((len(r.name) for r in rows), default=10)
    for row in rows:
        where = row.status if row.status and row.status != "installed" else str(row.path)
        click.echo(f"{row.name:<{width}}  {row.kind:<6} {row.source:<10} {_human(row.size_bytes):>9}  {where}")
    if not any(r.source == "models dir" for r in rows):
        click.echo("# no models of your own yet: `epistemic models pull OWNER/NAME --file MODEL.gguf`")


@models.command("pull")
@click.argument("repo")
@click.option("--file", "filename", help="Download only this file of the repository (e.g. a .gguf).")
@click.pass_context
def pull_cmd(ctx: click.Context, repo: str, filename: str | None) -> None:
    """Download REPO (OWNER/NAME), or one --file of it, into the models dir."""
    path = pull_model(ctx.obj["config"], repo, filename)
    click.echo(f"downloaded: {path}")
    if path.suffix == ".gguf":
        click.echo(f"use it with: [llm] model = \"{path}\"")
