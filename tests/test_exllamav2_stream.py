"""The exllamav2 backend's telemetry, stream helpers and generate loop without CUDA: the loop is
driven by a stand-in generator that speaks exllamav2's documented iterate() protocol."""

from __future__ import annotations

import numpy as np
import pytest

from agent.errors import ModelError
from agent.llm.exllamav2.settings import ExLlamaV2Settings
from agent.llm.exllamav2.stream import DraftFlags, chunk_telemetry, split_chunk_text
from agent.llm.sampler import SamplerSettings
from agent.llm.telemetry import entropy_varentropy_logprob, top_k

# ---------------------------------------------------------------- sampler mapping


# ---------------------------------------------------------------- telemetry and stream helpers


def test_chunk_telemetry_equals_numpy_reference():
    import torch

    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(3, 160)).astype(np.float32)
    logits[:, 150:] = -np.inf  # exllamav2 masks its vocabulary padding
    ids = [4, 77, 149]
    rows = chunk_telemetry(torch.from_numpy(logits).unsqueeze(0), ids, 5)
    for row, token, (entropy, varentropy, logprob, alts) in zip(logits, ids, rows, strict=True):
        ref_entropy, ref_varentropy, ref_logprob = entropy_varentropy_logprob(row, token)
        assert entropy == pytest.approx(ref_entropy, rel=1e-6) and logprob == pytest.approx(ref_logprob, rel=1e-6)
        assert varentropy == pytest.approx(ref_varentropy, rel=1e-6) and varentropy > 0
        assert [a for a, _ in alts] == [a for a, _ in top_k(row, 5)]
        assert all(np.isfinite(v) for _, v in alts)


def test_chunk_text_is_shared_out_and_joins_back():
    assert split_chunk_text([" Hel", "lo", "!"], " Hello!") == [" Hel", "lo", "!"]
    assert split_chunk_text(["\ufffd", "\ufffd"], "Ж") == ["Ж", ""]
    assert split_chunk_text([" A", " <", "|end"], " A") == [" A", "", ""]
    assert split_chunk_text(["x"], "xyz") == ["xyz"]
    assert split_chunk_text([], "") == []


def test_draft_flags_follow_iterations():
    flags = DraftFlags()
    flags.record(accepted_total=3, generated_total=4)  # 3 drafts accepted, then the model's token
    flags.record(accepted_total=3, generated_total=5)  # a rejection: only the model's token
    assert [flags.take() for _ in range(6)] == [True, True, True, False, False, None]


# ---------------------------------------------------------------- no CUDA here


# ---------------------------------------------------------------- the generate loop, with a stand-in generator
# exllamav2 cannot be imported without CUDA, so this drives ExLlamaV2Model.generate with a stand-in
# that speaks the documented iterate() protocol (stages, token_ids, text, logits, eos, draft counters).

PIECES = [f"<{i}>" for i in range(4)] + [f" w{i}" for i in range(4, 64)]


class _Job:
    def __init__(self, plan):
        self.plan, self.new_tokens, self.accepted_draft_tokens, self.rejected_draft_tokens = list(plan), 0, 0, 0
        self.is_finished, self.sent = False, []


class _Generator:
    def __init__(self):
        self.active_jobs, self.pending_jobs, self.current_loras = [], [], None

    def enqueue(self, job):
        self.pending_jobs.append(job)

    def num_remaining_jobs(self):
        return len(self.active_jobs) + len(self.pending_jobs)

    def clear_queue(self):
        self.active_jobs.clear()
        self.pending_jobs.clear()

    def cancel(self, job):
        for queue in (self.active_jobs, self.pending_jobs):
            if job in queue:
                queue.remove(job)

    def set_loras(self, loras):
        assert not self.num_remaining_jobs()
        self.current_loras = loras

    def iterate(self):
        import torch

        results = []
        while self.pending_jobs:
            job = self.pending_jobs.pop(0)
            self.active_jobs.append(job)
            results.append({"job": job, "stage": "started"})
        for job in list(self.active_jobs):
            ids, accepted = job.plan.pop(0)
            job.new_tokens += len(ids)
            job.accepted_draft_tokens += accepted
            job.rejected_draft_tokens += 4 - accepted
            logits = torch.randn(1, len(ids), 64)
            job.sent.append(logits)
            r = {"job": job, "stage": "streaming", "eos": not job.plan, "text": "".join(PIECES[i] for i in ids),
                 "token_ids": torch.tensor([ids]), "logits": logits}
            if not job.plan:
                r["eos_reason"] = "max_new_tokens"
                job.is_finished = True
                self.active_jobs.remove(job)
            results.append(r)
        return results


