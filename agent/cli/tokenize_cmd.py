"""``epistemic tokenize TEXT``: how the loaded model splits text into tokens."""

from __future__ import annotations

import json

import click

from agent.llm import load_backend


@click.command()
@click.argument("text")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def tokenize(ctx: click.Context, text: str, as_json: bool) -> None:
    """Show how the configured model splits TEXT, e.g. «бессознательное».

    Each token's id and piece; a piece that is only part of a UTF-8 character (common in Russian
    for small vocabularies) is shown as its bytes, e.g. <0xD0>.
    """
    model = load_backend(ctx.obj["config"])
    try:
        pieces = model.tokenize_pieces(text)
    finally:
        model.close()
    if as_json:
        click.echo(json.dumps([{"id": i, "piece": p} for i, p in pieces], ensure_ascii=False))
        return
    click.echo(f"{len(pieces)} tokens ({model.info.model_id}): " + " | ".join(p for _, p in pieces))
    for token_id, piece in pieces:
        click.echo(f"{token_id:>8}  {piece!r}")
