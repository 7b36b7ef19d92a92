"""The [train] section: every key documented in config.toml with a comment, defaults in step."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from agent.config import Settings
from agent.errors import ConfigError
from agent.train.settings import TrainSettings

ROOT = Path(__file__).resolve().parents[1]


def _train_section_lines() -> list[str]:
    lines = (ROOT / "config.toml").read_text(encoding="utf-8").splitlines()
    start = lines.index("[train]")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(("[", "# Personas"))), len(lines))
    return lines[start + 1:end]


def test_every_train_key_is_in_config_toml_after_a_comment_and_equals_the_default():
    lines = _train_section_lines()
    keys = {line.split("=", 1)[0].strip(): i for i, line in enumerate(lines) if "=" in line and not line.startswith("#")}
    assert sorted(keys) == sorted(TrainSettings.model_fields)
    uncommented = [k for k, i in keys.items() if not lines[i - 1].startswith("#")]
    assert uncommented == []
    documented = TrainSettings.model_validate(tomllib.loads("\n".join(lines)))
    assert documented == TrainSettings() == Settings().train


def test_every_train_field_has_a_one_line_description():
    missing = [n for n, f in TrainSettings.model_fields.items() if not f.description or "\n" in f.description]
    assert missing == []


def test_a_wrong_train_value_names_the_key(make_config):
    with pytest.raises(ConfigError, match="train.rank"):
        make_config("[train]\nrank = 0\n")
    assert make_config("[train]\nrank = 16\n").settings.train.rank == 16
