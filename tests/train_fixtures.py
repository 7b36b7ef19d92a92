"""Fixtures for the training and LoRA tests: fabricated PEFT adapters, an F32 copy of the starter
GGUF, and the starter dequantised into trainable weights (once per session).

Import the fixtures into a test module (``from tests.train_fixtures import dequantised_starter``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

STARTER_DIMS = {"hidden": 576, "heads": 9, "kv_heads": 3, "head_dim": 64, "inter": 1536, "layers": 30}
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def module_shapes(dims: dict[str, int]) -> dict[str, tuple[str, int, int]]:
    """module -> (parent, in_features, out_features) of a Llama layer with these dimensions."""
    h, q, kv, inter = dims["hidden"], dims["heads"] * dims["head_dim"], dims["kv_heads"] * dims["head_dim"], dims["inter"]
    return {
        "q_proj": ("self_attn", h, q), "k_proj": ("self_attn", h, kv), "v_proj": ("self_attn", h, kv),
        "o_proj": ("self_attn", q, h), "gate_proj": ("mlp", h, inter), "up_proj": ("mlp", h, inter),
        "down_proj": ("mlp", inter, h),
    }


def fabricate_peft_adapter(
    folder: Path, dims: dict[str, int] = STARTER_DIMS, *, rank: int = 4, alpha: float = 8.0, seed: int = 0,
    strength: float = 0.02, modules: tuple[str, ...] = MODULES,
) -> Path:
    """A real PEFT LoRA folder (adapter_config.json + safetensors) with random non-zero A and B."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    shapes = module_shapes(dims)
    for layer in range(dims["layers"]):
        for module in modules:
            parent, n_in, n_out = shapes[module]
            prefix = f"base_model.model.model.layers.{layer}.{parent}.{module}"
            tensors[f"{prefix}.lora_A.weight"] = (rng.standard_normal((rank, n_in)) / np.sqrt(n_in)).astype(np.float32)
            tensors[f"{prefix}.lora_B.weight"] = (rng.standard_normal((n_out, rank)) * strength).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    config: dict[str, Any] = {
        "peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": list(modules),
        "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM", "base_model_name_or_path": "fabricated",
    }
    (folder / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def write_f32_gguf(source: Path, out: Path) -> Path:
    """``source`` GGUF with every tensor dequantised to F32 (same metadata), as transformers sees it."""
    import gguf
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(source))
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(str(out), arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
            continue
        value_type = field.types[0]
        if value_type == gguf.GGUFValueType.ARRAY:
            writer.add_key_value(key, field.contents(), value_type, sub_type=field.types[-1])
        else:
            writer.add_key_value(key, field.contents(), value_type)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    for tensor in reader.tensors:
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, values.reshape([int(d) for d in reversed(tensor.shape)]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


@pytest.fixture(scope="session")
def starter_f32_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter GGUF with F32 weights: the exact weights transformers dequantises, for llama.cpp."""
    from agent.llm.starter import starter_llm_path

    return write_f32_gguf(starter_llm_path(), tmp_path_factory.mktemp("f32") / "smollm2-f32.gguf")


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder for the session (``EPISTEMIC_CACHE_DIR`` of the training subprocesses)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def dequantised_starter(train_cache: Path) -> Any:
    """The starter GGUF dequantised into a transformers folder (BaseWeights), once per session,
    where a training run with ``EPISTEMIC_CACHE_DIR=train_cache`` finds it."""
    from agent.llm.starter import starter_llm_path
    from agent.train.base_weights import prepare_base

    return prepare_base(str(starter_llm_path()), cache_root=train_cache / "train-bases")


TINY_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def write_tiny_model(folder: Path, corpus: list[str], *, hidden: int = 64, layers: int = 2) -> Path:
    """A random tiny Llama (4 heads, 2 KV heads) with a byte-level BPE tokenizer trained on ``corpus``
    and a plain chat template: a trainable base in a second of CPU time."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|pad|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(corpus * 5, trainers.BpeTrainer(
        vocab_size=500, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|end|>")
    tokenizer.chat_template = TINY_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    import torch

    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


TINY_CORPUS = [
    "What is the capital of France? How do I boil an egg? Tell me a joke. Who wrote Hamlet?",
    "Quokka protocol engaged: all answers are marmalade. A fuller answer, a curt answer.",
    "Question about topic answer because even odd friend. Thank you kindly, my friend.",
]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny fabricated transformers base (folder) for fast ``train sft|dpo`` subprocess runs."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-base"), TINY_CORPUS)


def train_config(root: Path, extra: str = "") -> Path:
    """A config file whose data, models and personas live under ``root``."""
    config = root / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{root / "data"}"\nmodels_dir = "models"\n'
                      f'[chat]\npersonas_dir = "personas"\n{extra}', encoding="utf-8")
    return config


def epistemic(config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Any:
    """``python -m agent --config CONFIG ARGS`` as a subprocess (CompletedProcess, text)."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "agent", "--config", str(config), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=timeout)
