"""Entropy-adaptive vs fixed sampling on a fixed prompt set (the llama.cpp backend, real model).

For each sampler, every prompt is answered with the same seeds; the table gives, per sampler:
mean entropy of the full distribution per token (nats), mean varentropy (nats²), mean reply
length (tokens), repetition rate (the fraction of a reply's token 3-grams that already occurred
earlier in it, averaged over replies), the share of each adaptive action, and tokens/s.

    .venv/bin/python bench/bench_adaptive.py [--quick] [--tokens 160] [--seeds 3] [--model PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config_load import load_config  # noqa: E402
from agent.errors import UserError  # noqa: E402
from agent.llm.base import ChatMessage, GenerationResult, run_generation  # noqa: E402
from agent.llm.sampler import ADAPTIVE_ACTIONS, SamplerSettings  # noqa: E402

PROMPTS = [
    "Tell me a short story about a lighthouse keeper.",
    "Explain why the sky is blue.",
    "Give me three tips for learning to cook.",
    "Расскажи короткую сказку про лису.",
    "Объясни, почему идёт дождь.",
    "Что посмотреть в Петербурге за один день?",
]
QUICK_PROMPTS = [PROMPTS[0], PROMPTS[3]]


def samplers(tokens: int) -> dict[str, SamplerSettings]:
    fixed = SamplerSettings(max_tokens=tokens)  # the shipped defaults: temperature 0.7, top-k 40, ...
    return {
        "fixed (defaults)": fixed,
        "fixed greedy": fixed.merged({"temperature": 0.0}),
        "adaptive": fixed.merged({"mode": "adaptive"}),
        "adaptive + pause": fixed.merged({"mode": "adaptive", "pause_text": " Hmm, let me think."}),
    }


def repetition_rate(ids: list[int], n: int = 3) -> float:
    """Fraction of the token n-grams of one reply that already occurred earlier in it."""
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    if not grams:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeated = 0
    for gram in grams:
        repeated += gram in seen
        seen.add(gram)
    return repeated / len(grams)


def summarise(results: list[GenerationResult], seconds: float) -> dict[str, float]:
    steps = [s for r in results for s in r.steps]
    entropies = [s.entropy for s in steps if s.entropy is not None]
    varentropies = [s.varentropy for s in steps if s.varentropy is not None]
    actions = Counter(s.action for s in steps)
    row = {
        "entropy": statistics.fmean(entropies) if entropies else float("nan"),
        "varentropy": statistics.fmean(varentropies) if varentropies else float("nan"),
        "length": statistics.fmean(len(r.steps) for r in results),
        "repeat3": statistics.fmean(repetition_rate([s.token_id for s in r.steps]) for r in results),
        "tok/s": len(steps) / seconds if seconds > 0 else float("nan"),
    }
    for action in ADAPTIVE_ACTIONS:
        row[action] = 100.0 * actions[action] / len(steps) if steps else 0.0
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two prompts (one English, one Russian), 1 seed, 64 tokens")
    parser.add_argument("--tokens", type=int, default=160, help="max tokens per reply")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per prompt (the same for every sampler)")
    parser.add_argument("--model", default="", help="a .gguf (default: the embedded starter model)")
    args = parser.parse_args()
    prompts, seeds, tokens = (QUICK_PROMPTS, 1, 64) if args.quick else (PROMPTS, args.seeds, args.tokens)

    from agent.llm.llamacpp.model import load

    try:
        model = load(load_config(None, env={"EPISTEMIC_LLM__MODEL": args.model} if args.model else {}))
    except UserError as exc:
        print(f"bench_adaptive: {exc}", file=sys.stderr)
        return 2
    rendered = [model.render_prompt([ChatMessage("user", p)]) for p in prompts]
    rows: dict[str, dict[str, float]] = {}
    for name, sampler in samplers(tokens).items():
        results, seconds = [], 0.0
        for prompt in rendered:
            for seed in range(seeds):
                started = time.perf_counter()
                results.append(run_generation(model.generate(prompt, sampler.merged({"seed": 1000 + seed}))))
                seconds += time.perf_counter() - started
        rows[name] = summarise(results, seconds)
    print(f"model {model.info.model_id}: {len(prompts)} prompts x {seeds} seeds, up to {tokens} tokens, "
          f"thresholds H {SamplerSettings().entropy_low}/{SamplerSettings().entropy_high} nats, "
          f"V {SamplerSettings().varentropy_low}/{SamplerSettings().varentropy_high} nats²")
    columns = ["entropy", "varentropy", "length", "repeat3", *ADAPTIVE_ACTIONS, "tok/s"]
    heads = {"entropy": "H nats", "varentropy": "V nats²", "length": "tokens", "repeat3": "rep3",
             "argmax": "%argmax", "sample": "%sample", "explore": "%explore", "pause": "%pause", "tok/s": "tok/s"}
    print(f"{'sampler':<18}" + "".join(f"{heads[c]:>10}" for c in columns))
    for name, row in rows.items():
        print(f"{name:<18}" + "".join(f"{row[c]:>10.3f}" if c in ("entropy", "varentropy", "repeat3") else f"{row[c]:>10.1f}"
                                      for c in columns))
    model.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
