"""The openai backend against a real OpenAI-compatible server (llama-cpp-python's) with the starter model."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from agent.config_load import load_config
from agent.errors import GenerationFailed, ModelError, UserError
from agent.events import ReplyToken
from agent.llm import load_backend
from agent.llm.base import ChatMessage, run_generation
from agent.llm.openai.errors import ServerRefused, ServerUnreachable
from agent.llm.openai.telemetry import top_k_entropy_lower_bound
from agent.llm.sampler import SamplerSettings
from agent.runtime import build_runtime
from tests.openai_server import LlamaServer, free_port

KEY_ENV = "EE_TEST_OPENAI_KEY"
KEY = "test-key-1234"
GREEDY = SamplerSettings(temperature=0.0, max_tokens=16, top_k=0, min_p=0.0, repeat_penalty=1.0)
QUESTION = [ChatMessage("user", "Name three colours.")]


def openai_toml(base_url: str, model: str = "smollm2", extra: str = "") -> str:
    return f'[llm]\nbackend = "openai"\ncontext_size = 2048\n[openai]\nbase_url = "{base_url}"\nmodel = "{model}"\napi_key_env = "{KEY_ENV}"\n{extra}'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A key-protected server serving the starter model as ``smollm2`` and as ``stoic-lora``, a
    stand-in for a LoRA adapter served under its own name: the same file with another chat format,
    so what it answers shows which model a request reached."""
    from agent.llm.starter import starter_llm_path

    work = tmp_path_factory.mktemp("openai-server")
    path = starter_llm_path()
    (work / "stoic-lora.gguf").symlink_to(path)
    os.environ[KEY_ENV] = KEY
    models = {"smollm2": path, "stoic-lora": work / "stoic-lora.gguf"}
    srv = LlamaServer(work, models, api_key=KEY, overrides={"stoic-lora": {"chat_format": "llama-2"}}).start()
    yield srv
    srv.stop()
    os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def remote(server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    config = tmp_path_factory.mktemp("openai-config") / "config.toml"
    config.write_text(openai_toml(server.base_url), encoding="utf-8")
    model = load_backend(load_config(config, env={}))
    yield model
    model.close()


@pytest.fixture
def key(server: LlamaServer) -> Iterator[None]:
    """The right key in the environment again after a test that changes it."""
    yield
    os.environ[KEY_ENV] = KEY


def test_a_reply_streams_with_server_logprobs_and_a_true_entropy_lower_bound(remote, starter_model):
    result = run_generation(remote.generate(remote.render_prompt(QUESTION), GREEDY))
    assert result.stop_reason in ("eos", "max_tokens") and len(result.steps) >= 5
    assert "".join(s.text for s in result.steps) == result.text and result.text.strip()
    assert result.extra["entropy"] == "top_k_lower_bound" and result.extra["logprob"] == "server"
    exact = run_generation(starter_model.generate(starter_model.render_prompt(QUESTION), GREEDY))
    same = 0
    for remote_step, local in zip(result.steps, exact.steps, strict=False):
        if remote_step.text != local.text:
            break
        same += 1
        assert len(remote_step.top) == 5 and remote_step.top[0].logprob >= remote_step.top[-1].logprob
        assert remote_step.logprob == pytest.approx(local.logprob, abs=0.05)  # the same raw softmax
        assert remote_step.entropy is not None and local.entropy is not None
        assert remote_step.entropy <= local.entropy + 0.02  # a lower bound of the exact entropy
    assert same >= 5, (result.text, exact.text)


@pytest.mark.parametrize("seed", [1, 2])
def test_top_k_reaches_the_server_through_the_extra_body(remote, seed):
    greedy = run_generation(remote.generate(remote.render_prompt(QUESTION), GREEDY)).text
    hot = GREEDY.merged({"temperature": 1.8, "top_k": 1, "seed": seed})
    assert run_generation(remote.generate(remote.render_prompt(QUESTION), hot)).text == greedy


def test_samplers_a_server_cannot_honour_are_refused_by_name(remote):
    remote.check_sampler(SamplerSettings(top_k=20, min_p=0.1, repeat_penalty=1.2, seed=3, stop=("\n",)))
    with pytest.raises(UserError, match="dry_multiplier, mirostat_mode"):
        remote.check_sampler(SamplerSettings(mirostat_mode=2, dry_multiplier=0.8))
    with pytest.raises(UserError, match="typical_p"):
        run_generation(remote.generate(remote.render_prompt(QUESTION), SamplerSettings(typical_p=0.5)))


def test_cancel_mid_stream_stops_at_once_and_the_server_goes_on(remote):
    cancel = threading.Event()
    count = 0
    set_at = 0.0

    def on_token(_: object) -> None:
        nonlocal count, set_at
        count += 1
        if count == 3:
            cancel.set()
            set_at = time.perf_counter()

    prompt = remote.render_prompt(QUESTION)
    result = run_generation(remote.generate(prompt, GREEDY.merged({"max_tokens": 200}), cancel=cancel), on_token)
    assert result.stop_reason == "cancelled" and len(result.steps) == 3
    assert time.perf_counter() - set_at < 0.2
    assert run_generation(remote.generate(prompt, GREEDY)).stop_reason in ("eos", "max_tokens")


def test_cancel_while_the_server_reads_a_long_prompt_closes_the_stream(remote):
    long = [ChatMessage("user", "Summarise: " + "a red fox runs past the old mill by the river. " * 120)]
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    started = time.perf_counter()
    timer.start()
    result = run_generation(remote.generate(remote.render_prompt(long), GREEDY.merged({"max_tokens": 300}), cancel=cancel))
    assert result.stop_reason == "cancelled"
    assert time.perf_counter() - started < 0.3 + 0.5  # not waiting for the first token or a ping


def test_the_prompt_is_logged_as_the_messages_sent(server, make_config):
    rt = build_runtime(make_config(openai_toml(server.base_url, extra="") + "[sampler]\nmax_tokens = 12\ntemperature = 0.0\n"))
    try:
        finished = rt.engine.respond("Hello there.")
        assert finished is not None
        turn = rt.log.get_turn(finished.turn_id)
        sent = json.loads(turn.data["prompt_text"])
        assert sent[-1] == {"role": "user", "content": "Hello there."} and sent[0]["role"] == "system"
        assert turn.data["backend"] == "openai" and turn.data["prompt_tokens"] > 5
        assert turn.data["extra"]["entropy"] == "top_k_lower_bound"
    finally:
        rt.log.close()


def test_the_server_tokenizer_splits_text_like_the_model(remote, starter_model):
    text = "Hello world, how are you?"
    assert [t for t, _ in remote.tokenize_pieces(text)] == [t for t, _ in starter_model.tokenize_pieces(text)]
    assert remote.count_tokens(text) == starter_model.count_tokens(text)


def test_a_wrong_api_key_is_one_clear_line_and_the_conversation_goes_on(server, make_config, key):
    rt = build_runtime(make_config(openai_toml(server.base_url) + "[sampler]\nmax_tokens = 8\n"))
    try:
        os.environ[KEY_ENV] = "wrong"
        with pytest.raises(GenerationFailed) as failed:
            rt.engine.respond("Hi.")
        cause = failed.value.__cause__
        assert isinstance(cause, ServerRefused) and cause.status == 401
        assert str(cause) == f"openai backend: {server.base_url} refused the API key (401); set the variable named in [openai] api_key_env ({KEY_ENV})"
        turn = rt.log.conversation_turns(rt.engine.conversation_id)[-1]
        assert turn.data["stop_reason"] == "error" and "401" in turn.data["error"] and rt.engine.history == []
        os.environ[KEY_ENV] = KEY
        assert rt.engine.respond("Hi again.") is not None and len(rt.engine.history) == 2
    finally:
        rt.log.close()
    os.environ.pop(KEY_ENV)
    with pytest.raises(ServerRefused, match=rf"refused the API key \(401\).*\({KEY_ENV}, which is not set\)"):
        load_backend(make_config(openai_toml(server.base_url)))


def test_a_model_the_server_does_not_serve_is_named_at_load(server, make_config):
    with pytest.raises(ServerRefused, match="does not serve model 'nope'; it serves smollm2, stoic-lora"):
        load_backend(make_config(openai_toml(server.base_url, model="nope")))


def test_a_server_that_is_down_is_one_clear_line(make_config):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerUnreachable, match=rf"^openai backend: cannot reach {url} \(.+\); start the server or fix \[openai\] base_url$"):
        load_backend(make_config(openai_toml(url)))


