"""Missing modules at the command line: an optional extra names its install line; anything else
(a broken install, a bug) is an internal error (exit 70, one line, traceback in the log file),
never "No such command" and never a silent switch from the TUI to the plain chat."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from agent.cli import LazyGroup, _default_command
from agent.cli.extras import EXTRA_MODULES, missing_extra

ROOT = Path(__file__).resolve().parents[1]

# Runs the real CLI in a fresh interpreter in which the modules named in $BLOCK cannot be imported,
# as after a broken install (a deleted file) or without an optional extra.
RUNNER = textwrap.dedent("""
    import importlib.abc, os, sys

    BLOCKED = os.environ["BLOCK"].split(",")

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in BLOCKED):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Missing())
    from agent.cli import main
    main(sys.argv[1:])
""")


def _run(tmp_path: Path, blocked: str, *args: str, stdin: str = "", **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BLOCK": blocked, "XDG_STATE_HOME": str(tmp_path / "state"),
           "EPISTEMIC_PATHS__DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT), **extra_env}
    return subprocess.run([sys.executable, "-c", RUNNER, *args], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, env=env)


def _log_text(tmp_path: Path) -> str:
    return (tmp_path / "state" / "epistemic-engine" / "log" / "epistemic.log").read_text(encoding="utf-8")


def test_a_broken_internal_module_is_an_internal_error_not_no_such_command(tmp_path):
    result = _run(tmp_path, "agent.personas", "personas", "list")
    assert result.returncode == 70, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "agent.personas" in lines[0]
    assert "No such command" not in result.stderr and "Traceback" not in result.stderr
    log = _log_text(tmp_path)
    assert "Traceback" in log and "agent.personas" in log


def test_a_broken_tui_module_does_not_fall_back_to_the_plain_chat(tmp_path):
    result = _run(tmp_path, "agent.cli.tui_cmd", stdin="hello\n")
    assert result.returncode == 70, result.stderr
    assert "agent.cli.tui_cmd" in result.stderr and "internal error" in result.stderr
    assert result.stdout == ""  # the plain chat never started


def test_a_missing_base_dependency_is_a_broken_installation(tmp_path):
    result = _run(tmp_path, "platformdirs", "config", "check")
    assert result.returncode == 70, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken installation" in lines[0] and "platformdirs" in lines[0]


def test_help_lists_every_command_even_with_a_missing_extra(tmp_path):
    result = _run(tmp_path, "torch,exllamav2,transformers,peft", "--help")
    assert result.returncode == 0, result.stderr
    assert "chat" in result.stdout and "tui" in result.stdout


def test_exllamav2_without_the_gpu_extra_says_how_to_install_it(tmp_path):
    result = _run(tmp_path, "torch,exllamav2", "chat", "--once", "hi", EPISTEMIC_LLM__BACKEND="exllamav2")
    assert result.returncode == 3, result.stderr
    assert "epistemic-engine[gpu]" in result.stderr and "Traceback" not in result.stderr


# --- a command whose module needs an optional extra ---------------------------------------------


@pytest.fixture
def without_torch(monkeypatch):
    """``torch`` cannot be imported (as without the [gpu]/[train] extras), for this test only."""
    import importlib.abc

    class Missing(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    for name in [m for m in sys.modules if m == "torch" or m.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "tests.cli_needs_torch", raising=False)
    finder = Missing()
    sys.meta_path.insert(0, finder)
    yield
    sys.meta_path.remove(finder)


def test_a_command_needing_an_extra_is_listed_and_says_which_extra(without_torch, monkeypatch):
    from agent import cli as cli_module

    monkeypatch.setitem(cli_module.COMMANDS, "train", "tests.cli_needs_torch:train")
    group = LazyGroup(name="epistemic")
    ctx = click.Context(group)
    command = group.get_command(ctx, "train")
    assert command is not None and "pip install 'epistemic-engine[gpu]'" in (command.help or "")
    with pytest.raises(Exception) as raised:
        command.main(["--epochs", "3"], standalone_mode=False)
    assert "epistemic train needs the optional [gpu] or [train] extra" in str(raised.value)
    assert getattr(raised.value, "exit_code", None) == 3


def test_the_default_command_falls_back_only_for_a_missing_extra(without_torch, monkeypatch, capsys):
    from agent import cli as cli_module

    monkeypatch.setitem(cli_module.COMMANDS, "tui", "tests.cli_needs_torch:train")
    ctx = click.Context(cli_module.cli)
    assert _default_command(ctx).name == "chat"
    assert "pip install 'epistemic-engine[gpu]'" in capsys.readouterr().err


def test_every_extra_module_belongs_to_an_extra_of_the_package():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for module, names in EXTRA_MODULES.items():
        for extra in names:
            assert any(req.startswith(module) for req in extras[extra]), (module, extra)
    error = missing_extra(ModuleNotFoundError("No module named 'peft.tuners'", name="peft.tuners"), "epistemic x")
    assert error is not None and "[train]" in str(error)
    assert missing_extra(ModuleNotFoundError("No module named 'agent.x'", name="agent.x"), "epistemic x") is None
