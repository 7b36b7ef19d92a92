"""``epistemic tokenize TEXT``: how the loaded model splits text into tokens.

``epistemic tokenize --corpus``: the tokenizer lab: fertility of every tokenizer this machine has
on the user's own logged dialogues, per language, and the words split worst
(:mod:`agent.instruments.tokenizer_lab`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from agent.errors import UserError

_CORPUS_ONLY = ("log_path", "since", "until", "persona", "source", "language", "model", "min_count", "top")
_DEFAULTS: dict[str, Any] = {"min_count": 2, "top": 15}


@click.command()
@click.argument("text", required=False)
@click.option("--corpus", is_flag=True, help="Measure every tokenizer on the logged dialogues instead of TEXT.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), help="Dialogue log (default: the configured one).")
@click.option("--since", help="Turns at or after this date/time (ISO, e.g. 2026-11-01).")
@click.option("--until", help="Turns before this date/time (ISO).")
@click.option("--persona", multiple=True, help="Only turns of this persona (repeatable).")
@click.option("--source", multiple=True, help="Only voice | typed | file user turns and their replies (repeatable).")
@click.option("--role", default="both", show_default=True, help="user | assistant | both.")
@click.option("--language", multiple=True, help="Only turns in this language: ru, en, other, or what STT detected (repeatable).")
@click.option("--model", multiple=True, help="Only this tokenizer: a name from the table, a .gguf file or a tokenizer folder (repeatable).")
@click.option("--min-count", type=click.IntRange(min=1), default=2, show_default=True, help="Worst-split words: seen at least this often.")
@click.option("--top", type=click.IntRange(min=0), default=15, show_default=True, help="Worst-split words listed per language.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def tokenize(ctx: click.Context, text: str | None, corpus: bool, as_json: bool, quiet: bool, **values: Any) -> None:
    """Show how the configured model splits TEXT, e.g. «бессознательное», or with --corpus compare
    every tokenizer on the logged dialogues.

    TEXT: each token's id and piece; a piece that is only part of a UTF-8 character (common in
    Russian for small vocabularies) is shown as its bytes, e.g. <0xD0>.

    --corpus: for each language (ru / en by script, or what speech-to-text detected) and every
    tokenizer found (the starter GGUF, .gguf files and tokenizer.json folders in the models dir),
    tokens per word and characters per token side by side, then the words split into the most
    tokens with their pieces. Only vocabularies are loaded, never weights. Filters: --since,
    --until, --persona, --source, --role, --language. A tokenizer that cannot be read is reported
    and skipped (exit code 3 after the others are measured).
    """
    if corpus == (text is not None):
        raise UserError("give either TEXT or --corpus (exactly one of them)", exit_code=2)
    if not corpus:
        used = [name for name in _CORPUS_ONLY if values[name] not in (None, (), _DEFAULTS.get(name))]
        if used or values["role"] != "both":
            option = "--" + (used[0] if used else "role").replace("_", "-").replace("log-path", "log")
            raise UserError(f"{option} is a --corpus option", exit_code=2)
        _show_text(ctx, text or "", as_json)
        return
    _corpus(ctx, as_json, quiet, values)


def _show_text(ctx: click.Context, text: str, as_json: bool) -> None:
    from agent.llm import load_backend

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


def _corpus(ctx: click.Context, as_json: bool, quiet: bool, v: dict[str, Any]) -> None:
    from agent.instruments.tokenizer_corpus import make_filters
    from agent.instruments.tokenizer_lab import measure
    from agent.instruments.tokenizer_models import find_tokenizers, select_tokenizers
    from agent.instruments.tokenizer_table import as_dict, table_lines

    filters = make_filters(since=v["since"], until=v["until"], personas=v["persona"], sources=v["source"],
                           role=v["role"], languages=v["language"])
    config = ctx.obj["config"]
    sources = select_tokenizers(find_tokenizers(config), v["model"])
    if not sources:
        raise UserError("no tokenizer found: install the starter model or put a .gguf file or a folder with "
                        "tokenizer.json in the models dir (see `epistemic models list`)", exit_code=3)
    path = v["log_path"] or config.log_path()
    report = measure(path, sources, filters, min_count=v["min_count"], top=v["top"],
                     progress=None if quiet or as_json else _Progress())
    if as_json:
        click.echo(json.dumps(as_dict(report), ensure_ascii=False, indent=2))
    else:
        for line in table_lines(report):
            click.echo(line)
    for name, why in report.skipped:
        click.echo(f"skipped {name}: {why}", err=True)
    if report.skipped:
        ctx.exit(3)


class _Progress:
    """The lab's progress on stderr: a bar with turns read of turns selected (called on the command's thread)."""

    def __init__(self) -> None:
        from agent.cli.progress import StderrProgress

        self.bar = StderrProgress()

    def __call__(self, done: int, total: int) -> None:
        from agent.llm.base import LoadProgress

        self.bar(LoadProgress(min(done / total, 1.0) if total else 1.0, f"{done}/{total} turns"))
