"""Configuration: the documented file equals the defaults; errors name file, key (line) and reason."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from agent.config import Settings
from agent.config_load import effective_values, load_config
from agent.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
EPISTEMIC = [sys.executable, "-m", "agent"]


def _fields(model: type, prefix: str = "") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields") and name != "personas":
            names += _fields(annotation, f"{prefix}{name}.")
        elif name != "personas":
            names.append(f"{prefix}{name}")
    return names


def test_documented_config_equals_builtin_defaults():
    loaded = load_config(ROOT / "config.toml", env={})
    assert loaded.settings == Settings()


def test_every_setting_is_documented_in_config_toml():
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    missing = [f for f in _fields(Settings) if f.rsplit(".", 1)[1] not in text]
    assert missing == []


def test_every_field_has_a_description():
    undocumented = []

    def walk(model: type, prefix: str) -> None:
        for name, field in model.model_fields.items():
            if not field.description and not (isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields")):
                undocumented.append(prefix + name)
            if isinstance(field.annotation, type) and hasattr(field.annotation, "model_fields"):
                walk(field.annotation, f"{prefix}{name}.")

    walk(Settings, "")
    assert undocumented == []


def test_env_overrides_single_keys_and_records_source(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sampler]\ntemperature = 0.4\n[llm]\ncontext_size = 1024\n', encoding="utf-8")
    env = {"EPISTEMIC_SAMPLER__TOP_K": "7", "EPISTEMIC_LLM__BACKEND": "exllamav2", "EPISTEMIC_SAMPLER__STOP": '["END"]'}
    loaded = load_config(cfg, env=env)
    assert loaded.settings.sampler.temperature == 0.4
    assert loaded.settings.sampler.top_k == 7
    assert loaded.settings.sampler.stop == ("END",)
    assert loaded.settings.llm.backend == "exllamav2"
    sources = {k: s for k, _, s in effective_values(loaded)}
    assert sources["sampler.temperature"] == str(cfg)
    assert sources["sampler.top_k"] == "env EPISTEMIC_SAMPLER__TOP_K"
    assert sources["sampler.min_p"] == "default"


def test_config_env_var_selects_file(tmp_path):
    cfg = tmp_path / "other.toml"
    cfg.write_text('[chat]\npersona = "philosopher"\n', encoding="utf-8")
    assert load_config(None, env={"EPISTEMIC_CONFIG": str(cfg)}).settings.chat.persona == "philosopher"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sampler]\ntemperature = 'hot'\n", ["c.toml:2", "sampler.temperature", "'hot'", "expected a number, got a string"]),
        ("[sampler]\ntemprature = 0.5\n", ["c.toml:2", "sampler.temprature", "unknown key"]),
        ("[llm]\ncontext_size = 10\n", ["c.toml:2", "llm.context_size", "greater than or equal to 256"]),
        ("[llm\nbackend = 1\n", ["c.toml", "not valid TOML", "line 1"]),
        ("[bogus]\nx = 1\n", ["c.toml", "bogus", "unknown key"]),
    ],
)
def test_broken_config_names_file_key_and_reason(tmp_path, text, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    for part in expected:
        assert part in str(err.value)
    assert err.value.exit_code == 2


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="env EPISTEMIC_SAMPLER__TOP_P.*sampler.top_p"):
        load_config(None, env={"EPISTEMIC_SAMPLER__TOP_P": "2.5", "HOME": str(tmp_path)})


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "cfg"), **env}
    return subprocess.run([*EPISTEMIC, *args], capture_output=True, text=True, cwd=tmp_path, env=full_env, timeout=120)


def test_cli_config_check_exit_2_one_line_no_traceback(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sampler]\ntop_k = -3\n", encoding="utf-8")
    proc = _run(["--config", str(cfg), "config", "check"], tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "bad.toml:2" in proc.stderr and "sampler.top_k" in proc.stderr


def test_cli_config_show_lists_sources(tmp_path):
    proc = _run(["--config", str(ROOT / "config.toml"), "config", "show", "--section", "llm"], tmp_path, EPISTEMIC_LLM__THREADS="3")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("=")[0].strip(): line for line in proc.stdout.splitlines() if "=" in line}
    assert lines["llm.threads"].endswith("# env EPISTEMIC_LLM__THREADS")
    assert str(ROOT / "config.toml") in lines["llm.backend"]


def test_config_toml_is_valid_toml():
    tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))


def test_with_values_validates_and_records_the_source(make_config):
    loaded = make_config("[llm]\nthreads = 0\n")
    changed = loaded.with_values("llm", "the UI", threads=3)
    assert changed.settings.llm.threads == 3 and loaded.settings.llm.threads == 0
    assert changed.sources["llm.threads"] == "the UI"
    with pytest.raises(ConfigError, match=r"^the UI: llm.threads = -5: Input should be greater than or equal to 0$"):
        loaded.with_values("llm", "the UI", threads=-5)


def test_the_ui_leaves_one_core_for_drawing_unless_threads_are_set(make_config, monkeypatch):
    from tui.loader import ui_config

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert ui_config(make_config()).settings.llm.threads == 7
    assert ui_config(make_config("[llm]\nthreads = 8\n")).settings.llm.threads == 8
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert ui_config(make_config()).settings.llm.threads == 1


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ('[llm]\ncontext_size = "4096"\n', {}, "c.toml:2: llm.context_size = '4096': wrong type: expected an integer, got a string"),
        ("[log]\nenabled = 1\n", {}, "c.toml:2: log.enabled = 1: wrong type: expected a boolean (true/false), got an integer"),
        ('[llm]\nbackend = "llama"\n', {}, "c.toml:2: llm.backend = 'llama': Value error, unknown backend"),
        ("[sampler]\nskew = nan\n", {}, "c.toml:2: sampler.skew = nan: not a finite number"),
        ('[llm]\nmodel = "a\\u0000b"\n', {}, "c.toml:2: llm.model = 'a\\x00b': text with a NUL character"),
        ('[llm]\n"a\\nb" = 1\n', {}, "c.toml: llm.a\\nb: unknown key"),
        ("llm = 3\n", {"EPISTEMIC_LLM__THREADS": "2"}, "env EPISTEMIC_LLM__THREADS: cannot set llm.threads:"),
        ("", {"EPISTEMIC_llm__threads": "2"}, "env EPISTEMIC_llm__threads: not a config key"),
        ("", {"EPISTEMIC_SAMPLER__SKEW": "inf"}, "env EPISTEMIC_SAMPLER__SKEW: sampler.skew = inf: not a finite number"),
    ],
)
def test_what_lax_parsing_used_to_let_through_is_refused(tmp_path, text, env, expected):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env=env)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_text_settings_take_env_text_as_it_is(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("", encoding="utf-8")
    env = {"EPISTEMIC_LLM__MODEL": "123", "EPISTEMIC_CHAT__PERSONA": "true", "EPISTEMIC_SAMPLER__SEED": "none",
           "EPISTEMIC_LOG__KEEP_AUDIO": "no", "EPISTEMIC_VAD__FRAME_MS": "20"}
    settings = load_config(cfg, env=env).settings
    assert (settings.llm.model, settings.chat.persona, settings.sampler.seed) == ("123", "true", None)
    assert settings.log.keep_audio is False and settings.vad.frame_ms == 20


@pytest.mark.parametrize(("raw", "value"), [("0.5", 0.5), ("7", 7), ("true", True), ('["a"]', ["a"]),
                                            ("none", None), ("", None), ("hot", "hot"), ("1\nx = 2", "1\nx = 2")])
def test_parse_literal_reads_what_a_person_types(raw, value):
    from agent.config_load import parse_literal

    assert parse_literal(raw) == value


def test_model_values_are_paths_relative_to_the_config_file_or_names(make_config):
    loaded = make_config()
    base = loaded.file.parent
    assert loaded.resolve_model("") == ""
    assert loaded.resolve_model("whisper-base") == "whisper-base"  # a starter name stays a name
    assert loaded.resolve_model("voices/ru.onnx") == str(base / "voices" / "ru.onnx")  # missing, but a path
    assert loaded.resolve_model("~/m.bin") == str(Path("~/m.bin").expanduser())
    (base / "mine").mkdir()
    assert loaded.resolve_model("mine") == str(base / "mine")