class _Tokenizer:
    eos_token_id = 0

    def get_id_to_piece_list(self, special):
        return PIECES


def _standin_model(plan):
    from types import SimpleNamespace

    from agent.llm.base import ModelInfo
    from agent.llm.exllamav2.model import ExLlamaV2Model

    parts = SimpleNamespace(config=SimpleNamespace(max_seq_len=256, vocab_size=64), model=None, draft_model=None)
    info = ModelInfo(backend="exllamav2", model_id="standin", path="/nonexistent", file_hash="", context_size=256)
    model = ExLlamaV2Model(parts, _Tokenizer(), _Generator(), None, info, ExLlamaV2Settings(ngram_draft=True))
    job = _Job(plan)
    model._job = lambda prompt, sampler, max_new: job
    return model, job


def test_generate_streams_steps_with_telemetry_and_draft_stats():
    from agent.llm.base import PreparedPrompt, run_generation

    plan = [([5, 6, 7], 2), ([8], 0), ([9, 10, 11, 12, 13], 4)]
    model, job = _standin_model(plan)
    result = run_generation(model.generate(PreparedPrompt("p", (1, 2)), SamplerSettings(max_tokens=50, top_logprobs=3)))
    assert [s.token_id for s in result.steps] == [5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert [s.index for s in result.steps] == list(range(9))
    assert result.text == "".join(PIECES[i] for i in range(5, 14)) and result.stop_reason == "max_tokens"
    assert [s.accepted_draft for s in result.steps] == [True, True, False, False, True, True, True, True, False]
    assert (result.speculative.method, result.speculative.accepted, result.speculative.proposed) == ("ngram", 6, 12)
    logits = np.concatenate([t.reshape(-1, 64).numpy() for t in job.sent])
    for step, row in zip(result.steps, logits, strict=True):
        entropy, varentropy, logprob = entropy_varentropy_logprob(row, step.token_id)
        assert step.entropy == pytest.approx(entropy, rel=1e-6) and step.logprob == pytest.approx(logprob, rel=1e-6)
        assert step.varentropy == pytest.approx(varentropy, rel=1e-6)
        assert [a.token_id for a in step.top] == [a for a, _ in top_k(row, 3)]
    assert result.timings.completion_tokens == 9 and model.generator.num_remaining_jobs() == 0


def test_generate_cancels_between_tokens_and_frees_the_queue():
    import threading

    from agent.llm.base import PreparedPrompt, run_generation

    model, job = _standin_model([([5], 0)] * 20)
    cancel = threading.Event()

    def on_token(step):
        if step.index == 2:
            cancel.set()

    result = run_generation(model.generate(PreparedPrompt("p", (1,)), SamplerSettings(), cancel=cancel), on_token)
    assert result.stop_reason == "cancelled" and 3 <= len(result.steps) <= 4
    assert model.generator.num_remaining_jobs() == 0 and len(job.plan) > 10


def test_prompt_that_fills_the_context_is_refused():
    from agent.llm.base import PreparedPrompt, run_generation

    model, _ = _standin_model([([5], 0)])
    with pytest.raises(ModelError, match="does not fit the context of 256"):
        run_generation(model.generate(PreparedPrompt("p", tuple(range(300))), SamplerSettings()))
