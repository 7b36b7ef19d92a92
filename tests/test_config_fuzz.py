"""Fuzzed configuration: random keys, wrong types, broken TOML, random environment overrides.

Whatever the input, loading either succeeds with a configuration that holds only known settings,
or fails with a ConfigError (exit 2) whose message is one line naming the file (or the
environment variable), the key and the reason — never another exception, and ``epistemic config
check`` never prints a traceback. Example counts are small and the runs derandomized, so the
suite stays quick and repeatable.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from agent.config import Settings
from agent.config_load import load_config
from agent.config_types import field_annotation
from agent.errors import ConfigError, one_line

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=8)


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found += _leaves(annotation, f"{prefix}{name}.")
        elif annotation in (bool, int, float, str):
            found.append((f"{prefix}{name}", annotation))
    return found


SCALARS = _leaves(Settings)  # (dotted key, type) of every plain setting
SECTIONS = [name for name in Settings.model_fields if name != "personas"]
NAMES = sorted({part for dotted, _ in SCALARS for part in dotted.split(".")})


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes, but astral characters as they are and DEL escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """``value`` written as a TOML value (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_doc(tree: dict[str, Any]) -> str:
    return "".join(f"{toml_string(key)} = {toml_value(value)}\n" for key, value in tree.items())


def _wrong_for(kind: type, value: Any) -> bool:
    """True when a TOML value does not have the type of a ``kind`` setting."""
    if kind is bool:
        return not isinstance(value, bool)
    if kind is int:
        return not isinstance(value, int) or isinstance(value, bool)
    if kind is float:
        return not isinstance(value, int | float) or isinstance(value, bool)
    return not isinstance(value, str)


keys = st.one_of(st.sampled_from(NAMES), st.text(min_size=1, max_size=12))
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), finite, st.text(max_size=12),
                    st.sampled_from(["llama_cpp", "exllamav2", "", "ru", "auto"]))
values = st.recursive(st.one_of(scalars, st.sampled_from([2**64, -(2**70)])), lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)), max_leaves=6)
documents = st.dictionaries(st.one_of(st.sampled_from(SECTIONS), keys),
                            st.one_of(st.dictionaries(keys, values, max_size=4), values), max_size=4)


