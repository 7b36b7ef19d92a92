"""LoRA personas on the llama.cpp backend: loaded once, switched without reloading, misfits refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config_load import load_config
from agent.errors import ModelError
from agent.llm.base import run_generation
from agent.llm.llamacpp.gguf import read_metadata
from agent.llm.llamacpp.model import LlamaCppModel, load
from agent.llm.sampler import SamplerSettings
from agent.train.convert import BaseShape, base_shape_from_gguf_meta, convert_peft_to_gguf
from tests.llm_fixtures import chat, smollm2_path  # noqa: F401  (fixture)
from tests.train_fixtures import fabricate_peft_adapter

GREEDY = SamplerSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=16)
PROMPT = chat(("system", "You are a helpful assistant."), ("user", "Name three colours."))
TINY = {"hidden": 64, "heads": 4, "kv_heads": 2, "head_dim": 16, "inter": 128, "layers": 2}


@pytest.fixture(scope="module")
def adapters(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> dict[str, Path]:  # noqa: F811
    """Two GGUF LoRAs for the starter (A, B), a PEFT-only folder, and one for a smaller model."""
    root = tmp_path_factory.mktemp("loras")
    shape = base_shape_from_gguf_meta(read_metadata(smollm2_path))
    out = {}
    for name, seed in (("a", 1), ("b", 2)):
        peft = fabricate_peft_adapter(root / f"peft-{name}", seed=seed)
        out[name] = convert_peft_to_gguf(peft, root / f"{name}.gguf", shape)
    out["peft_only"] = fabricate_peft_adapter(root / "peft-only", seed=1)
    tiny_shape = BaseShape("llama", TINY["heads"], TINY["kv_heads"], TINY["layers"])
    out["tiny"] = convert_peft_to_gguf(fabricate_peft_adapter(root / "peft-tiny", TINY), root / "tiny.gguf", tiny_shape)
    return out


def _load(tmp_path: Path) -> LlamaCppModel:
    config = tmp_path / "config.toml"
    config.write_text("[llm]\ncontext_size = 512\nthreads = 1\n", encoding="utf-8")
    return load(load_config(config, env={}))


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppModel]:
    loaded = _load(tmp_path_factory.mktemp("lora-model"))
    yield loaded
    loaded.close()


def _tokens(model: Any) -> list[int]:
    return [s.token_id for s in run_generation(model.generate(model.render_prompt(PROMPT), GREEDY)).steps]


def _fresh_tokens(tmp_path: Path, wanted: list[tuple[Path, float]]) -> list[int]:
    fresh = _load(tmp_path)
    try:
        if wanted:
            fresh.set_adapters(wanted)
        return _tokens(fresh)
    finally:
        fresh.close()


def test_switching_a_none_b_half_a_gives_the_tokens_of_fresh_loads(model, adapters, tmp_path):
    a, b = adapters["a"], adapters["b"]
    plan: list[list[tuple[Path, float]]] = [[(a, 1.0)], [], [(b, 1.0)], [(a, 0.5)]]
    switched = []
    for wanted in plan:
        seconds = model.set_adapters(wanted)
        assert 0 < seconds < 1.0
        switched.append(_tokens(model))
    fresh = [_fresh_tokens(tmp_path, wanted) for wanted in plan]
    assert switched == fresh
    assert len({tuple(t) for t in switched}) == 4  # each adapter set really changes the reply
    assert len(model._adapters._loaded) == 2  # A was loaded once, though applied twice


def test_info_carries_id_path_scale_and_hash_of_each_adapter(model, adapters):
    from agent.file_hash import sha256_of

    model.set_adapters([(adapters["a"], 0.5), (adapters["b"], 1.0)])
    first, second = model.info.adapters
    assert first["scale"] == 0.5 and second["scale"] == 1.0
    assert first["sha256"] == sha256_of(adapters["a"]) and second["sha256"] == sha256_of(adapters["b"])
    assert first["id"] == f"a@{first['sha256'][:12]}" and first["path"] == str(adapters["a"].resolve())
    model.set_adapters([])
    assert model.info.adapters == ()


def test_an_adapter_for_other_dimensions_is_refused_and_the_base_keeps_working(model, adapters):
    model.set_adapters([(adapters["a"], 1.0)])
    with_a, info = _tokens(model), model.info
    with pytest.raises(ModelError) as refused:
        model.set_adapters([(adapters["tiny"], 1.0)])
    message = str(refused.value)
    assert "\n" not in message and "tiny.gguf does not fit" in message and "shape" in message
    assert model.info == info and _tokens(model) == with_a  # nothing changed
    model.set_adapters([])
    assert _tokens(model) != with_a


def test_an_adapter_for_another_architecture_or_a_model_file_is_refused(model, adapters, tmp_path, smollm2_path):  # noqa: F811
    qwen = convert_peft_to_gguf(fabricate_peft_adapter(tmp_path / "q"), tmp_path / "qwen.gguf", BaseShape("qwen2", 9, 3, 30))
    with pytest.raises(ModelError, match="is for a qwen2 model, but .* is llama"):
        model.set_adapters([(qwen, 1.0)])
    with pytest.raises(ModelError, match="not a LoRA adapter GGUF"):
        model.set_adapters([(smollm2_path, 1.0)])
    with pytest.raises(ModelError, match="adapter not found"):
        model.set_adapters([(tmp_path / "missing.gguf", 1.0)])


def test_a_peft_folder_is_converted_once_and_acts_like_its_gguf(model, adapters):
    model.set_adapters([(adapters["a"], 1.0)])
    expected = _tokens(model)
    model.set_adapters([(adapters["peft_only"], 1.0)])  # same weights as A, PEFT format only
    assert _tokens(model) == expected
    record = model.info.adapters[0]
    assert record["path"] == str(adapters["peft_only"].resolve()) and record["gguf"].endswith(".gguf")
    model.set_adapters([])
