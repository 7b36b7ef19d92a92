"""``epistemic train sft|dpo|eval``: LoRA adapters from exported datasets, talked to as personas.

Every ``[train]`` key is also an option here (``--rank 16 --learning-rate 1e-4 ...``); what is not
given comes from the configuration. Training runs in this process with a progress line (loss,
tokens/s, ETA) and ``progress.json`` beside the adapter (``train status`` and the TUI read it);
Ctrl-C saves a checkpoint and ``--resume`` continues it.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.train.settings import TrainSettings

if TYPE_CHECKING:
    from agent.train.run import SftJob

HYPER = [name for name in TrainSettings.model_fields if name != "base"]


def _option_for(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A click option for one [train] key; None = take the config's value."""
    field = TrainSettings.model_fields[name]
    flag = name.replace("_", "-")
    annotation = field.annotation
    if annotation is bool:
        return click.option(f"--{flag}/--no-{flag}", name, default=None, help=field.description)
    if typing.get_origin(annotation) is typing.Literal:
        kind: Any = click.Choice(typing.get_args(annotation))
    elif annotation in (int, float):
        kind = annotation
    else:
        kind = str  # tuples: comma-separated
    return click.option(f"--{flag}", name, type=kind, default=None, help=f"{field.description} [config: train.{name}]")


def hyper_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``command`` with one option per [train] key."""
    for name in reversed(HYPER):
        command = _option_for(name)(command)
    return command


def effective_settings(config: Any, overrides: dict[str, Any]) -> TrainSettings:
    """[train] from the config with the command line's values on top (ConfigError naming the option)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(given.get("target_modules"), str):
        given["target_modules"] = tuple(m.strip() for m in given["target_modules"].split(",") if m.strip())
    return config.with_values("train", "command line", **given).settings.train


class ProgressLine:
    """Progress on stderr: one line rewritten in place on a terminal, else a line per step."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()

    def message(self, text: str) -> None:
        click.echo(f"{'' if not self._tty else chr(13)}{text}", err=True)

    def step(self, p: Any) -> None:
        done = int(20 * p.step / p.total)
        eta = f"{int(p.eta_seconds // 60)}:{int(p.eta_seconds % 60):02d}"
        line = (f"step {p.step}/{p.total} [{'#' * done:<20}] loss {p.loss:.4f}  lr {p.learning_rate:.2e}  "
                f"{p.tokens_per_second:.0f} tok/s  ETA {eta}")
        if self._tty:
            sys.stderr.write(f"\r{line}" + ("\n" if p.step == p.total else ""))
            sys.stderr.flush()
        else:
            click.echo(line, err=True)


def adapter_dir(config: Any, name: str) -> Path:
    """``models/adapters/NAME`` under the configured models folder."""
    from agent.models import models_dir

    if not name or "/" in name or name.startswith("."):
        raise click.BadParameter(f"{name!r}: give a plain name (letters, digits, - and _)", param_hint="--out")
    return models_dir(config) / "adapters" / name


def _base_path(config: Any, base: str | None, settings: TrainSettings) -> Path:
    from agent.models import resolve_model_path

    spec = base or settings.base
    return resolve_model_path(config, spec or None)


@click.group()
def train() -> None:
    """Train LoRA adapters on your exported datasets and evaluate them (needs the [train] extra)."""


def _common(command: Callable[..., Any]) -> Callable[..., Any]:
    for decorator in reversed([
        click.option("--dataset", "dataset", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Dataset folder from `epistemic dataset export` (train*.jsonl, validation*.jsonl)."),
        click.option("--out", "name", required=True, help="Adapter name: writes models/adapters/NAME and persona NAME."),
        click.option("--base", default=None, help="Base: a transformers folder, a .gguf or a model name [config: train.base, then llm.model]."),
        click.option("--resume", is_flag=True, help="Continue from the checkpoint a Ctrl-C saved."),
        click.option("--overwrite", is_flag=True, help="Replace an existing adapter of that name."),
    ]):
        command = decorator(command)
    return command


@train.command("sft")
@_common
@hyper_options
@click.pass_context
def sft_cmd(ctx: click.Context, dataset: Path, name: str, base: str | None, resume: bool, overwrite: bool, **hyper: Any) -> None:
    """Supervised fine-tuning on conversations (loss on the assistant's replies).

    Progress is also written to models/adapters/NAME/progress.json (`epistemic train status`).
    Ctrl-C saves a checkpoint and exits 130; the same command with --resume continues.
    """
    from agent.train.jobs import run_job
    from agent.train.run import run_sft

    _report(run_job(_job(ctx, dataset, name, base, resume, overwrite, hyper), "sft", run_sft, ProgressLine()))


@train.command("dpo")
@_common
@hyper_options
@click.pass_context
def dpo_cmd(ctx: click.Context, dataset: Path, name: str, base: str | None, resume: bool, overwrite: bool, **hyper: Any) -> None:
    """Preference training with TRL's DPOTrainer on {prompt, chosen, rejected} rows.

    Progress is also written to models/adapters/NAME/progress.json (`epistemic train status`).
    """
    from agent.train.dpo import run_dpo
    from agent.train.jobs import run_job

    _report(run_job(_job(ctx, dataset, name, base, resume, overwrite, hyper), "dpo", run_dpo, ProgressLine()))


def _job(ctx: click.Context, dataset: Path, name: str, base: str | None, resume: bool, overwrite: bool,
         hyper: dict[str, Any]) -> SftJob:
    """The training job the command line and ``[train]`` describe (SFT and DPO share it)."""
    from agent.train.run import SftJob

    config = ctx.obj["config"]
    settings = effective_settings(config, hyper)
    return SftJob(
        name=name, dataset=dataset, out_dir=adapter_dir(config, name), base=_base_path(config, base, settings),
        settings=settings, resume=resume, overwrite=overwrite, personas_dir=config.resolve(config.settings.chat.personas_dir),
    )


@train.command("eval")
@click.argument("name")
@click.option("--dataset", type=click.Path(file_okay=False, path_type=Path), default=None, help="Evaluate on this dataset instead of the one trained on.")
@click.pass_context
def eval_cmd(ctx: click.Context, name: str, dataset: Path | None) -> None:
    """Base vs adapter NAME on the validation split: loss, perplexity, entropy profile (card updated)."""
    from agent.train.reeval import reevaluate

    report = reevaluate(adapter_dir(ctx.obj["config"], name), dataset, ProgressLine())
    click.echo(report.table())


@train.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job (for scripts).")
@click.pass_context
def status_cmd(ctx: click.Context, as_json: bool) -> None:
    """Training jobs under models/adapters: state, step/total, loss, tokens/s, ETA (newest first)."""
    import json
    from dataclasses import asdict

    from agent.models import models_dir
    from agent.train.jobs import list_jobs

    folder = models_dir(ctx.obj["config"]) / "adapters"
    jobs = list_jobs(folder)
    if not jobs and not as_json:
        click.echo(f"no training jobs in {folder}")
    for job in jobs:
        click.echo(json.dumps({**asdict(job), "shown_state": job.shown_state()}) if as_json else job.summary())


def _report(outcome: Any) -> None:
    record = outcome.record
    click.echo(f"adapter: {outcome.out_dir}")
    click.echo(f"steps {record.steps}, final loss {record.final_loss:.4f}, best {record.best_loss:.4f}, "
               f"{record.seconds:.0f} s ({record.tokens_per_second:.0f} tokens/s)")
    if outcome.report is not None:
        click.echo(outcome.report.table())
    if outcome.persona is not None:
        click.echo(f"persona: {outcome.persona}; talk to it: epistemic chat --persona {record.name}")
