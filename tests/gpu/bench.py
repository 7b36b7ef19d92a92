"""Decode speed of the exllamav2 backend on an 8B-shaped random FP16 model.

Compares our backend's tokens/s with (a) the memory-bandwidth bound (weight bytes read per token
over the copy bandwidth measured on this GPU) and (b) the raw exllamav2 dynamic generator running
the same job on the same loaded model. Appends its rows to $GPU_RESULTS and prints the table of
all rows (the pytest part writes its own rows there first).

    python tests/gpu/bench.py /tmp/gpu-models [--tokens 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.llm.base import ChatMessage, run_generation  # noqa: E402
from agent.llm.peft_adapter import safetensors_header  # noqa: E402
from tests.gpu.test_exllamav2_gpu import greedy, load  # noqa: E402


def bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (read + write bytes) of a 4 GiB buffer, GB/s."""
    import torch

    x = torch.empty(2 * 1024**3, dtype=torch.float16, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    torch.cuda.synchronize()
    start, n = time.perf_counter(), 10
    for _ in range(n):
        y.copy_(x)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    del x, y
    torch.cuda.empty_cache()
    return 2 * 2 * 1024**3 * 2 * n / seconds / 1e9


def bytes_per_token(folder: Path) -> int:
    """Weight bytes read for one decoded token: everything but the embedding table (one row is read)."""
    total = 0
    for file in folder.glob("*.safetensors"):
        for name, meta in safetensors_header(file).items():
            if "embed_tokens" not in name:
                start, end = meta["data_offsets"]
                total += end - start
    return total


def ours(model, prompt, sampler) -> float:
    return run_generation(model.generate(prompt, sampler)).timings.tokens_per_second or 0.0


def raw(model, prompt, sampler, return_logits: bool) -> float:
    """The same job straight through exllamav2's generator: tokens/s from first to last token."""
    import torch
    from exllamav2.generator import ExLlamaV2DynamicJob

    from agent.llm.exllamav2.sampler import build_exl2_settings

    gen = model.generator
    settings = build_exl2_settings(sampler, model.tokenizer, model.parts.config.vocab_size)
    job = ExLlamaV2DynamicJob(input_ids=torch.tensor([prompt.token_ids]), max_new_tokens=sampler.max_tokens,
                              gen_settings=settings, stop_conditions=[], return_logits=return_logits)
    gen.enqueue(job)
    first, n = None, 0
    while gen.num_remaining_jobs():
        for r in gen.iterate():
            if r.get("stage") == "streaming" and "token_ids" in r:
                n += r["token_ids"].shape[-1]
                first = first or time.perf_counter()
    return (n - 1) / (time.perf_counter() - first)


def record(rows: list[dict], name: str, value: str, target: str = "") -> None:
    rows.append({"name": name, "value": value, "target": target})


def bench(models: Path, tokens: int) -> list[dict]:
    from tests.gpu.fabricate import make_llama

    folder = models / "llama-8b-shape"
    if not (folder / "config.json").is_file():
        start = time.perf_counter()
        make_llama(folder, "8b", device="cuda", init=0.02)
        print(f"fabricated 8B-shaped model in {time.perf_counter() - start:.0f} s", flush=True)
    rows: list[dict] = []
    gbs = bandwidth_gbs()
    per_token = bytes_per_token(folder)
    bound = gbs * 1e9 / per_token
    model = load(folder, max_seq_len=1024)
    try:
        prompt = model.render_prompt([ChatMessage("user", "Count from one to a thousand.")])
        sampler = greedy(tokens)
        ours(model, prompt, greedy(16))  # warm-up (kernel autotune)
        best = {"ours": 0.0, "raw": 0.0, "raw_nologits": 0.0}
        for _ in range(3):
            best["ours"] = max(best["ours"], ours(model, prompt, sampler))
            best["raw"] = max(best["raw"], raw(model, prompt, sampler, True))
            best["raw_nologits"] = max(best["raw_nologits"], raw(model, prompt, sampler, False))
    finally:
        model.close()
    record(rows, "copy bandwidth (GB/s)", f"{gbs:.0f}")
    record(rows, "8B decode, our backend (tok/s)", f"{best['ours']:.1f}", f"bound {bound:.0f} ({per_token / 1e9:.1f} GB/token)")
    record(rows, "8B decode / bandwidth bound", f"{best['ours'] / bound:.2f}", "as high as possible")
    record(rows, "ours / raw generator, same job", f"{best['ours'] / best['raw']:.3f}", ">= 0.95")
    record(rows, "ours / raw generator without logits", f"{best['ours'] / best['raw_nologits']:.3f}", "cost of full-logit telemetry")
    return rows


def table(rows: list[dict]) -> str:
    width = max(len(r["name"]) for r in rows)
    lines = [f"{'check'.ljust(width)}  {'value':>22}  target", "-" * (width + 40)]
    lines += [f"{r['name'].ljust(width)}  {str(r['value']):>22}  {r['target']}" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    results = Path(os.environ.get("GPU_RESULTS", args.models / "results.jsonl"))
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    try:
        rows += bench(args.models, args.tokens)
    except Exception as exc:  # still print what the tests measured
        rows.append({"name": "8B benchmark", "value": "failed", "target": f"{type(exc).__name__}: {exc}"[:120]})
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
