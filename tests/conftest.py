"""Shared fixtures: an isolated configuration per test and one loaded starter model per session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.config_load import LoadedConfig, load_config


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real user's config, data or log folders."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(var, str(home / sub))
    for name in list(os.environ):
        if name.startswith("EPISTEMIC_") and name != "EPISTEMIC_PULSE_DIR":
            monkeypatch.delenv(name)


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., LoadedConfig]:
    """Build a LoadedConfig from TOML text, with the log and data dir inside ``tmp_path``."""

    def build(text: str = "", env: dict[str, str] | None = None) -> LoadedConfig:
        path = tmp_path / "config.toml"
        base = f'[paths]\ndata_dir = "{tmp_path / "data"}"\n'
        path.write_text(base + text, encoding="utf-8")
        return load_config(path, env=env or {})

    return build


@pytest.fixture(scope="session")
def starter_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The embedded default model (SmolLM2-135M-Instruct via llama.cpp), loaded once per session."""
    from agent.llm import load_backend

    config = tmp_path_factory.mktemp("starter") / "config.toml"
    config.write_text("[llm]\ncontext_size = 2048\n", encoding="utf-8")
    model = load_backend(load_config(config, env={}))
    yield model
    model.close()
