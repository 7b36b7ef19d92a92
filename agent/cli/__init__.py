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
from typing import Any

import click

from agent.errors import UserError
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
            if exc.name and exc.name.startswith(("agent.", "tui.", "audio.")):
                return None  # not built in this version
            raise
        return getattr(module, attr)


def _log_file() -> Path:
    import platformdirs

    folder = Path(platformdirs.user_log_dir("epistemic-engine", appauthor=False))
    return folder / "epistemic.log"


def _setup_logging(verbose: bool) -> None:
    path = _log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


@click.group(cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="EPISTEMIC_CONFIG", help="Config file (default: ./config.toml, then the user config dir). Env: EPISTEMIC_CONFIG.")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging to the log file.")
@click.version_option(package_name="epistemic-engine", prog_name="epistemic")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool) -> None:
    """Epistemic Engine: a local voice agent that shows and records what shapes its model's thinking.

    With no command, opens the terminal UI (or the plain chat where the UI is not installed).
    Any config key can be overridden by an environment variable EPISTEMIC_<SECTION>__<KEY>,
    e.g. EPISTEMIC_LLM__BACKEND=llama_cpp or EPISTEMIC_SAMPLER__TEMPERATURE=0.2.
    """
    _setup_logging(verbose)
    ctx.obj = CliState(config_path)
    if ctx.invoked_subcommand is None:
        default = cli.get_command(ctx, "tui") or cli.get_command(ctx, "chat")
        assert default is not None
        ctx.invoke(default)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning errors into one clear line."""
    try:
        code = cli.main(args=argv, prog_name="epistemic", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        click.echo(f"epistemic: {exc}", err=True)
        sys.exit(exc.exit_code)
    except AudioError as exc:
        click.echo(f"epistemic: {exc}", err=True)
        sys.exit(5)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)
    except Exception as exc:  # a bug: one line for the user, the traceback in the log file
        logging.getLogger(__name__).exception("unexpected error")
        click.echo(f"epistemic: internal error: {type(exc).__name__}: {exc} (details in {_log_file()})", err=True)
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)