def _config(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "fuzz.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path | None, env: dict[str, str] | None = None) -> str:
    """The one-line message of the ConfigError that loading must raise."""
    with pytest.raises(ConfigError) as raised:
        load_config(path, env=env or {})
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert message == one_line(message) and "\n" not in message and "Traceback" not in message
    return message


def _known_paths(tree: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Key paths of every leaf in a parsed document."""
    if isinstance(tree, dict) and tree:
        return [p for key, value in tree.items() for p in _known_paths(value, (*prefix, key))]
    return [prefix]


@FUZZ
@given(section=st.sampled_from(SECTIONS), key=st.text(min_size=1, max_size=16), value=scalars)
def test_an_unknown_key_names_file_key_and_reason(tmp_path_factory, section, key, value):
    fields = getattr(Settings.model_fields[section].annotation, "model_fields", {})
    if key in fields:
        return
    path = _config(tmp_path_factory.mktemp("c"), f"[{section}]\n{toml_string(key)} = {toml_value(value)}\n")
    message = _refused(path)
    assert str(path) in message and one_line(f"{section}.{key}") in message and "unknown key" in message


@FUZZ
@given(setting=st.sampled_from(SCALARS), value=st.one_of(scalars, st.lists(scalars, max_size=2)))
def test_a_wrong_type_names_file_line_key_and_reason(tmp_path_factory, setting, value):
    dotted, kind = setting
    if not _wrong_for(kind, value):
        return
    section, key = dotted.rsplit(".", 1)
    path = _config(tmp_path_factory.mktemp("c"), f"[{section}]\n{key} = {toml_value(value)}\n")
    message = _refused(path)
    assert message.startswith(f"{path}:2: {dotted} = ") and "wrong type" in message


@FUZZ
@given(setting=st.sampled_from(SCALARS), value=st.sampled_from([math.nan, math.inf, -math.inf, 2**64, "a\0b"]))
def test_values_no_setting_can_use_are_refused(tmp_path_factory, setting, value):
    dotted, kind = setting
    section, key = dotted.rsplit(".", 1)
    text = {math.inf: "inf", -math.inf: "-inf"}.get(value) if isinstance(value, float) else None
    literal = text or ("nan" if isinstance(value, float) and math.isnan(value) else toml_value(value))
    path = _config(tmp_path_factory.mktemp("c"), f"[{section}]\n{key} = {literal}\n")
    message = _refused(path)
    assert str(path) in message and dotted in message


def _broken(text: str) -> bool:
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return True
    return False


documented = (ROOT / "config.toml").read_text(encoding="utf-8")


@FUZZ
@given(text=st.one_of(st.text(max_size=60),
                      st.builds(lambda cut, junk: documented[:cut] + junk,
                                st.integers(0, len(documented)), st.sampled_from(["[", "= 1", "x = ", "\"", "[[a]]\n[a]"]))))
def test_broken_toml_names_the_file_and_where(tmp_path_factory, text):
    if not _broken(text):
        return
    path = _config(tmp_path_factory.mktemp("c"), text)
    message = _refused(path)
    assert message.startswith(f"{path}: not valid TOML: ")


@FEW
@given(data=st.binary(min_size=1, max_size=40))
def test_a_file_that_is_not_text_names_the_file(tmp_path_factory, data):
    try:
        data.decode("utf-8")
        return
    except UnicodeDecodeError:
        pass
    path = _config(tmp_path_factory.mktemp("c"), data)
    assert _refused(path).startswith(f"{path}: cannot read config file")


env_names = st.builds(
    lambda prefix, section, key: f"{prefix}{section}__{key}",
    st.sampled_from(["EPISTEMIC_", "EPISTEMIC_", "EPISTEMIC_PERSONAS__X__"]),
    st.one_of(st.sampled_from([s.upper() for s in SECTIONS]), st.text("ABCXYZ_lo9", min_size=0, max_size=6)),
    st.one_of(st.sampled_from([n.upper() for n in NAMES]), st.text("ABCXYZ_lo9", min_size=0, max_size=6)),
)
env_values = st.one_of(st.text(max_size=12), st.sampled_from(["7", "0.5", "true", "yes", "none", "nan", "inf",
                                                                "[1, 2]", '["END"]', "{a = 1}", "1\nx = 2", "-1"]))


@FUZZ
@given(name=env_names, raw=env_values)
def test_an_env_override_is_applied_or_refused_naming_the_variable(tmp_path_factory, name, raw):
    path = _config(tmp_path_factory.mktemp("c"), "")
    try:
        loaded = load_config(path, env={name: raw})
    except ConfigError as exc:
        message = str(exc)
        assert message == one_line(message) and message.startswith(f"env {name}: "), message
        return
    keys = [k.lower() for k in name.removeprefix("EPISTEMIC_").split("__")]
    assert name == name.upper() and field_annotation(keys) is not None  # an applied override is a real setting
    assert loaded.sources[".".join(keys)] == f"env {name}"


@FUZZ
@given(tree=documents)
def test_a_random_document_loads_only_known_settings(tmp_path_factory, tree):
    path = _config(tmp_path_factory.mktemp("c"), toml_doc(tree))
    try:
        loaded = load_config(path, env={})
    except ConfigError as exc:
        message = str(exc)
        assert message == one_line(message) and message.startswith(str(path)), message
        return
    parsed = tomllib.loads(path.read_text(encoding="utf-8"))
    unknown = [p for p in _known_paths(parsed) if p and field_annotation(list(p)) is None]
    assert unknown == [], f"accepted unknown keys {unknown}"
    assert loaded.file == path


@FEW
@given(case=st.one_of(
    documents.map(lambda tree: (toml_doc(tree), {})),
    st.text(max_size=40).filter(_broken).map(lambda text: (text, {})),
    st.tuples(env_names, env_values).map(lambda pair: ("", {pair[0]: pair[1]})),
))
def test_config_check_exits_2_with_one_line_or_0(tmp_path_factory, case):
    text, env = case
    folder = tmp_path_factory.mktemp("cli")
    path = _config(folder, text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EPISTEMIC_")}
    clean.update(XDG_STATE_HOME=str(folder / "state"), XDG_DATA_HOME=str(folder / "data"), **env)
    result = subprocess.run([sys.executable, "-m", "agent", "--config", str(path), "config", "check"],
                            capture_output=True, text=True, cwd=folder, env=clean, timeout=120)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2), result.stderr
    if result.returncode == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("epistemic: "), result.stderr
    else:
        assert result.stdout.startswith("OK: ")
