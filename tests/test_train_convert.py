"""Our PEFT -> llama.cpp LoRA GGUF conversion: llama.cpp + our GGUF computes what transformers + PEFT do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.config_load import load_config
from agent.llm.llamacpp.model import LlamaCppModel, load
from agent.train import convert
from tests.train_fixtures import (  # noqa: F401  (fixtures)
    dequantised_starter,
    fabricate_peft_adapter,
    starter_f32_gguf,
    train_cache,
)

PROMPTS = [
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "The quick brown fox",
    "def fibonacci(n):",
    "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\nRed,",
    "Once upon a time, in a small village,",
]


@pytest.fixture(scope="module")
def peft_model(dequantised_starter: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, Path]]:  # noqa: F811
    """transformers + PEFT on the dequantised starter, with a fabricated non-zero LoRA; its folder."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    folder = fabricate_peft_adapter(tmp_path_factory.mktemp("peft") / "lora", seed=5, strength=0.02)
    base = AutoModelForCausalLM.from_pretrained(str(dequantised_starter.folder), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(folder)).eval()
    yield model, AutoTokenizer.from_pretrained(str(dequantised_starter.folder)), folder


def _llama(model_path: Path, tmp: Path) -> LlamaCppModel:
    config = tmp / "config.toml"
    config.write_text(f'[llm]\nmodel = "{model_path}"\ncontext_size = 256\nthreads = 2\n', encoding="utf-8")
    return load(load_config(config, env={}))


def _last_logits(model: LlamaCppModel) -> np.ndarray:
    """The logits llama.cpp left for the last evaluated position."""
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(model._llm.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(model.n_vocab,)).astype(np.float64)


def _llama_logits(model: LlamaCppModel, ids: list[int]) -> np.ndarray:
    model._llm.reset()
    model._llm.eval(ids)
    return _last_logits(model)


def _hf_logits(model: Any, ids: list[int], adapter: bool = True) -> np.ndarray:
    import contextlib

    import torch

    with torch.no_grad(), (contextlib.nullcontext() if adapter else model.disable_adapter()):
        return model(input_ids=torch.tensor([ids])).logits[0, -1].double().numpy()


def _compare(llama: LlamaCppModel, peft: Any, tokenizer: Any) -> tuple[float, int, float]:
    """(max abs logit difference, top-1 agreements, max abs effect of the adapter) over PROMPTS."""
    worst, agree, effect = 0.0, 0, 0.0
    for prompt in PROMPTS:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        ours, reference = _llama_logits(llama, ids), _hf_logits(peft, ids)
        worst = max(worst, float(np.abs(ours - reference).max()))
        agree += int(ours.argmax() == reference.argmax())
        effect = max(effect, float(np.abs(reference - _hf_logits(peft, ids, adapter=False)).max()))
    return worst, agree, effect


@pytest.mark.slow
def test_f32_base_llama_cpp_with_our_gguf_matches_transformers_with_peft(peft_model, starter_f32_gguf, tmp_path, dequantised_starter):  # noqa: F811
    model, tokenizer, folder = peft_model
    gguf = convert.convert_peft_to_gguf(folder, tmp_path / "lora.gguf", dequantised_starter.shape)
    llama = _llama(starter_f32_gguf, tmp_path)
    try:
        llama.set_adapters([(gguf, 1.0)])
        worst, agree, effect = _compare(llama, model, tokenizer)
    finally:
        llama.close()
    print(f"max abs logit difference {worst:.4f}, top-1 {agree}/{len(PROMPTS)}, adapter effect {effect:.2f}")
    assert agree == len(PROMPTS) and worst <= 0.05
    assert effect > 1.0  # the adapter really changes the logits, so agreement means something


@pytest.mark.slow
def test_without_the_qk_permutation_llama_cpp_disagrees(peft_model, starter_f32_gguf, tmp_path, dequantised_starter, monkeypatch):  # noqa: F811
    model, tokenizer, folder = peft_model
    monkeypatch.setattr(convert, "PERMUTE_QK_ARCHS", frozenset())
    gguf = convert.convert_peft_to_gguf(folder, tmp_path / "unpermuted.gguf", dequantised_starter.shape)
    llama = _llama(starter_f32_gguf, tmp_path)
    try:
        llama.set_adapters([(gguf, 1.0)])
        worst, _, _ = _compare(llama, model, tokenizer)
    finally:
        llama.close()
    assert worst > 0.5


@pytest.mark.slow
def test_greedy_continuations_are_identical_on_the_quantised_starter(peft_model, tmp_path, dequantised_starter):  # noqa: F811
    import torch

    from agent.llm.starter import starter_llm_path

    model, tokenizer, folder = peft_model
    gguf = convert.convert_peft_to_gguf(folder, tmp_path / "lora.gguf", dequantised_starter.shape)
    llama = _llama(starter_llm_path(), tmp_path)
    try:
        llama.set_adapters([(gguf, 1.0)])
        for prompt in (PROMPTS[0], PROMPTS[3]):  # chat prompts; raw text has near-ties a Q4_1 base can flip
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            theirs = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=12, do_sample=False)[0, len(ids):].tolist()
            ours = [int(_llama_logits(llama, ids).argmax())]
            while len(ours) < 12:
                llama._llm.eval([ours[-1]])
                ours.append(int(_last_logits(llama).argmax()))
            assert len(theirs) >= 4 and ours[: len(theirs)] == theirs, prompt  # transformers stops at <|im_end|>
    finally:
        llama.close()
