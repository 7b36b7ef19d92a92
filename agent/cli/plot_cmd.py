"""``epistemic log plot ID [ID2] -o chart.png``: a reply's entropy curves as a picture (the
optional ``plot`` extra, matplotlib), for people who would rather look than read."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from agent.cli.extras import missing_extra
from agent.errors import LogError, UserError
from agent.instruments.chart import ChartRequest, draw, save
from agent.instruments.compare import Anchor
from agent.instruments.curves import load_curves
from agent.log import DialogueLog
from agent.private import is_writable

MIN_SIZE, MAX_SIZE = 200, 10_000


def _output(turn_id: int, other_id: int | None, output: Path | None) -> Path:
    """The PNG to write: ``--output``, or ``entropy-ID[-ID2].png`` here; refused before any drawing
    when its folder does not exist or cannot be written."""
    path = output or Path(f"entropy-{turn_id}" + (f"-{other_id}" if other_id is not None else "") + ".png")
    folder = path.parent
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a file name for the chart")
    if path.suffix.lower() != ".png":
        raise UserError(f"{path}: the chart is a PNG image; name it .png")
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder for the chart")
    if not is_writable(folder) or (path.exists() and not is_writable(path)):
        raise UserError(f"{path}: cannot write the chart here (read-only)")
    return path


@click.command("plot")
@click.argument("turn_id", type=int, metavar="ID")
@click.argument("other_id", type=int, required=False, metavar="[ID2]")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="PNG file to write [default: entropy-ID.png, or entropy-ID-ID2.png].")
@click.option("--width", type=click.IntRange(MIN_SIZE, MAX_SIZE), default=1400, show_default=True, help="Width in pixels.")
@click.option("--height", type=click.IntRange(MIN_SIZE, MAX_SIZE), default=800, show_default=True, help="Height in pixels.")
@click.option("--anchor", type=click.Choice(["start", "answer"]), default="start", show_default=True,
              help="With ID2: line the turns up at their first token, or at their first answer token "
                   "(replies whose reasoning differs in length).")
@click.pass_context
def plot(ctx: click.Context, turn_id: int, other_id: int | None, output: Path | None, width: int, height: int,
         anchor: str) -> None:
    """Draw assistant turn ID's per-token curves: entropy and varentropy (top), the chosen token's
    logprob (bottom), reasoning (<think>) shaded, the adaptive sampler's actions as coloured
    markers. With ID2 a second turn (a regenerated alternative, the same prompt under another
    persona or adapter) is overlaid in red, and a dotted line marks where the two diverge.

    Turn ids are the #N of `epistemic log show`. Needs the optional plot extra (matplotlib).
    """
    path = _output(turn_id, other_id, output)
    log_path = ctx.obj["config"].log_path()
    if not log_path.exists():
        raise LogError(f"no dialogue log yet at {log_path}")
    readonly = not (is_writable(log_path) and is_writable(log_path.parent))  # as `log show`: upgrades an old schema
    with DialogueLog(log_path, readonly=readonly) as opened:
        first = load_curves(opened, turn_id)
        second = load_curves(opened, other_id) if other_id is not None else None
    _draw(ChartRequest(first, second, cast(Anchor, anchor), width, height), path)
    click.echo(f"wrote {path} ({width}×{height})")


def _draw(request: ChartRequest, path: Path) -> None:
    try:
        figure = draw(request)
    except ModuleNotFoundError as exc:
        error = missing_extra(exc, "epistemic log plot")
        if error is None:
            raise
        raise error from None
    try:
        save(figure, path)
    except OSError as exc:
        raise UserError(f"{path}: cannot write the chart: {exc.strerror or exc}") from None
