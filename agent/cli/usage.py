"""Usage errors in one line: a missing, unknown or malformed option or argument is said in one line
naming the valid choices, and exits 2 (click itself prints the usage text and the error on several).

    @click.command("export", cls=OneLineUsage)
    @click.option("--format", type=OneOf(FORMATS), required=True)

``epistemic dataset export --format nope`` then prints
``epistemic: --format: 'nope' is not one of sft, dpo, … (see 'epistemic dataset export --help')``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

import click

from agent.errors import one_line

T = TypeVar("T")


class OneOf(click.Choice):
    """A choice whose refusal names every valid value plainly: ``'nope' is not one of a, b, c``."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__(list(choices))

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value in self.choices:
            return value
        self.fail(f"{value!r} is not one of {_listed(self.choices)}", param, ctx)


def _listed(choices: Sequence[Any]) -> str:
    return ", ".join(str(c) for c in choices)


def _name(exc: click.UsageError) -> str | None:
    """The option or argument an error is about, as the user typed it (--format, TURN_ID)."""
    param = getattr(exc, "param", None)
    hint = getattr(exc, "param_hint", None)
    if isinstance(hint, str):
        return hint
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    if isinstance(param, click.Parameter):
        return param.human_readable_name
    return None


def usage_line(exc: click.UsageError, ctx: click.Context | None = None) -> str:
    """The error as one line: what is wrong, the valid choices where there are some, where the help is."""
    name, param = _name(exc), getattr(exc, "param", None)
    choices = param.type.choices if isinstance(param, click.Parameter) and isinstance(param.type, click.Choice) else None
    if isinstance(exc, click.MissingParameter) and name:
        text = f"{name} is required" + (f": choose one of {_listed(choices)}" if choices else "")
    elif isinstance(exc, click.BadParameter) and name:
        text = f"{name}: {exc.message}"
    else:
        text = exc.format_message()
    ctx = exc.ctx or ctx
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    return one_line(text.rstrip(".") + where)


class UsageLine(click.ClickException):
    """A usage error already put in one line; shown as ``epistemic: <line>`` (exit 2)."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"epistemic: {self.format_message()}", err=file is None, file=file)


def _one_line(call: Callable[[], T], ctx: click.Context) -> T:
    try:
        return call()
    except click.UsageError as exc:
        raise UsageLine(usage_line(exc, ctx)) from None


class OneLineUsage(click.Command):
    """A command whose usage errors, found while parsing or raised by its callback, are one line
    (exit 2). Runs on the CLI's main thread; it holds no state."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _one_line(lambda: super(OneLineUsage, self).parse_args(ctx, args), ctx)

    def invoke(self, ctx: click.Context) -> Any:
        return _one_line(lambda: super(OneLineUsage, self).invoke(ctx), ctx)


class OneLineUsageGroup(click.Group):
    """A group whose usage errors (an unknown subcommand too) are one line (exit 2). Runs on the
    CLI's main thread; it holds no state."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _one_line(lambda: super(OneLineUsageGroup, self).parse_args(ctx, args), ctx)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        return _one_line(lambda: super(OneLineUsageGroup, self).resolve_command(ctx, args), ctx)
