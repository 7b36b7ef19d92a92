"""Tokens/s of the llama.cpp backend with all telemetry on, off, and raw llama-cpp-python, same run.

All three use the same Llama instance, the same prompt tokens and the same sampler values
(fixed seed); each repetition clears the KV cache first and the three sides alternate (each taking
first, second and third place in turn), so drift in machine load hits all of them. Tokens/s counts every generated token over the whole call
(prompt evaluation included), and the token ids are compared (they must be identical).

* raw: ``Llama.generate`` of llama-cpp-python, no telemetry;
* ours, telemetry off: our token loop with the per-token statistics skipped;
* ours, telemetry on: entropy + varentropy + logprob + top-k (``top_logprobs``) of the full logits.

The telemetry overhead is 1 - on/off (target <= 3 %). The machine may be noisy, so it is also
measured directly: the median time of the per-token statistics on real logits, against the
median time per generated token.

    .venv/bin/python bench/bench_llm.py [--tokens 128] [--reps 5] [--model PATH] [--typical] [--threads N] [--cpu-time]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config_load import load_config  # noqa: E402
from agent.llm.base import ChatMessage, run_generation  # noqa: E402
from agent.llm.llamacpp.loop import TokenLoop  # noqa: E402
from agent.llm.llamacpp.sampling import LogitsStats  # noqa: E402
from agent.llm.sampler import SamplerSettings  # noqa: E402

PROMPT = [
    ChatMessage("system", "You are a storyteller who writes long, detailed stories."),
    ChatMessage("user", "Write a long story about a lighthouse keeper who finds a message in a bottle."),
]


def _settings(args: argparse.Namespace) -> SamplerSettings:
    if args.typical:
        return SamplerSettings(temperature=0.7, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1,
                               repeat_last_n=64, seed=42, max_tokens=args.tokens)
    return SamplerSettings(temperature=0.0, repeat_penalty=1.0, seed=42, max_tokens=args.tokens)


def _clock(cpu: bool) -> float:
    return time.process_time() if cpu else time.perf_counter()


class NoStats(LogitsStats):
    """Telemetry off: the token loop's statistics calls return at once (NaN, no top-k)."""

    def read(self, ctx):
        return self.logits

    def measure(self) -> tuple[float, float]:
        return float("nan"), float("nan")

    def finish(self, token: int, k: int) -> tuple[float, list[tuple[int, float]]]:
        return float("nan"), []


def run_ours(model, prompt, sampler, cpu: bool = False, telemetry: bool = True) -> tuple[float, list[int]]:
    """Our token loop (as ``generate`` runs it), with or without the per-token statistics."""
    model.clear_cache()
    started = _clock(cpu)
    loop = TokenLoop(model, model._llm, sampler, seed=sampler.seed, cancel=None)
    if not telemetry:
        loop.logits = NoStats(model.n_vocab)
    result = run_generation(loop.run(prompt))
    return _clock(cpu) - started, [s.token_id for s in result.steps]


