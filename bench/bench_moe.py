"""Tokens/s with MoE routing capture on vs off vs raw llama-cpp-python, same run, same model.

The model is a fabricated Mixtral-style GGUF (tests/moe_fixtures.py; ``--size`` picks how big) or
any MoE GGUF given with ``--model``. It is loaded twice through the backend, with
``[llm] moe_routing`` false and true; the raw side is plain ``Llama.generate`` on the capture-off
model's own Llama (no callback). Greedy, same prompt, KV cache cleared before each call, the three
sides alternate per repetition so machine-load drift hits all of them. Tokens/s counts every
generated token over the whole call (prompt included); the token ids must be identical.
The telemetry budget is 3 %: capture costs more than that, so it is off by default.

    .venv/bin/python bench/bench_moe.py [--size tiny|small|medium|large] [--model PATH] [--tokens 128] [--reps 5] [--threads N] [--cpu-time]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.config_load import load_config  # noqa: E402
from agent.llm.base import ChatMessage  # noqa: E402
from agent.llm.sampler import SamplerSettings  # noqa: E402
from bench.bench_llm import run_ours, run_raw  # noqa: E402

SIZES = {  # n_embd, n_layer, n_expert, n_expert_used, n_ff
    "tiny": (32, 2, 4, 2, 48),
    "small": (128, 8, 8, 2, 256),
    "medium": (256, 16, 16, 4, 512),
    "large": (1024, 4, 4, 2, 2816),  # per-layer width of a real MoE (few layers and experts keep the file ~0.4 GB)
}
BUDGET = 0.03


def _model_path(args: argparse.Namespace, folder: Path) -> Path:
    if args.model:
        return Path(args.model)
    from tests.moe_fixtures import MoEDims, write_tiny_moe_gguf

    e, layers, experts, used, ff = SIZES[args.size]
    return write_tiny_moe_gguf(folder / f"moe-{args.size}.gguf", MoEDims(e, layers, experts, used, ff, n_head=4, n_head_kv=2, n_ctx=2048))


def _load(path: Path, capture: bool, threads: int):  # noqa: ANN202  (LlamaCppModel, imported lazily)
    from agent.llm.llamacpp.model import load

    env = {"EPISTEMIC_LLM__MODEL": str(path), "EPISTEMIC_LLM__THREADS": str(threads),
           "EPISTEMIC_LLM__CONTEXT_SIZE": "2048", "EPISTEMIC_LLM__MOE_ROUTING": "true" if capture else "false"}
    return load(load_config(None, env=env))


def _line(name: str, runs: list[float]) -> str:
    return f"{name:<22}: {statistics.median(runs):8.1f} tok/s  (runs: {', '.join(f'{x:.1f}' for x in runs)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="fabricated model size (ignored with --model)")
    parser.add_argument("--model", default="", help="a mixture-of-experts .gguf instead of a fabricated one")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    parser.add_argument("--cpu-time", action="store_true", help="measure process CPU time instead of wall time (steadier on a busy machine)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = _model_path(args, Path(tmp))
        off, on = _load(path, False, args.threads), _load(path, True, args.threads)
        if on.moe is None:
            sys.exit(f"{path}: not a mixture-of-experts model; nothing to measure")
        sampler = SamplerSettings(temperature=0.0, repeat_penalty=1.0, seed=42, max_tokens=args.tokens)
        prompt = off.render_prompt([ChatMessage("user", "Tell me a long story about a lighthouse.")])
        for model in (off, on):
            run_ours(model, prompt, sampler.merged({"max_tokens": 8}))  # warm-up
        run_raw(off._llm, list(prompt.token_ids), sampler, 8)
        raw, plain, captured, same = [], [], [], True
        for _ in range(args.reps):
            t_raw, ids_raw = run_raw(off._llm, list(prompt.token_ids), sampler, args.tokens, args.cpu_time)
            t_off, ids_off = run_ours(off, prompt, sampler, args.cpu_time)
            t_on, ids_on = run_ours(on, prompt, sampler, args.cpu_time)
            raw.append(len(ids_raw) / t_raw)
            plain.append(len(ids_off) / t_off)
            captured.append(len(ids_on) / t_on)
            same &= ids_raw == ids_off == ids_on
        shape = on.moe.shape
        clock = "CPU time" if args.cpu_time else "wall time"
        print(f"model {path.name}: {shape.n_layers} layers, {shape.n_experts} experts, top {shape.n_used}; "
              f"{prompt.token_count} prompt tokens, {args.tokens} tokens x {args.reps} reps, greedy, {off._llm.n_threads} threads, {clock}")
        print(_line("raw llama-cpp-python", raw))
        print(_line("ours, capture off", plain))
        print(_line("ours, capture on", captured))
        ratio = statistics.median(captured) / statistics.median(plain)
        print(f"ratio on / off        : {ratio:.3f}   (overhead {1 - ratio:.1%}; budget {BUDGET:.0%}: "
              f"{'within, could be on by default' if 1 - ratio <= BUDGET else 'over, so off by default'})")
        print(f"ratio on / raw        : {statistics.median(captured) / statistics.median(raw):.3f}")
        print(f"ratio off / raw       : {statistics.median(plain) / statistics.median(raw):.3f}")
        print(f"same token ids        : {same}")
        off.close()
        on.close()


if __name__ == "__main__":
    main()
