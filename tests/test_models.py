"""``epistemic models list|pull``: starter models by package, the models folder, offline downloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.errors import ModelError, UserError
from agent.llm.starter import STARTER_LLM, StarterSpec, find_starter, starter_llm_path
from agent.models import list_models, pull_model, resolve_model_path

ROOT = Path(__file__).resolve().parents[1]


def _epistemic(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=timeout)


def test_the_starter_llm_is_found_inside_its_package():
    path = starter_llm_path()
    assert path.suffix == ".gguf" and path.is_file() and "site-packages" in str(path)
    assert path.read_bytes()[:4] == b"GGUF"


def test_a_missing_package_is_reported_not_raised():
    spec = StarterSpec("ghost", "llm", ("no-such-package-epistemic",), ".gguf", "absent")
    found = find_starter(spec)
    assert not found.installed and found.missing == ("no-such-package-epistemic",)
    with pytest.raises(ModelError, match="not a starter"):
        starter_llm_path("ghost")


def test_list_shows_starters_and_the_models_folder(make_config, tmp_path):
    models = tmp_path / "models"
    (models / "exl2-model").mkdir(parents=True)
    (models / "exl2-model" / "config.json").write_text("{}")
    (models / "tiny.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    rows = {r.name: r for r in list_models(make_config())}
    assert rows[STARTER_LLM].status == "installed" and rows[STARTER_LLM].kind == "llm"
    assert {"whisper-base", "piper-joe"} <= set(rows)
    assert rows["tiny.gguf"].source == "models dir" and rows["tiny.gguf"].size_bytes == 64
    assert rows["exl2-model"].kind == "folder"


def test_model_names_resolve_like_the_config_says(make_config, tmp_path):
    config = make_config()
    assert resolve_model_path(config, "") == starter_llm_path()
    assert resolve_model_path(config, STARTER_LLM) == starter_llm_path()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.gguf").write_bytes(b"GGUF")
    assert resolve_model_path(config, "mine.gguf") == tmp_path / "models" / "mine.gguf"
    with pytest.raises(ModelError, match="absent.gguf: model not found"):
        resolve_model_path(config, "absent.gguf")


def test_cli_models_list(tmp_path):
    (tmp_path / "config.toml").write_text('[paths]\nmodels_dir = "m"\n')
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.gguf").write_bytes(b"GGUF")
    done = _epistemic("--config", str(tmp_path / "config.toml"), "models", "list", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert any(r["name"] == STARTER_LLM and r["status"] == "installed" for r in rows)
    assert any(r["name"] == "x.gguf" and r["source"] == "models dir" for r in rows)
    text = _epistemic("--config", str(tmp_path / "config.toml"), "models", "list")
    assert text.returncode == 0 and "whisper-base" in text.stdout and "x.gguf" in text.stdout


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "http://10.255.255.1:81"])
def test_pull_fails_fast_offline_with_one_line(tmp_path, endpoint):
    (tmp_path / "config.toml").write_text('[paths]\nmodels_dir = "m"\n')
    started = time.monotonic()
    done = _epistemic("--config", str(tmp_path / "config.toml"), "models", "pull", "someone/some-model",
                      "--file", "model.gguf", env={"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0"})
    elapsed = time.monotonic() - started
    assert done.returncode != 0 and elapsed < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epistemic: ") and "Traceback" not in done.stderr
    assert "cannot reach the model hub" in lines[0] or "could not be reached" in lines[0] or "failed" in lines[0]
    assert not (tmp_path / "m" / "some-model" / "model.gguf").exists()


def test_pull_refuses_a_malformed_repo_id(make_config):
    with pytest.raises(UserError, match="OWNER/NAME"):
        pull_model(make_config(), "../escape")


def test_gpu_weights_are_hashed_once_per_file_version(tmp_path, monkeypatch):
    import hashlib

    from agent.llm.exllamav2.load import weights_hash

    monkeypatch.setenv("EPISTEMIC_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model-00001.safetensors").write_bytes(b"weights" * 1000)
    first = weights_hash(folder)
    assert first == hashlib.sha256(b"weights" * 1000).hexdigest()
    monkeypatch.setattr(hashlib, "sha256", lambda: (_ for _ in ()).throw(AssertionError("hashed twice")))
    assert weights_hash(folder) == first  # the second load reads the remembered hash


def test_one_file_hash_for_every_backend_and_adapter():
    import inspect

    import agent.file_hash
    import agent.llm.exllamav2.load
    import agent.llm.llamacpp.model
    import agent.llm.peft_adapter
    import agent.models

    for module in (agent.llm.exllamav2.load, agent.llm.peft_adapter):
        assert module.file_sha256 is agent.file_hash.file_sha256, module.__name__
    assert "from agent.file_hash import file_sha256" in inspect.getsource(agent.llm.llamacpp.model)
    assert not hasattr(agent.models, "file_sha256")  # no second copy, no re-export


def test_app_name_and_cache_dir_have_one_home():
    import agent.config_load
    import agent.models
    import audio.paths

    assert agent.config_load.APP_NAME is audio.paths.APP_NAME
    assert not hasattr(agent.models, "APP_NAME") and not hasattr(agent.models, "cache_dir")