def stats_seconds(model, prompt, sampler, calls: int = 400) -> float:
    """Median seconds of one token's statistics (measure + finish with top-k) on real logits."""
    model.clear_cache()
    run_generation(model.generate(prompt, sampler.merged({"max_tokens": 2})))
    stats = LogitsStats(model.n_vocab)
    stats.read(model._llm._ctx.ctx)
    times = []
    for token in range(calls):
        started = time.perf_counter()
        stats.measure()
        stats.finish(token, sampler.top_logprobs)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_raw(llm, prompt_ids: list[int], sampler: SamplerSettings, n: int, cpu: bool = False) -> tuple[float, list[int]]:
    """Plain llama-cpp-python: Llama.generate with the same sampler values, no telemetry."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    llm.reset()
    llm.set_seed(sampler.seed)
    llm.last_n_tokens_size = sampler.repeat_last_n
    started = _clock(cpu)
    out: list[int] = []
    for token in llm.generate(prompt_ids, top_k=sampler.top_k, top_p=sampler.top_p, min_p=sampler.min_p,
                              typical_p=sampler.typical_p, temp=sampler.temperature,
                              repeat_penalty=sampler.repeat_penalty, reset=True):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        out.append(token)
        if len(out) >= n:
            break
    return _clock(cpu) - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--model", default="", help="a .gguf (default: the embedded starter model)")
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    parser.add_argument("--cpu-time", action="store_true", help="measure process CPU time instead of wall time (steadier on a busy machine)")
    parser.add_argument("--typical", action="store_true", help="typical sampling (temp 0.7, top-k/p, min-p, repeat penalty) instead of greedy")
    args = parser.parse_args()

    from agent.llm.llamacpp.model import load

    env = {"EPISTEMIC_LLM__THREADS": str(args.threads)}
    if args.model:
        env["EPISTEMIC_LLM__MODEL"] = args.model
    config = load_config(None, env=env)
    model = load(config)
    sampler = _settings(args)
    prompt = model.render_prompt(PROMPT)
    llm = model._llm
    run_ours(model, prompt, sampler.merged({"max_tokens": 8}))  # warm-up every path
    run_ours(model, prompt, sampler.merged({"max_tokens": 8}), telemetry=False)
    run_raw(llm, list(prompt.token_ids), sampler, 8)

    ours, off, raw, same = [], [], [], True
    sides = {
        "raw": lambda: run_raw(llm, list(prompt.token_ids), sampler, args.tokens, args.cpu_time),
        "off": lambda: run_ours(model, prompt, sampler, args.cpu_time, telemetry=False),
        "on": lambda: run_ours(model, prompt, sampler, args.cpu_time),
    }
    order = list(sides)
    for rep in range(args.reps):
        ran = {}
        for name in order[rep % 3 :] + order[: rep % 3]:  # each side takes each place in turn
            ran[name] = sides[name]()
        (t_raw, ids_raw), (t_off, ids_off), (t_ours, ids_ours) = ran["raw"], ran["off"], ran["on"]
        raw.append(len(ids_raw) / t_raw)
        off.append(len(ids_off) / t_off)
        ours.append(len(ids_ours) / t_ours)
        same &= ids_raw == ids_ours == ids_off
    per_stats = stats_seconds(model, prompt, sampler)
    mode = "typical (seed 42)" if args.typical else "greedy"
    clock = "CPU time" if args.cpu_time else "wall time"
    runs = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    med_raw, med_off, med_on = statistics.median(raw), statistics.median(off), statistics.median(ours)
    print(f"model {model.info.model_id}, {prompt.token_count} prompt tokens, {args.tokens} tokens x {args.reps} reps, {mode}, "
          f"{llm.n_threads} threads, {clock}, vocabulary {model.n_vocab}, top-k {sampler.top_logprobs}")
    print(f"raw llama-cpp-python    : {med_raw:7.1f} tok/s  (runs: {runs(raw)})")
    print(f"ours, telemetry off     : {med_off:7.1f} tok/s  (runs: {runs(off)})")
    print(f"ours, telemetry on      : {med_on:7.1f} tok/s  (runs: {runs(ours)})")
    print(f"ratio on / raw (median) : {med_on / med_raw:.3f}   target >= 0.95")
    paired = statistics.median(1 - on / o for on, o in zip(ours, off, strict=True))
    print(f"telemetry overhead      : {100 * (1 - med_on / med_off):+.1f} % of medians, {100 * paired:+.1f} % median of paired "
          "reps  (1 - on/off; target <= 3 %)")
    fastest = max([*raw, *off])
    print(f"per-token statistics    : {per_stats * 1e6:.0f} us = {100 * per_stats * med_off:.1f} % of a token at {med_off:.1f} tok/s "
          f"(telemetry off, median), {100 * per_stats * fastest:.1f} % at the fastest rep ({fastest:.1f} tok/s); "
          "entropy + varentropy + logprob + top-k, median of 400 calls on real logits; target <= 3 %")
    print(f"same token ids          : {same}  ({len(ids_ours)} vs {len(ids_raw)} tokens in the last run)")
    model.close()


if __name__ == "__main__":
    main()
