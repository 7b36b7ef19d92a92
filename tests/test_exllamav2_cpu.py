"""What of the exllamav2 backend runs without CUDA: sampler mapping, chat templates vs transformers,
PEFT adapter checks on a tiny fabricated model and the clear refusal on a machine without CUDA
(telemetry and the generate loop: tests/test_exllamav2_stream.py)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.errors import BackendUnavailable, ConfigError, ModelError
from agent.llm.exllamav2.sampler import (
    FIELD_NAMES,
    JOB_FIELDS,
    RUNTIME_STATE,
    bias_vector,
    breaker_token_ids,
    settings_mapping,
)
from agent.llm.exllamav2.settings import ExLlamaV2Settings
from agent.llm.hf_template import load_chat_template
from agent.llm.peft_adapter import AdapterError, check_fits, module_dims, read_adapter
from agent.llm.sampler import ADAPTIVE_FIELDS, SamplerSettings
from tests.exl2_templates import FAMILIES, SPECIAL_TOKENS

# ---------------------------------------------------------------- sampler mapping


def test_every_sampler_field_reaches_exllamav2_or_the_job():
    mapped = set(FIELD_NAMES.values())
    assert set(SamplerSettings.model_fields) == mapped | JOB_FIELDS | set(ADAPTIVE_FIELDS)  # adaptive mode is refused
    # 32 mapped + 5 runtime-state fields = the 37 fields of ExLlamaV2Sampler.Settings (checked on GPU too)
    assert len(FIELD_NAMES) + len(RUNTIME_STATE) == 37


def test_mapping_carries_each_changed_value():
    changed = dict(
        temperature=1.3, top_k=7, top_p=0.8, min_p=0.1, typical_p=0.9, repeat_penalty=1.2, repeat_last_n=-1,
        frequency_penalty=0.3, presence_penalty=0.4, mirostat_mode=2, mirostat_tau=3.0, mirostat_eta=0.2,
        smoothing_factor=0.3, min_temp=0.5, max_temp=1.5, temp_exponent=2.0, top_a=0.2, tfs=0.95, skew=0.5,
        temperature_last=True, repeat_decay=16, dry_multiplier=0.8, dry_base=2.0, dry_allowed_length=3,
        dry_range=512, dry_max_ngram=10, dry_sequence_breakers=["\n"], xtc_probability=0.5, xtc_threshold=0.2,
        token_bias={5: -2.0}, cfg_scale=1.5, xtc_ignore_tokens=[1, 2],
    )
    m = settings_mapping(SamplerSettings(**changed))
    for exl2, ours in FIELD_NAMES.items():
        expected = changed[ours]
        if exl2 == "mirostat":
            expected = True
        elif exl2 in ("dry_sequence_breakers",):
            expected = tuple(expected)
        elif exl2 == "xtc_ignore_tokens":
            expected = frozenset(expected)
        assert m[exl2] == expected, exl2


def test_defaults_map_to_off_values():
    m = settings_mapping(SamplerSettings())
    assert m["mirostat"] is False and m["token_bias"] is None and m["cfg_scale"] is None
    assert m["typical"] == 1.0 and m["dry_multiplier"] == 0.0 and m["xtc_ignore_tokens"] is None


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"mirostat_mode": 1}, "Mirostat v2 only"),
        ({"dry_multiplier": 0.8, "dry_range": 10, "dry_max_ngram": 20}, "larger than dry_max_ngram"),
        ({"min_temp": 1.0, "max_temp": 0.5}, "max_temp >= min_temp"),
    ],
)
def test_values_exllamav2_cannot_honour_are_refused(values, words):
    with pytest.raises(ConfigError, match=words) as caught:
        settings_mapping(SamplerSettings(**values))
    assert "sampler." in str(caught.value) and "\n" not in str(caught.value)


def test_bias_vector_is_padded_and_checked():
    vec = bias_vector({3: 1.5, 99: -100.0}, 100)
    assert len(vec) == 128 and vec[3] == 1.5 and vec[99] == -100.0 and sum(vec) == 1.5 - 100.0
    with pytest.raises(ConfigError, match=r"\[100\]"):
        bias_vector({100: 1.0}, 100)


def test_dry_breakers_become_token_ids():
    pieces = ["a", "b:", "\n\n", "cd", "*x", "q"]
    assert breaker_token_ids(pieces, ["\n", ":", "*"], special_ids=[5]) == {1, 2, 4, 5}
    assert breaker_token_ids(pieces, [], special_ids=[]) == set()


# ---------------------------------------------------------------- [exllamav2] settings


def test_settings_validate_cache_types_and_drafting():
    s = ExLlamaV2Settings(cache_type="Q6", draft_cache_type="q4", gpu_split=[20, 24.5])
    assert (s.cache_type, s.draft_cache_type, s.gpu_split) == ("q6", "q4", (20.0, 24.5))
    assert ExLlamaV2Settings(ngram_draft=True).speculative_method == "ngram"
    assert ExLlamaV2Settings(draft_model="m").speculative_method == "draft_model"
    for bad in ({"cache_type": "q5"}, {"gpu_split": [0]}, {"draft_model": "m", "ngram_draft": True}, {"paged_attention": True}):
        with pytest.raises(ValidationError):
            ExLlamaV2Settings(**bad)


def test_every_setting_is_documented():
    for name, field in ExLlamaV2Settings.model_fields.items():
        assert field.description, name


def test_bad_cache_type_from_environment_is_a_config_error():
    from agent.config_load import load_config

    env = {"EPISTEMIC_EXLLAMAV2__CACHE_TYPE": "q5"}
    with pytest.raises(ConfigError, match="cache_type") as caught:
        load_config(None, env)
    assert caught.value.exit_code == 2


# ---------------------------------------------------------------- chat templates vs transformers


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["Hello there, how are you? Привет, как дела?", "The quick brown fox."] * 20, trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


def _model_folder(root: Path, tokenizer_json: Path, family: str) -> Path:
    template, bos, eos = FAMILIES[family]
    folder = root / family
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    cfg = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template, "eos_token": eos, "bos_token": bos}
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg))
    return folder


CONVERSATION = [
    {"role": "system", "content": "You are terse. Отвечай кратко."},
    {"role": "user", "content": "  Hi there!  "},
    {"role": "assistant", "content": "<think>\nThey greet me.\n</think>\n\nHello."},
    {"role": "user", "content": "Как дела?"},
]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("generation_prompt", [True, False])
def test_rendering_matches_transformers(tmp_path, tokenizer_json, family, generation_prompt):
    from transformers import AutoTokenizer

    folder = _model_folder(tmp_path, tokenizer_json, family)
    messages = CONVERSATION if family in ("llama3", "qwen25", "qwen3") else CONVERSATION[1:]
    ours = load_chat_template(folder).render(messages, add_generation_prompt=generation_prompt)
    reference = AutoTokenizer.from_pretrained(folder).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )
    assert ours == reference
    assert "Как дела?" in ours


def test_qwen_extras_match_transformers(tmp_path, tokenizer_json):
    from transformers import AutoTokenizer

    tools = [{"type": "function", "function": {"name": "погода", "parameters": {"type": "object", "properties": {}}}}]
    for family, extra in (("qwen3", {"enable_thinking": False}), ("qwen25", {"tools": tools})):
        folder = _model_folder(tmp_path, tokenizer_json, family)
        ours = load_chat_template(folder).render(CONVERSATION, **extra)
        reference = AutoTokenizer.from_pretrained(folder).apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True, **extra)
        assert ours == reference, family


def test_template_refusal_is_one_clear_line(tmp_path, tokenizer_json):
    folder = _model_folder(tmp_path, tokenizer_json, "gemma")
    with pytest.raises(ModelError, match="System role not supported"):
        load_chat_template(folder).render(CONVERSATION)


def test_template_sources_and_stop_tokens(tmp_path, tokenizer_json):
    folder = _model_folder(tmp_path, tokenizer_json, "llama3")
    tok = json.loads(tokenizer_json.read_text())
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [ids["<|endoftext|>"], ids["<|eot_id|>"]]}))
    t = load_chat_template(folder)
    assert t.source == "tokenizer_config.json" and t.special_tokens["bos_token"] == "<|begin_of_text|>"
    assert t.stop_token_ids == (ids["<|endoftext|>"], ids["<|eot_id|>"])
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": [{"name": "default", "template": "J{{ messages|length }}"}]}))
    assert load_chat_template(folder).render(CONVERSATION) == "J4"
    (folder / "chat_template.jinja").write_text("X{{ messages[0].role }}")
    assert load_chat_template(folder).render(CONVERSATION) == "Xsystem"


def test_folder_without_template_is_refused(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ModelError, match="no chat template"):
        load_chat_template(tmp_path)


# ---------------------------------------------------------------- PEFT adapters


def _tiny_llama(folder: Path, hidden: int = 64, layers: int = 2):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=128, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(folder)
    return model


@pytest.fixture(scope="module")
def base_and_adapter(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("peft")
    model = _tiny_llama(root / "base")
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    peft_model.save_pretrained(root / "adapter")
    return root / "base", root / "adapter", model


def test_adapter_is_read_and_hashed(base_and_adapter):
    base, adapter, _ = base_and_adapter
    info = read_adapter(adapter)
    assert (info.rank, info.alpha, info.scaling) == (4, 8.0, 2.0)
    assert len(info.tensors) == 2 * 7 * 2
    assert set(info.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert info.sha256 == hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()
    record = info.log_record(0.5)
    assert record["scale"] == 0.5 and record["id"].startswith("adapter@") and record["sha256"] == info.sha256
    check_fits(info, base)


def test_expected_dims_match_the_real_modules(base_and_adapter):
    base, _, model = base_and_adapter
    dims = module_dims(json.loads((base / "config.json").read_text()))
    layer = model.model.layers[0]  # LoRA layers were injected in place; base_layer is the original
    for name, (in_f, out_f) in dims.items():
        module = layer.get_submodule(name)
        linear = getattr(module, "base_layer", module)
        assert (linear.in_features, linear.out_features) == (in_f, out_f), name


def test_adapter_for_another_model_is_refused(tmp_path, base_and_adapter):
    _, adapter, _ = base_and_adapter
    _tiny_llama(tmp_path / "wide", hidden=96)
    with pytest.raises(AdapterError, match=r"does not fit the model in wide: layer 0 mlp.down_proj lora_A: shape \[4, 128\], the base model needs \[4, 192\] \(\+27 more\)"):
        check_fits(read_adapter(adapter), tmp_path / "wide")
    _tiny_llama(tmp_path / "short", layers=1)
    with pytest.raises(AdapterError, match="layer 1, but the base model has 1 layers"):
        check_fits(read_adapter(adapter), tmp_path / "short")


def test_broken_or_unsupported_adapters_are_refused(tmp_path, base_and_adapter):
    _, adapter, _ = base_and_adapter
    with pytest.raises(AdapterError, match="adapter folder not found"):
        read_adapter(tmp_path / "nope")
    dora = tmp_path / "dora"
    dora.mkdir()
    cfg = json.loads((adapter / "adapter_config.json").read_text()) | {"use_dora": True}
    (dora / "adapter_config.json").write_text(json.dumps(cfg))
    (dora / "adapter_model.safetensors").write_bytes((adapter / "adapter_model.safetensors").read_bytes())
    with pytest.raises(AdapterError, match="DoRA"):
        read_adapter(dora)
    (dora / "adapter_config.json").write_text(json.dumps(cfg | {"use_dora": False}))
    (dora / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(AdapterError, match="not a readable safetensors file"):
        read_adapter(dora)


def test_without_torch_the_message_names_the_gpu_extra(monkeypatch):
    from agent.llm.exllamav2.runtime import require_cuda

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BackendUnavailable, match=r"\[gpu\] extra.*llama_cpp"):
        require_cuda()


def test_without_cuda_the_backend_is_unavailable():
    import torch

    from agent.config import Settings
    from agent.config_load import LoadedConfig
    from agent.llm import load_backend

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the GPU tests cover loading")
    config = LoadedConfig(settings=Settings.model_validate({"llm": {"backend": "exllamav2"}}), file=None)
    with pytest.raises(BackendUnavailable, match="CUDA is not available here.*llama_cpp") as caught:
        load_backend(config)
    assert caught.value.exit_code == 3 and "exllamav2" not in sys.modules


def test_cli_refuses_exllamav2_without_cuda_in_one_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    exe = Path(sys.executable).with_name("epistemic")
    if not exe.exists():
        pytest.skip("the epistemic command is not installed in this environment")
    env = os.environ | {"EPISTEMIC_LLM__BACKEND": "exllamav2", "EPISTEMIC_PATHS__DATA_DIR": str(tmp_path)}
    run = subprocess.run([str(exe), "chat", "--once", "hi"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    out = (run.stdout + run.stderr).strip()
    assert run.returncode != 0
    assert "Traceback" not in out and len(out.splitlines()) == 1
    assert "CUDA is not available" in out and "llama_cpp" in out


def test_docs_example_config_is_valid():
    import re
    import tomllib

    from agent.config import Settings

    text = (Path(__file__).resolve().parents[1] / "docs" / "gpu.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    settings = Settings.model_validate(tomllib.loads(block))
    assert settings.llm.backend == "exllamav2" and settings.exllamav2.cache_type == "q6"
    assert settings.personas["pirate"].adapters[0].scale == 0.8
