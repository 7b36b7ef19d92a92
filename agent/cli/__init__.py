"""The ``epistemic`` command: a group whose default is the TUI, with script-friendly subcommands.

Subcommands are imported only when used, so ``epistemic --help`` starts fast. Every
:class:`agent.errors.UserError` becomes one line on stderr and its exit code; an unexpected error
becomes one line that points to the log file with the traceback.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from agent.cli.extras import DISTRIBUTION, is_internal, missing_extra
from agent.errors import (
    EXIT_AUDIO,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    MissingExtra,
    UserError,
    one_line,
)
from audio.errors import AudioError

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "chat": "agent.cli.chat:chat",
    "tui": "agent.cli.tui_cmd:tui",
    "config": "agent.cli.config_cmd:config",
    "personas": "agent.cli.personas_cmd:personas",
    "models": "agent.cli.models_cmd:models",
    "log": "agent.cli.log_cmd:log",
    "devices": "agent.cli.audio_cmds:devices",
    "transcribe": "agent.cli.audio_cmds:transcribe",
    "say": "agent.cli.audio_cmds:say",
    "reply": "agent.cli.voice_cmds:reply",
    "voice": "agent.cli.voice_cmds:voice",
    "tokenize": "agent.cli.tokenize_cmd:tokenize",
    "train": "agent.cli.train_cmd:train",
    "dataset": "agent.cli.dataset_cmd:dataset",
    "knowledge": "agent.cli.knowledge_cmd:knowledge",
}


class CliState(dict):
    """``ctx.obj``: ``obj["config"]`` loads the configuration on first use (so --help needs none)."""

    def __init__(self, config_path: str | None) -> None:
        super().__init__()
        self.config_path = config_path

    def __missing__(self, key: str) -> Any:
        if key != "config":
            raise KeyError(key)
        from agent.config_load import load_config

        self["config"] = load_config(self.config_path)
        return self["config"]


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            error = missing_extra(exc, f"epistemic {name}")
            if error is None:
                raise  # a broken installation or a bug: never "No such command"
            return _unavailable(name, error)
        command: click.Command = getattr(module, attr)
        return command


def _unavailable(name: str, error: MissingExtra) -> click.Command:
    """A stand-in for a command whose optional extra is missing: it says which extra to install."""

    def callback() -> None:
        raise error

    command = click.Command(name, callback=callback, help=f"(not installed) {error}", add_help_option=False,
                            context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    command.missing_extra = error  # type: ignore[attr-defined]
    return command


def _log_file() -> Path:
    import platformdirs

    from audio.paths import APP_NAME

    folder = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    return folder / "epistemic.log"


def _setup_logging(verbose: bool = False) -> None:
    """Log to the program log (owner-only, 0600 in a 0700 folder); once per process."""
    root = logging.getLogger()
    if not any(getattr(h, "epistemic", False) for h in root.handlers):
        handler = _log_handler(_log_file())
        handler.epistemic = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def _log_handler(path: Path) -> logging.Handler:
    from agent.private import private_file

    try:
        return logging.FileHandler(private_file(path), encoding="utf-8")
    except OSError:
        return logging.NullHandler()


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="EPISTEMIC_CONFIG", help="Config file (default: ./config.toml, then the user config dir). Env: EPISTEMIC_CONFIG.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging to the log file.")
@click.version_option(package_name="epistemic-engine", prog_name="epistemic")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Epistemic Engine: a local voice agent that shows and records what shapes its model's thinking.

    With no command, opens the terminal UI.
    Any config key can be overridden by an environment variable EPISTEMIC_<SECTION>__<KEY>,
    e.g. EPISTEMIC_LLM__BACKEND=llama_cpp or EPISTEMIC_SAMPLER__TEMPERATURE=0.2.
    """
    _setup_logging(verbose)
    ctx.obj = CliState(config_path)
    if ctx.invoked_subcommand is None:
        ctx.invoke(_default_command(ctx))


def _default_command(ctx: click.Context) -> click.Command:
    """The TUI; the plain chat only where an optional extra the TUI needs is missing (said so)."""
    default = cli.get_command(ctx, "tui")
    missing = getattr(default, "missing_extra", None)
    if missing is not None:
        click.echo(f"epistemic: {missing}; opening the plain chat instead", err=True)
        default = cli.get_command(ctx, "chat")
    assert default is not None
    return default


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning errors into one clear line."""
    try:
        code = cli.main(args=argv, prog_name="epistemic", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        click.echo(f"epistemic: {one_line(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except AudioError as exc:
        click.echo(f"epistemic: {one_line(str(exc))}", err=True)
        sys.exit(EXIT_AUDIO)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        os._exit(0)
    except ModuleNotFoundError as exc:
        _missing_module(exc)
    except Exception as exc:  # a bug: one line for the user, the traceback in the log file
        _internal_error(exc, f"internal error: {type(exc).__name__}: {exc}")
    sys.exit(code if isinstance(code, int) else 0)


def _missing_module(exc: ModuleNotFoundError) -> NoReturn:
    """An optional extra: how to install it (exit 3). Anything else is a broken install or a bug."""
    error = missing_extra(exc, "this command")
    if error is not None:
        click.echo(f"epistemic: {error}", err=True)
        sys.exit(error.exit_code)
    if is_internal(exc):
        _internal_error(exc, f"internal error: {type(exc).__name__}: {exc}")
    _internal_error(exc, f"broken installation: {exc} (a dependency of {DISTRIBUTION}; reinstall it)")


def _internal_error(exc: BaseException, line: str) -> NoReturn:
    """One line for the user (exit 70); the traceback goes to the program log."""
    where = _log_traceback(exc)
    click.echo(f"epistemic: {one_line(line)}{f' (details in {where})' if where else ''}", err=True)
    sys.exit(EXIT_INTERNAL)


def _log_traceback(exc: BaseException) -> Path | None:
    """Write ``exc`` with its traceback to the program log; its path (None: no log to write to)."""
    try:
        _setup_logging()
        path = _log_file()
    except Exception:  # the log itself is broken (e.g. platformdirs missing): the line must still come
        return None
    logging.getLogger(__name__).error("unexpected error", exc_info=exc)
    return path
