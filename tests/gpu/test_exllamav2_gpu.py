"""The exllamav2 backend on a real GPU, against transformers and PEFT on a fabricated random Llama."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.llm.base import ChatMessage, run_generation
from agent.llm.sampler import SamplerSettings

TOL = 1e-2  # relative L2 error of fp16 logits
HELLO = [ChatMessage("system", "You are a test."), ChatMessage("user", "Привет! How are you? One two three four.")]


def load(model_dir: Path, **exllamav2):
    from agent.config import Settings
    from agent.config_load import LoadedConfig
    from agent.llm import load_backend

    settings = Settings.model_validate({
        "llm": {"backend": "exllamav2", "model": str(model_dir), "context_size": 2048}, "exllamav2": exllamav2,
    })
    return load_backend(LoadedConfig(settings=settings, file=None))


def greedy(max_tokens: int = 64, **more) -> SamplerSettings:
    # stop tokens banned so a random model writes the full length
    return SamplerSettings(temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                           max_tokens=max_tokens, token_bias={0: -1000.0, 2: -1000.0}, **more)


def rel(a, b) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.fixture(scope="session")
def small(tmp_path_factory):
    from tests.gpu.fabricate import make_llama, make_lora

    root = tmp_path_factory.mktemp("models")
    make_llama(root / "small", "small", device="cuda")
    make_lora(root / "small", root / "small-lora")
    return SimpleNamespace(model=root / "small", lora=root / "small-lora", root=root)


@pytest.fixture(scope="module")
def backend(small):
    model = load(small.model)
    yield model
    model.close()


@pytest.fixture(scope="module")
def reference(small):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(small.model, dtype=torch.float16).cuda().eval()


def _ids(backend):
    import torch

    return torch.tensor([backend.render_prompt(HELLO).token_ids], dtype=torch.long)


def test_sampler_mapping_names_every_settings_field(backend):
    from exllamav2.generator import ExLlamaV2Sampler

    from agent.llm.exllamav2.sampler import FIELD_NAMES, RUNTIME_STATE, build_exl2_settings

    names = {f.name for f in dataclasses.fields(ExLlamaV2Sampler.Settings)}
    assert names == set(FIELD_NAMES) | set(RUNTIME_STATE)
    s = build_exl2_settings(SamplerSettings(dry_multiplier=0.8, token_bias={5: 2.0}), backend.tokenizer, backend.parts.config.vocab_size)
    assert s.token_bias.shape[0] % 32 == 0 and float(s.token_bias[5]) == 2.0
    assert s.dry_sequence_breakers and all(isinstance(t, int) for t in s.dry_sequence_breakers)


def test_prompt_tokens_match_transformers(backend, small):
    from transformers import AutoTokenizer

    prompt = backend.render_prompt(HELLO)
    tok = AutoTokenizer.from_pretrained(small.model)
    assert prompt.text == tok.apply_chat_template([dataclasses.asdict(m) for m in HELLO], tokenize=False, add_generation_prompt=True)
    assert list(prompt.token_ids) == tok(prompt.text, add_special_tokens=False)["input_ids"]


def test_logits_match_transformers(backend, reference, record):
    import torch

    ids = _ids(backend)
    ours = backend.parts.model.forward(ids).float().cpu()[0]
    with torch.no_grad():
        theirs = reference(ids.cuda()).logits.float().cpu()[0]
    vocab = theirs.shape[-1]
    err = rel(ours[:, :vocab], theirs)
    record("logits vs transformers (rel. L2)", f"{err:.2e}", f"< {TOL}")
    assert err < TOL


def test_telemetry_of_first_token_matches_transformers(backend, reference):
    import torch

    prompt = backend.render_prompt(HELLO)
    result = run_generation(backend.generate(prompt, greedy(8)))
    with torch.no_grad():
        logits = reference(torch.tensor([prompt.token_ids]).cuda()).logits[0, -1].float()
    logits[[0, 2]] -= 1000.0  # the same bias the sampler applied
    logp = torch.log_softmax(logits, -1)
    first = result.steps[0]
    assert first.token_id == int(logp.argmax())
    assert first.logprob == pytest.approx(float(logp[first.token_id]), abs=2e-2)
    assert first.entropy == pytest.approx(float(-(logp.exp() * logp).sum()), rel=2e-2)
    assert [a.token_id for a in first.top][:1] == [first.token_id]
    assert "".join(s.text for s in result.steps) == result.text and len(result.steps) == 8


def test_lora_on_off_matches_peft(backend, reference, small, record):
    import torch
    from peft import PeftModel

    ids = _ids(backend)
    with torch.no_grad():
        off_ref = reference(ids.cuda()).logits.float().cpu()[0]
        peft = PeftModel.from_pretrained(reference, small.lora).eval()
        on_ref = peft(ids.cuda()).logits.float().cpu()[0]
        peft.unload()
    cost_on = backend.set_adapters([(small.lora, 1.0)])
    vocab = off_ref.shape[-1]
    on = backend.parts.model.forward(ids, loras=backend.generator.current_loras).float().cpu()[0, :, :vocab]
    assert backend.info.adapters and backend.info.adapters[0]["scale"] == 1.0 and len(backend.info.adapters[0]["sha256"]) == 64
    cost_off = backend.set_adapters([])
    off = backend.parts.model.forward(ids, loras=backend.generator.current_loras).float().cpu()[0, :, :vocab]
    effect, err_on, err_off = rel(on_ref, off_ref), rel(on, on_ref), rel(off, off_ref)
    record("LoRA on vs PEFT (rel. L2)", f"{err_on:.2e}", f"< {TOL}; LoRA effect {effect:.2f}")
    record("LoRA off vs base (rel. L2)", f"{err_off:.2e}", f"< {TOL}")
    record("adapter switch on / off (ms)", f"{cost_on * 1e3:.1f} / {cost_off * 1e3:.1f}", "no base reload")
    assert effect > 10 * TOL and err_on < TOL and err_off < TOL
    assert backend.info.adapters == ()


def test_misfit_adapter_is_refused_and_base_keeps_working(backend, tmp_path):
    from peft import LoraConfig, get_peft_model

    from agent.llm.peft_adapter import AdapterError
    from tests.test_exllamav2_cpu import _tiny_llama  # a hidden-64 model: nothing like ours

    get_peft_model(_tiny_llama(tmp_path / "tiny"), LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(tmp_path / "misfit")
    with pytest.raises(AdapterError, match="does not fit"):
        backend.set_adapters([(tmp_path / "misfit", 1.0)])
    assert run_generation(backend.generate(backend.render_prompt(HELLO), greedy(4))).timings.completion_tokens == 4


def test_cancel_between_tokens(backend):
    cancel = threading.Event()
    stream = backend.generate(backend.render_prompt(HELLO), greedy(200), cancel=cancel)
    seen = []

    def on_token(step):
        seen.append(step)
        if len(seen) == 3:
            cancel.set()

    result = run_generation(stream, on_token)
    assert result.stop_reason == "cancelled" and 3 <= len(result.steps) < 10
    assert backend.generator.num_remaining_jobs() == 0
    assert run_generation(backend.generate(backend.render_prompt(HELLO), greedy(5))).stop_reason == "max_tokens"


def test_every_sampler_runs(backend):
    exotic = SamplerSettings(
        temperature=0.9, smoothing_factor=0.3, min_temp=0.5, max_temp=1.2, top_a=0.1, tfs=0.95, skew=0.2,
        typical_p=0.95, temperature_last=True, repeat_decay=8, dry_multiplier=0.8, dry_range=256, xtc_probability=0.5,
        mirostat_mode=2, presence_penalty=0.2, frequency_penalty=0.1, seed=7, max_tokens=16,
    )
    result = run_generation(backend.generate(backend.render_prompt(HELLO), exotic))
    assert result.steps and all(s.entropy is not None for s in result.steps)


def test_draft_model_of_itself_accepts_nearly_everything(small, backend, record):
    prompt = backend.render_prompt(HELLO)
    plain = run_generation(backend.generate(prompt, greedy(96)))
    drafted = load(small.model, draft_model=str(small.model), num_draft_tokens=4)
    try:
        result = run_generation(drafted.generate(drafted.render_prompt(HELLO), greedy(96)))
    finally:
        drafted.close()
    spec = result.speculative
    record("draft = model: acceptance", f"{spec.acceptance_rate:.3f} ({spec.accepted}/{spec.proposed})", "~1")
    assert spec.method == "draft_model" and spec.acceptance_rate > 0.9 and len(result.steps) == 96
    assert [s.token_id for s in result.steps[:16]] == [s.token_id for s in plain.steps[:16]]
    assert any(s.accepted_draft for s in result.steps)


def test_ngram_drafting_reports_its_acceptance(small, record):
    model = load(small.model, ngram_draft=True, num_draft_tokens=4)
    try:
        text = "one two three four five six seven eight nine ten " * 8
        result = run_generation(model.generate(model.render_prompt([ChatMessage("user", text)]), greedy(96)))
    finally:
        model.close()
    spec = result.speculative
    record("n-gram drafting: acceptance", f"{spec.acceptance_rate or 0:.3f} ({spec.accepted}/{spec.proposed})", "> 0 proposed")
    assert spec.method == "ngram" and spec.proposed > 0 and len(result.steps) == 96
