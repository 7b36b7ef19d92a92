"""The openai backend's overhead: tok/s and time to first token, ours vs a bare openai SDK stream.

Starts llama-cpp-python's OpenAI-compatible server with the starter model on a free local port (or
uses ``--base-url``), then alternates ROUNDS greedy replies to the same prompt: through our backend
(``OpenAIModel.generate`` driven by ``run_generation``) and through the openai SDK directly, both
asking for the same logprobs, so the server does the same work. Prints the medians, the tok/s
ratio (target >= 0.95) and the time-to-first-token overhead; also what ``render_prompt`` costs
(one tokenize request, made by the engine before the reply starts).

    .venv/bin/python bench/bench_remote.py [--rounds 6] [--max-tokens 32] [--base-url URL --model NAME]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config_load import load_config  # noqa: E402
from agent.llm import load_backend  # noqa: E402
from agent.llm.base import ChatMessage, run_generation  # noqa: E402
from agent.llm.sampler import SamplerSettings  # noqa: E402

PROMPT = "Write a short story about a lighthouse keeper and a storm."
TOP = 5


def bare_run(client: Any, model: str, max_tokens: int) -> tuple[float, float]:
    """(tok/s, time to first token) of one reply read with the SDK alone."""
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True, temperature=0.0,
        max_tokens=max_tokens, logprobs=True, top_logprobs=TOP, top_p=1.0,
    )
    first = last = None
    count = 0
    for chunk in stream:
        if chunk.choices and (chunk.choices[0].delta.content is not None or chunk.choices[0].logprobs):
            entries = chunk.choices[0].logprobs.content if chunk.choices[0].logprobs else None
            count += len(entries) if entries else 1
            last = time.perf_counter()
            first = first or last
    assert first is not None and last is not None and count > 1
    return (count - 1) / (last - first), first - started


def ours_run(model: Any, max_tokens: int) -> tuple[float, float, float]:
    """(tok/s, time to first token, render_prompt seconds) through the backend."""
    sampler = SamplerSettings(temperature=0.0, top_k=0, min_p=0.0, repeat_penalty=1.0, top_p=1.0,
                              max_tokens=max_tokens, top_logprobs=TOP)
    t0 = time.perf_counter()
    prompt = model.render_prompt([ChatMessage("user", PROMPT)])
    rendered = time.perf_counter() - t0
    result = run_generation(model.generate(prompt, sampler))
    timings = result.timings
    assert timings.tokens_per_second is not None and timings.time_to_first_token is not None
    return timings.tokens_per_second, timings.time_to_first_token, rendered


def load_model(base_url: str, model: str, workdir: Path) -> Any:
    config = workdir / "config.toml"
    config.write_text(f'[llm]\nbackend = "openai"\n[openai]\nbase_url = "{base_url}"\nmodel = "{model}"\n', encoding="utf-8")
    return load_backend(load_config(config, env={}))


def measure(base_url: str, model_name: str, rounds: int, max_tokens: int, workdir: Path) -> None:
    import openai

    model = load_model(base_url, model_name, workdir)
    client = openai.OpenAI(base_url=base_url, api_key="no-key", max_retries=0)
    bare_run(client, model.info.model_id, max_tokens)  # warm the server and its prompt cache
    ours_run(model, max_tokens)
    bare, ours = [], []
    for index in range(rounds):  # who goes first alternates, so a drifting machine favours neither
        if index % 2:
            ours.append(ours_run(model, max_tokens))
        bare.append(bare_run(client, model.info.model_id, max_tokens))
        if not index % 2:
            ours.append(ours_run(model, max_tokens))
    print("per run (tok/s, ttft s): bare", [tuple(round(x, 2) for x in r) for r in bare], "ours", [tuple(round(x, 2) for x in r[:2]) for r in ours])
    b_tps, b_ttft = statistics.median(r[0] for r in bare), statistics.median(r[1] for r in bare)
    o_tps, o_ttft = statistics.median(r[0] for r in ours), statistics.median(r[1] for r in ours)
    render = statistics.median(r[2] for r in ours)
    print(f"server {base_url} model {model.info.model_id}, {rounds} rounds x {max_tokens} tokens, logprobs top-{TOP}")
    print(f"bare openai SDK: {b_tps:7.1f} tok/s  ttft {b_ttft * 1000:6.1f} ms")
    print(f"openai backend : {o_tps:7.1f} tok/s  ttft {o_ttft * 1000:6.1f} ms  (+ render_prompt {render * 1000:.1f} ms)")
    ratio = o_tps / b_tps
    print(f"tok/s ratio {ratio:.3f} (target >= 0.95) {'OK' if ratio >= 0.95 else 'BELOW TARGET'}; ttft overhead {(o_ttft - b_ttft) * 1000:+.1f} ms")
    model.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--base-url", default="", help="an already running server; empty = start llama-cpp-python's")
    parser.add_argument("--model", default="", help="model name on that server; empty = its first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.base_url:
            measure(args.base_url, args.model, args.rounds, args.max_tokens, Path(tmp))
            return
        from agent.llm.starter import starter_llm_path
        from tests.openai_server import LlamaServer

        server = LlamaServer(Path(tmp), {"smollm2": starter_llm_path()}, overrides={"smollm2": {"n_threads": 2}}).start()
        try:
            measure(server.base_url, "smollm2", args.rounds, args.max_tokens, Path(tmp))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