def test_a_persona_adapter_goes_to_the_served_adapter_model(remote):
    prompt = remote.render_prompt(QUESTION)
    base = run_generation(remote.generate(prompt, GREEDY)).text
    try:
        remote.set_adapters([("/home/me/adapters/stoic-lora", 1.0)])
        assert remote.info.adapters == ({"path": "/home/me/adapters/stoic-lora", "scale": 1.0, "served_as": "stoic-lora"},)
        result = run_generation(remote.generate(prompt, GREEDY))
        assert result.extra["openai"]["model"] == "stoic-lora" and result.text != base
        with pytest.raises(ModelError, match="does not serve adapter model 'calm'; it serves smollm2, stoic-lora"):
            remote.set_adapters([("adapters/calm", 1.0)])
        with pytest.raises(UserError, match="scale 0.5"):
            remote.set_adapters([("stoic-lora", 0.5)])
    finally:
        remote.set_adapters([])
    assert run_generation(remote.generate(prompt, GREEDY)).text == base and remote.info.adapters == ()


def test_the_server_killed_mid_reply_fails_the_turn_clearly_and_a_restart_continues(make_config, tmp_path):
    from agent.llm.starter import starter_llm_path

    srv = LlamaServer(tmp_path, {"smollm2": starter_llm_path()}).start()
    try:
        rt = build_runtime(make_config(openai_toml(srv.base_url) + "[sampler]\nmax_tokens = 200\ntemperature = 0.0\n"))
        seen = 0

        def kill_at_third_token(event: object) -> None:
            nonlocal seen
            if isinstance(event, ReplyToken):
                seen += 1
                if seen == 3:
                    srv.kill()

        with pytest.raises(GenerationFailed) as failed:
            rt.engine.respond("Tell me a long story about a fox.", on_event=kill_at_third_token)
        message = str(failed.value.__cause__)
        assert message.startswith(f"openai backend: the reply from {srv.base_url} was cut after ") and "\n" not in message
        turn = rt.log.conversation_turns(rt.engine.conversation_id)[-1]
        assert turn.data["stop_reason"] == "error" and turn.interrupted and len(rt.log.token_steps(turn.id)) >= 3
        with pytest.raises(GenerationFailed, match="cannot reach"):
            rt.engine.respond("Are you there?")
        srv.start()
        assert rt.engine.respond("Are you back?") is not None and len(rt.engine.history) == 2
        rt.log.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("seed", range(30))
def test_the_top_k_bound_never_exceeds_the_exact_entropy(seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(int(rng.integers(3, 60)), float(rng.choice([0.05, 0.5, 5.0]))))
    exact = float(-np.sum(p[p > 0] * np.log(p[p > 0])))
    order = np.argsort(-p)
    k = int(rng.integers(1, 8))
    top = [math.log(x) for x in p[order[:k]] if x > 0]
    bound = top_k_entropy_lower_bound(top, k)
    known = -sum(math.exp(lp) * lp for lp in top)
    assert bound is not None and known - 1e-9 <= bound <= exact + 1e-9
    # byte-fragment collision: a top entry lost, the rest still true -> still a lower bound
    if len(top) >= 2:
        collided = top_k_entropy_lower_bound([lp for i, lp in enumerate(top) if i != len(top) // 2], k)
        assert collided is not None and known - 1.0 <= collided <= exact + 1e-9
    if k >= len(p):
        assert bound == pytest.approx(exact)
