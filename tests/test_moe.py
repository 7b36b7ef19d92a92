"""MoE routing telemetry on a fabricated Mixtral-style GGUF through the real llama.cpp backend."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.llm.base import ChatMessage, GenerationResult, MoERouting, PreparedPrompt, run_generation
from agent.llm.sampler import SamplerSettings
from agent.log import DialogueLog
from agent.log.migrations import MIGRATIONS, apply_migration
from agent.log.moe_codec import MoECodecError, decode_routing, encode_routing, read_routing
from agent.runtime import build_runtime
from tests.moe_fixtures import MoEDims, moe_off, moe_on, tiny_moe_gguf  # noqa: F401  (fixtures)

DIMS = MoEDims()
GREEDY = SamplerSettings(temperature=0.0, max_tokens=24)


def _reply(model: Any, text: str = "hello there, how are you?", sampler: SamplerSettings = GREEDY) -> GenerationResult:
    prompt = model.render_prompt([ChatMessage("user", text)])
    return run_generation(model.generate(prompt, sampler))


def test_every_token_and_layer_is_routed_to_k_distinct_experts(moe_on: Any) -> None:  # noqa: F811
    result = _reply(moe_on)
    routing = result.moe_routing
    assert result.extra["moe_routing"] == "captured" and routing is not None and result.steps
    n, k = len(result.steps), DIMS.n_expert_used
    assert routing.token_index == tuple(s.index for s in result.steps)
    assert routing.layers == tuple(range(DIMS.n_layer)) and routing.n_experts == DIMS.n_expert
    assert routing.experts.shape == (n, DIMS.n_layer, k) and routing.weights.shape == (n, DIMS.n_layer, k)
    assert ((routing.experts >= 0) & (routing.experts < DIMS.n_expert)).all()
    assert all(len(set(row)) == k for row in routing.experts.reshape(-1, k).tolist())
    assert routing.normalized and np.allclose(routing.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert (np.diff(routing.weights, axis=-1) <= 1e-6).all()  # best expert first
    assert ((routing.entropy >= 0) & (routing.entropy <= math.log(DIMS.n_expert) + 1e-5)).all()
    usage = routing.usage()
    assert usage.shape == (DIMS.n_layer, DIMS.n_expert) and usage.sum() == n * DIMS.n_layer * k
    assert (usage.sum(axis=1) == n * k).all()


def _layer0_router(gguf: Path, token: int) -> np.ndarray:
    """Layer 0's router logits for a one-token prompt, computed here from the GGUF's weights: with a
    single position attention is the token's own value vector, so no attention kernel is needed."""
    from gguf import GGUFReader

    weights = {t.name: np.asarray(t.data, dtype=np.float64) for t in GGUFReader(str(gguf)).tensors}
    head_dim = DIMS.n_embd // DIMS.n_head

    def rms(x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x / np.sqrt(np.mean(x * x) + 1e-5) * w

    x = weights["token_embd.weight"][token]
    v = weights["blk.0.attn_v.weight"] @ rms(x, weights["blk.0.attn_norm.weight"])
    group = DIMS.n_head // DIMS.n_head_kv
    heads = np.concatenate([v[(h // group) * head_dim:(h // group + 1) * head_dim] for h in range(DIMS.n_head)])
    h = x + weights["blk.0.attn_output.weight"] @ heads
    return weights["blk.0.ffn_gate_inp.weight"] @ rms(h, weights["blk.0.ffn_norm.weight"])


def test_the_first_tokens_layer0_routing_matches_the_router_computed_independently(moe_on: Any, tiny_moe_gguf: Path) -> None:  # noqa: F811
    token = moe_on._llm.token_bos()
    result = run_generation(moe_on.generate(PreparedPrompt(text="", token_ids=(token,)), GREEDY))
    assert result.moe_routing is not None and result.moe_routing.token_index[0] == 0
    logits = _layer0_router(tiny_moe_gguf, token)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    chosen = np.argsort(-probs)[: DIMS.n_expert_used]
    assert result.moe_routing.experts[0, 0].tolist() == chosen.tolist()
    assert np.allclose(result.moe_routing.weights[0, 0], probs[chosen] / probs[chosen].sum(), atol=1e-4)
    assert result.moe_routing.entropy[0, 0] == pytest.approx(-(probs * np.log(probs)).sum(), abs=1e-4)


def test_capture_does_not_change_the_tokens_and_off_records_nothing(moe_on: Any, moe_off: Any) -> None:  # noqa: F811
    for text in ("hello there", "the weather in the north"):
        on, off = _reply(moe_on, text), _reply(moe_off, text)
        assert [s.token_id for s in on.steps] == [s.token_id for s in off.steps]
        assert off.moe_routing is None and off.extra["moe_routing"] == "off" and moe_off.moe is None
        assert not moe_off._llm.context_params.cb_eval  # no callback installed at all


def test_a_stop_string_keeps_routing_aligned_with_the_kept_tokens(moe_on: Any) -> None:  # noqa: F811
    free = _reply(moe_on, "tell me more")
    assert len(free.steps) > 4
    stop = "".join(s.text for s in free.steps[3:5])
    stopped = _reply(moe_on, "tell me more", GREEDY.model_copy(update={"stop": (stop,)}))
    assert stopped.stop_reason == "stop_string" and stopped.moe_routing is not None
    assert stopped.moe_routing.token_index == tuple(s.index for s in stopped.steps)
    assert (stopped.moe_routing.experts == free.moe_routing.experts[: len(stopped.steps)]).all()  # type: ignore[union-attr]


def test_a_dense_model_says_so_and_has_no_callback(starter_model: Any) -> None:
    result = _reply(starter_model, "Hi")
    assert result.moe_routing is None and result.extra["moe_routing"] == "dense"
    assert starter_model.moe is None and not starter_model._llm.context_params.cb_eval


def test_routing_is_stored_with_the_turn_and_reads_back(make_config: Any, moe_on: Any) -> None:  # noqa: F811
    runtime = build_runtime(make_config("[sampler]\ntemperature = 0\nmax_tokens = 16\n"), model=moe_on)
    assert runtime.log is not None
    try:
        finished = runtime.engine.respond("hello there")
        assert finished is not None and finished.turn_id is not None
        routing = finished.result.moe_routing
        assert routing is not None
        stored = read_routing(runtime.log, finished.turn_id)
        assert stored is not None and stored.token_index == routing.token_index and stored.layers == routing.layers
        assert (stored.experts == routing.experts).all() and np.array_equal(stored.weights, routing.weights)
        assert np.array_equal(stored.entropy, routing.entropy) and stored.normalized
        assert (stored.usage() == routing.usage()).all()
        assert len(runtime.log.token_steps(finished.turn_id)) == len(stored.token_index)
        assert runtime.log.get_turn(finished.turn_id).data["extra"]["moe_routing"] == "captured"
    finally:
        runtime.log.close()


def test_capture_off_stores_no_routing(make_config: Any, moe_off: Any) -> None:  # noqa: F811
    runtime = build_runtime(make_config("[sampler]\ntemperature = 0\nmax_tokens = 8\n"), model=moe_off)
    assert runtime.log is not None
    try:
        finished = runtime.engine.respond("hello")
        assert finished is not None and finished.turn_id is not None and read_routing(runtime.log, finished.turn_id) is None
        with runtime.log.snapshot() as conn:
            assert conn.execute("SELECT COUNT(*) FROM moe_routing").fetchone()[0] == 0
    finally:
        runtime.log.close()


def _routing(n: int = 3) -> MoERouting:
    rng = np.random.default_rng(1)
    return MoERouting(
        n_experts=8, layers=(1, 3), token_index=tuple(range(n)),
        experts=rng.integers(0, 8, size=(n, 2, 2)).astype(np.int32),
        weights=rng.random((n, 2, 2)).astype(np.float32), entropy=rng.random((n, 2)).astype(np.float32),
    )


def test_the_codec_round_trips_and_refuses_damage() -> None:
    routing = _routing()
    back = decode_routing(encode_routing(routing))
    assert (back.layers, back.token_index, back.n_experts, back.normalized) == ((1, 3), (0, 1, 2), 8, False)
    assert (back.experts == routing.experts).all() and np.array_equal(back.weights, routing.weights)
    blob = encode_routing(routing)
    for bad in (b"", bytes([9]) + blob[1:], blob[:-4], blob[:1] + b"garbage"):
        with pytest.raises(MoECodecError) as caught:
            decode_routing(bad)
        assert "\n" not in str(caught.value)


def test_a_damaged_row_is_a_clear_error_and_a_v4_log_migrates(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("BEGIN")
    for migration in MIGRATIONS[:4]:
        apply_migration(raw, migration)
    raw.execute("COMMIT")
    raw.close()
    with DialogueLog(path) as log:
        with log.transaction("test") as conn:
            conn.execute("INSERT INTO conversations (id, persona, started_at, updated_at) VALUES (1, 'p', 1, 1)")
            conn.execute("INSERT INTO turns (id, conversation_id, role, text, created_at) VALUES (5, 1, 'assistant', 'a', 1)")
            conn.execute("INSERT INTO moe_routing VALUES (5, 2, 8, ?)", (b"\x01broken",))
        with pytest.raises(MoECodecError, match="turn 5: MoE routing blob is corrupt"):
            read_routing(log, 5)
        assert read_routing(log, 6) is None


def test_the_three_split_fallback_records_the_same_routing(moe_on: Any) -> None:  # noqa: F811
    one = _reply(moe_on, "one two three").moe_routing
    moe_on.moe.one_split = False  # as if ffn_moe_weights' sources had other names
    try:
        three = _reply(moe_on, "one two three").moe_routing
    finally:
        moe_on.moe.one_split = True
    assert one is not None and three is not None and one.token_index == three.token_index
    assert (one.experts == three.experts).all() and one.normalized and three.normalized
    assert np.allclose(one.weights, three.weights, atol=1e-6) and np.allclose(one.entropy, three.entropy, atol=1e-5)


def test_sigmoid_gates_get_the_entropy_of_the_softmax_of_their_logits() -> None:
    from agent.llm.llamacpp.moe import router_entropy

    logits = np.array([[2.0, -1.0, 0.5, 0.0]])
    softmax = np.exp(logits) / np.exp(logits).sum()
    expected = -(softmax * np.log(softmax)).sum()
    assert router_entropy(logits, probabilities=False)[0] == pytest.approx(expected)
    assert router_entropy(softmax, probabilities=True)[0] == pytest.approx(expected)
    assert router_entropy(1 / (1 + np.exp(-logits)), probabilities=True)[0] == pytest.approx(expected, abs=1e-6)


def test_log_show_moe_prints_usage_and_each_tokens_experts(make_config: Any, moe_on: Any, moe_off: Any) -> None:  # noqa: F811
    from click.testing import CliRunner

    from agent.cli.log_cmd import log as log_group

    config = make_config("[sampler]\ntemperature = 0\nmax_tokens = 6\n")
    for model in (moe_on, moe_off):
        runtime = build_runtime(config, model=model)
        assert runtime.log is not None
        runtime.engine.set_sampler(max_tokens=6)
        finished = runtime.engine.respond("hello")
        assert finished is not None and finished.turn_id is not None
        conversation = runtime.log.get_turn(finished.turn_id).conversation_id
        routing = finished.result.moe_routing
        runtime.log.close()
        text = CliRunner().invoke(log_group, ["show", str(conversation), "--moe"], obj={"config": config})
        data = CliRunner().invoke(log_group, ["show", str(conversation), "--moe", "--json"], obj={"config": config})
        assert text.exit_code == 0 and data.exit_code == 0, text.output
        [reply] = [t for t in json.loads(data.output)["turns"] if t["role"] == "assistant"]
        if routing is None:
            assert "[MoE: mixture-of-experts model; routing not recorded ([llm] moe_routing = false)]" in text.output
            assert reply["moe_routing"] is None
            continue
        assert "expert usage over 6 tokens (top-2 of 4 experts)" in text.output
        first = " ".join(f"e{int(e)} {float(w):.2f}" for e, w in zip(routing.experts[0, 0], routing.weights[0, 0], strict=True))
        assert f"#0    {finished.result.steps[0].text!r:<12} L0 {first} H{float(routing.entropy[0, 0]):.2f}" in text.output
        assert reply["moe_routing"]["experts"] == routing.experts.tolist()
        assert reply["moe_routing"]["usage"] == routing.usage().tolist()


def test_a_build_without_the_ggml_symbols_chats_on_without_capture(
    tmp_path: Path, tiny_moe_gguf: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    from agent.llm.llamacpp import moe as moe_module
    from agent.log.moe_view import moe_status_line
    from tests.moe_fixtures import load_tiny_moe

    def missing(self: object) -> None:
        raise AttributeError("undefined symbol: ggml_get_name")

    monkeypatch.setattr(moe_module._Ggml, "__init__", missing)
    model = load_tiny_moe(tmp_path, tiny_moe_gguf, capture=True)
    try:
        result = _reply(model, "hello")
        assert result.steps and result.moe_routing is None and model.moe is None
        assert result.extra["moe_routing"] == "unavailable" and not model._llm.context_params.cb_eval
        assert "cannot report routing" in moe_status_line(result.extra["moe_routing"])
    finally:
        model.close()
