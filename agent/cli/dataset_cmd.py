"""``epistemic dataset export``: turn the dialogue log into training datasets (see docs/datasets.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from agent.cli.usage import OneLineUsage, OneLineUsageGroup, OneOf
from agent.errors import UserError
from agent.harvest.export.options import (
    DEDUPE,
    FORMATS,
    INTERRUPTED,
    RATINGS,
    RETRIEVED,
    SOURCES,
    parse_when,
)

FILTER_OPTIONS = ("--since", "--until", "--persona", "--model", "--source", "--language", "--min-rating",
                  "--tag", "--interrupted", "--reasoning/--no-reasoning", "--min-chars", "--max-chars")


@click.group(cls=OneLineUsageGroup)
def dataset() -> None:
    """Export curated conversations as datasets for training (SFT, DPO, KTO, ShareGPT, Parquet, speech)."""




def _system_prompts(ctx: click.Context) -> Any:
    """persona name -> its system prompt, from the configured personas (None when unknown)."""
    from agent.personas import PersonaBook

    try:
        book = PersonaBook(ctx.obj["config"])
    except UserError:
        return None

    def lookup(name: str | None) -> str | None:
        try:
            return book.get(name).system_prompt if name else None
        except UserError:
            return None

    return lookup


@dataset.command("export", cls=OneLineUsage, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--format", "fmt", type=OneOf(FORMATS), required=True,
              help="sft, dpo, kto, sharegpt (+ dataset_info.json), parquet (sft rows, provenance columns) or speech (audiofolder WAVs).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder (must not exist unless --force).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False, path_type=Path), help="Dialogue log (default: the configured one).")
@click.option("--since", help="Replies at or after this date/time (ISO, e.g. 2026-11-01).")
@click.option("--until", help="Replies before this date/time (ISO).")
@click.option("--persona", multiple=True, help="Only replies of this persona (repeatable).")
@click.option("--model", multiple=True, help="Only replies of this model id (repeatable).")
@click.option("--source", type=OneOf(SOURCES), multiple=True, help="Only user turns that came this way (repeatable).")
@click.option("--language", multiple=True, help="Only user turns detected in this language, e.g. ru (repeatable).")
@click.option("--min-rating", type=OneOf(RATINGS), help="Lowest rating kept (default: unrated for sft-like formats, bad for dpo/kto).")
@click.option("--tag", multiple=True, help="Only conversations with one of these tags (repeatable).")
@click.option("--interrupted", type=OneOf(INTERRUPTED), default="drop", show_default=True,
              help="Barged-in replies: drop them, keep the part heard, or the full reply as generated.")
@click.option("--reasoning/--no-reasoning", default=True, show_default=True, help="Keep reasoning inside <think>…</think>, or drop it.")
@click.option("--min-chars", type=int, default=1, show_default=True, help="Shortest reply kept.")
@click.option("--max-chars", type=int, help="Longest reply kept.")
@click.option("--split", "split_text", default="0.9,0.05,0.05", show_default=True, help="train,validation,test fractions (by conversation).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--dedupe", type=OneOf(DEDUPE), default="exact", show_default=True, help="Duplicate removal: exact, near (MinHash LSH, also exact) or none.")
@click.option("--near-threshold", type=float, default=0.85, show_default=True, help="Jaccard similarity of near duplicates.")
@click.option("--retrieved-context", type=OneOf(RETRIEVED), default="include", show_default=True,
              help="The numbered sources a reply was given: kept in its system message exactly as sent, or left out.")
@click.option("--scrub-pii", is_flag=True, help="Replace e-mails, phone numbers and card numbers with placeholders.")
@click.option("--license", "license_", default="other", show_default=True, help="License field of the dataset card.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def export_cmd(ctx: click.Context, fmt: str, out: Path, log_path: Path | None, split_text: str,
               license_: str, quiet: bool, **values: Any) -> None:
    """Export the dialogue log as a dataset folder with a card (README.md) and manifest.json."""
    if ctx.args:
        raise UserError(f"unknown option {ctx.args[0]!r}; filters are {', '.join(FILTER_OPTIONS)}", exit_code=2)
    from agent.harvest.export.run import export
    from agent.harvest.export.split import parse_ratios

    try:
        ratios = parse_ratios(split_text)
    except ValueError as exc:
        raise UserError(str(exc), exit_code=2) from None
    options = _options(ctx, fmt, out, ratios, license_, values)
    path = log_path or ctx.obj["config"].log_path()
    report = export(options, path, system_prompts=_system_prompts(ctx), progress=None if quiet else _Progress())
    for file, rows in sorted(report.rows.items()):
        click.echo(f"{file}: {rows} rows")
    removed = ", ".join(f"{reason} {n}" for reason, n in report.removed.most_common())
    click.echo(f"{report.turns_read} turns read in {report.seconds:.1f}s; removed: {removed or 'nothing'}")
    click.echo(f"wrote {out}")


def _options(ctx: click.Context, fmt: str, out: Path, ratios: tuple[float, float, float], license_: str,
             v: dict[str, Any]) -> Any:
    from agent.harvest.export.options import ExportOptions, Filters

    filters = Filters(
        since=parse_when(v["since"], "--since"), until=parse_when(v["until"], "--until"), personas=v["persona"],
        models=v["model"], sources=v["source"], languages=v["language"], min_rating=v["min_rating"],
        tags=v["tag"], interrupted=v["interrupted"], reasoning=v["reasoning"], min_chars=v["min_chars"],
        max_chars=v["max_chars"],
    )
    data_dir = ctx.obj["config"].data_dir() if fmt == "speech" else None
    return ExportOptions(fmt, out, filters, seed=v["seed"], split=ratios, dedupe=v["dedupe"],
                         near_threshold=v["near_threshold"], scrub_pii=v["scrub_pii"], force=v["force"],
                         license=license_, data_dir=data_dir, retrieved_context=v["retrieved_context"])


class _Progress:
    """The export's progress on stderr: a bar with turns read and examples written."""

    def __init__(self) -> None:
        from agent.cli.progress import StderrProgress

        self.bar = StderrProgress()

    def __call__(self, p: Any) -> None:
        from agent.llm.base import LoadProgress

        fraction = p.turns / p.total if p.total else 1.0
        self.bar(LoadProgress(min(fraction, 1.0), f"{p.turns}/{p.total} turns, {p.examples} examples"))
