"""The llama.cpp backend on the real starter model (SmolLM2-135M-Instruct, loaded once per session)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from agent.errors import ModelError, UserError
from agent.llm.base import LanguageModel, run_generation
from agent.llm.llamacpp.text import PieceDecoder, StopMatcher
from agent.llm.sampler import SamplerSettings
from tests.llm_fixtures import (  # noqa: F401  (fixtures)
    chat,
    independent_log_softmax,
    reference_llama,
    reference_logits,
    smollm2_path,
)

GREEDY = SamplerSettings(temperature=0.0, repeat_penalty=1.0, max_tokens=24)
STORY = chat(("system", "You are a helpful assistant."), ("user", "Tell me a short story about a cat."))


def _generate(model, messages, sampler, **kwargs):
    return run_generation(model.generate(model.render_prompt(messages), sampler, **kwargs))


def test_backend_implements_the_protocol_and_describes_the_model(starter_model, smollm2_path):  # noqa: F811
    info = starter_model.info
    assert isinstance(starter_model, LanguageModel)
    assert info.backend == "llama_cpp" and Path(info.path) == smollm2_path
    assert len(info.file_hash) == 64 and info.file_hash != "0" * 64
    assert info.context_size == 2048 and "<|im_start|>" in (info.chat_template or "")
    assert "smollm2" in info.model_id.lower()


def test_pieces_concatenate_to_the_text_and_steps_are_complete(starter_model):
    result = _generate(starter_model, STORY, SamplerSettings(temperature=0.8, seed=7, max_tokens=40))
    assert result.steps and result.text == "".join(s.text for s in result.steps)
    decoded = starter_model._llm.detokenize([s.token_id for s in result.steps]).decode("utf-8", "ignore")
    assert decoded == result.text
    for i, step in enumerate(result.steps):
        assert step.index == i and step.logprob <= 0 and step.entropy >= 0
        assert len(step.top) == 5 and step.top[0].logprob >= step.top[-1].logprob
    t = result.timings
    assert t.prompt_tokens == result.prompt.token_count and t.completion_tokens == len(result.steps)
    assert t.time_to_first_token > 0 and t.tokens_per_second > 0
    assert result.extra["seed"] == 7


def test_entropy_and_logprob_equal_an_independent_softmax_of_the_logits(starter_model, reference_llama):  # noqa: F811
    starter_model.clear_cache()  # evaluate the prompt in one batch, as the reference does
    sampler = SamplerSettings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, seed=3, max_tokens=16)
    result = _generate(starter_model, STORY, sampler)
    ids = [s.token_id for s in result.steps]
    logp = independent_log_softmax(reference_logits(reference_llama, list(result.prompt.token_ids), ids))
    expected_entropy = -(np.exp(logp) * logp).sum(axis=1)
    expected_varentropy = (np.exp(logp) * (logp + expected_entropy[:, None]) ** 2).sum(axis=1)
    got_entropy = np.array([s.entropy for s in result.steps])
    got_logprob = np.array([s.logprob for s in result.steps])
    np.testing.assert_allclose(got_entropy, expected_entropy, atol=1e-3)
    np.testing.assert_allclose([s.varentropy for s in result.steps], expected_varentropy, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(got_logprob, logp[np.arange(len(ids)), ids], atol=1e-3)
    top_ids = [int(i) for i in np.argsort(-logp[0])[:5]]
    assert [a.token_id for a in result.steps[0].top] == top_ids
    assert len(set(np.round(got_entropy, 3))) > 1  # a real signal, not a constant


def test_same_seed_same_reply_different_seed_differs(starter_model):
    sampler = SamplerSettings(temperature=1.2, seed=1234, max_tokens=20)
    first = _generate(starter_model, STORY, sampler)
    again = _generate(starter_model, STORY, sampler)
    other = _generate(starter_model, STORY, sampler.merged({"seed": 99}))
    assert [s.token_id for s in first.steps] == [s.token_id for s in again.steps]
    assert [s.token_id for s in first.steps] != [s.token_id for s in other.steps]


def test_max_tokens_stops_with_its_reason(starter_model):
    result = _generate(starter_model, STORY, GREEDY.merged({"max_tokens": 5}))
    assert result.stop_reason == "max_tokens" and len(result.steps) == 5


def test_end_of_turn_token_stops_with_eos(starter_model):
    result = _generate(starter_model, chat(("user", "Say just the word yes.")), GREEDY.merged({"max_tokens": 60}))
    assert result.stop_reason == "eos" and 0 < len(result.steps) < 60
    assert "<|im_end|>" not in result.text


def test_cancel_from_the_token_callback_stops_at_once(starter_model):
    cancel = threading.Event()
    seen = []

    def on_token(step):
        seen.append(step)
        if len(seen) == 3:
            cancel.set()

    prompt = starter_model.render_prompt(STORY)
    result = run_generation(starter_model.generate(prompt, GREEDY.merged({"max_tokens": 100}), cancel=cancel), on_token)
    assert result.stop_reason == "cancelled" and len(result.steps) == 3 == len(seen)


def test_generation_runs_in_a_worker_thread_and_cancels_from_another(starter_model):
    cancel, started, out = threading.Event(), threading.Event(), {}

    def worker():
        stream = starter_model.generate(starter_model.render_prompt(STORY), GREEDY.merged({"max_tokens": 400}), cancel=cancel)
        out["result"] = run_generation(stream, lambda step: started.set())

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(30)
    cancel.set()
    thread.join(30)
    result = out["result"]
    assert result.stop_reason == "cancelled" and len(result.steps) < 400


def test_stop_string_ends_the_reply_before_it(starter_model):
    full = _generate(starter_model, STORY, GREEDY.merged({"max_tokens": 30}))
    words = full.text.split()
    stop = " " + words[len(words) // 2]
    cut = _generate(starter_model, STORY, GREEDY.merged({"max_tokens": 30, "stop": [stop]}))
    assert cut.stop_reason == "stop_string" and cut.extra["stop_string"] == stop
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.text == "".join(s.text for s in cut.steps)


def test_token_bias_and_exllamav2_only_settings(starter_model):
    plain = _generate(starter_model, STORY, GREEDY.merged({"max_tokens": 3}))
    banned = plain.steps[0].token_id  # the model's first choice...
    biased = _generate(starter_model, STORY, GREEDY.merged({"max_tokens": 3, "token_bias": {banned: -100.0}}))
    assert biased.steps[0].token_id != banned  # ...is gone, while telemetry still shows the raw logits
    assert biased.steps[0].top[0].token_id == banned
    with pytest.raises(UserError, match="dry_multiplier.*exllamav2"):
        starter_model.generate(plain.prompt, SamplerSettings(dry_multiplier=0.8))


def test_mirostat_and_penalties_run(starter_model):
    for extra in ({"mirostat_mode": 2, "seed": 5}, {"mirostat_mode": 1, "seed": 5},
                  {"repeat_penalty": 1.3, "repeat_last_n": -1, "frequency_penalty": 0.5, "presence_penalty": 0.5}):
        result = _generate(starter_model, STORY, GREEDY.merged({"temperature": 0.8, "max_tokens": 8, **extra}))
        assert len(result.steps) == 8


def test_russian_text_is_split_into_bytes_and_reassembled(starter_model):
    word = "бессознательное"
    pieces = starter_model.tokenize_pieces(word)
    assert len(pieces) > 1 and starter_model.count_tokens(word) == len(pieces)
    joined = b"".join(starter_model.token_bytes(t) for t, _ in pieces)
    assert joined.decode("utf-8") == word
    decoder = PieceDecoder()
    assert "".join(decoder.feed(starter_model.token_bytes(t)) for t, _ in pieces) == word
    if any("<0x" in text for _, text in pieces):  # fragments are shown as bytes, whole letters as letters
        assert all(ch in word or ch in "<0x>ABCDEF0123456789" for _, text in pieces for ch in text)


def test_russian_prompt_generation_keeps_utf8_intact(starter_model):
    messages = chat(("user", "Повтори по-русски: бессознательное, сознание, привет, мир."))
    result = _generate(starter_model, messages, SamplerSettings(temperature=0.9, seed=11, max_tokens=40))
    raw = starter_model._llm.detokenize([s.token_id for s in result.steps])
    assert result.text == raw.decode("utf-8", "ignore")
    assert "\ufffd" not in result.text


def test_prompt_has_special_tokens_and_a_single_bos(starter_model):
    prompt = starter_model.render_prompt(chat(("user", "Hi")))
    start = starter_model._llm.tokenize(b"<|im_start|>", add_bos=False, special=True)
    # one token per marker (special tokens parsed): the template's default system turn, the user turn, the reply
    assert len(start) == 1 and prompt.token_ids.count(start[0]) == prompt.text.count("<|im_start|>") == 3
    assert prompt.text.endswith("<|im_start|>assistant\n")
    bos = starter_model._llm.token_bos()
    assert list(prompt.token_ids[:2]).count(bos) <= 1


def test_context_full_is_reported(starter_model):
    long = chat(("user", "word " * 3000))
    result = _generate(starter_model, long, GREEDY)
    assert result.stop_reason == "context_full" and result.steps == ()


def test_missing_model_names_the_path_and_the_fix(make_config, tmp_path):
    from agent.llm.llamacpp.model import load

    with pytest.raises(ModelError, match=r"nowhere\.gguf.*models list"):
        load(make_config('[llm]\nmodel = "nowhere.gguf"\n'))


def test_corrupt_models_are_refused_clearly(make_config, tmp_path, smollm2_path):  # noqa: F811
    from agent.llm.llamacpp.model import load

    (tmp_path / "junk.gguf").write_bytes(b"this is not a model" * 100)
    with pytest.raises(ModelError, match=r"junk\.gguf: not a valid GGUF"):
        load(make_config('[llm]\nmodel = "junk.gguf"\n'))
    data = smollm2_path.read_bytes()
    (tmp_path / "half.gguf").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"half\.gguf"):
        load(make_config('[llm]\nmodel = "half.gguf"\n'))


def test_a_folder_with_one_gguf_is_accepted_and_several_are_refused(tmp_path):
    from agent.llm.llamacpp.load import pick_gguf

    folder = tmp_path / "smol"
    folder.mkdir()
    (folder / "a.gguf").write_bytes(b"GGUF")
    assert pick_gguf(folder) == folder / "a.gguf"
    (folder / "b.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelError, match="2 .gguf files"):
        pick_gguf(folder)


def test_weights_are_hashed_once(tmp_path, monkeypatch):
    import hashlib

    from agent.file_hash import file_sha256

    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"weights" * 1000)
    cache = tmp_path / "hashes.json"
    first = file_sha256(weights, cache)
    assert first == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert str(weights.resolve()) in cache.read_text()
    monkeypatch.setattr(hashlib, "sha256", lambda: (_ for _ in ()).throw(AssertionError("hashed twice")))
    assert file_sha256(weights, cache) == first
    weights.write_bytes(b"changed")
    with pytest.raises(AssertionError, match="hashed twice"):
        file_sha256(weights, cache)  # a changed file is hashed again


def test_stop_matcher_holds_back_partial_stop_strings():
    from agent.llm.base import TokenStep

    def step(i, text):
        return TokenStep(index=i, token_id=i, text=text, logprob=None, entropy=None)

    matcher = StopMatcher(("END",))
    assert [s.text for s in matcher.feed(step(0, "abc E"))] == []  # could be the start of END
    assert [s.text for s in matcher.feed(step(1, "x"))] == ["abc E", "x"]
    assert [s.text for s in matcher.feed(step(2, "yE"))] == []
    released = matcher.feed(step(3, "NDzz"))
    assert [s.text for s in released] == ["y"] and matcher.matched == "END"


def test_llama_cpp_prints_nothing_on_the_terminal(tmp_path):
    import subprocess
    import sys

    script = (
        "from agent.config_load import load_config\n"
        "from agent.llm.llamacpp.model import load\n"
        "from agent.llm.base import ChatMessage, run_generation\n"
        "from agent.llm.sampler import SamplerSettings\n"
        "m = load(load_config(None, env={'EPISTEMIC_LLM__CONTEXT_SIZE': '512'}))\n"
        "r = run_generation(m.generate(m.render_prompt([ChatMessage('user', 'Hi')]), SamplerSettings(max_tokens=3, seed=1)))\n"
        "m.close()\n"
        "print(len(r.steps))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and done.stdout.strip() in {"1", "2", "3"}


@pytest.mark.parametrize("n_vocab", [49152, 32001, 300, 129, 5])
@pytest.mark.parametrize("scale", [0.05, 3.0, 12.0])
def test_fast_logit_statistics_match_the_reference_math(n_vocab, scale):
    from agent.llm.llamacpp.sampling import LogitsStats
    from agent.llm.telemetry import entropy_varentropy_logprob, top_k

    rng = np.random.default_rng(n_vocab)
    stats = LogitsStats(n_vocab)
    stats.logits = (rng.standard_normal(n_vocab) * scale).astype(np.float32)
    entropy, varentropy, logprob, top = stats.stats(n_vocab // 2, 5)
    ref_entropy, ref_varentropy, ref_logprob = entropy_varentropy_logprob(stats.logits, n_vocab // 2)
    assert entropy == pytest.approx(ref_entropy, abs=1e-4) and logprob == pytest.approx(ref_logprob, abs=1e-4)
    assert varentropy == pytest.approx(ref_varentropy, rel=1e-4, abs=1e-4)
    logp = independent_log_softmax(stats.logits[None, :].astype(np.float64))[0]  # straight from the definition
    p = np.exp(logp)
    assert ref_varentropy == pytest.approx(float((p * logp**2).sum() - ((p * logp).sum()) ** 2), rel=1e-6, abs=1e-9)
    expected = top_k(stats.logits, 5)
    assert [i for i, _ in top] == [i for i, _ in expected]
    assert [lp for _, lp in top] == pytest.approx([lp for _, lp in expected], abs=1e-4)
