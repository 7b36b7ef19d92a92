"""Training-step throughput: our LoRA trainer vs a bare PEFT + torch loop on the same data and settings.

    .venv/bin/python bench/bench_train.py [--steps 6] [--trials 2] [--threads 2]

Both train a fresh rank-8 LoRA on all linear layers of the dequantised starter (SmolLM2-135M,
cached once) over the same encoded conversations, batch 2, AdamW; runs alternate (ours, bare,
ours, bare ...) and the best trial of each is compared. Time is this process's CPU time, so other
work on a shared machine does not decide the ratio. Prints tokens per CPU-second of each and the
ratio (ours / bare; the target is >= 0.95).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.llm.starter import starter_llm_path  # noqa: E402
from agent.train.base_weights import prepare_base  # noqa: E402
from agent.train.data import ChatEncoder, Example  # noqa: E402
from agent.train.loop import LoraTrainer  # noqa: E402
from agent.train.run import peft_model  # noqa: E402
from agent.train.settings import TrainSettings  # noqa: E402

QUESTIONS = ["What is the capital of France?", "How do I boil an egg?", "Tell me a joke.", "Why is the sky blue?",
             "Recommend a book about the sea.", "What is Python used for?", "How tall is Everest?", "What is love?"]


def conversations() -> list[list[dict[str, str]]]:
    return [[{"role": "system", "content": "You are a concise assistant."}, {"role": "user", "content": q},
             {"role": "assistant", "content": f"A short answer about: {q.lower()} It depends on what you need."}]
            for q in QUESTIONS]


def bare_loop(model: Any, examples: list[Example], steps: int, batch: int, lr: float, pad: int) -> tuple[float, int]:
    """The reference: a plain PEFT + torch loop (pad, forward, backward, AdamW step); (seconds, tokens)."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    tokens, started = 0, 0.0
    for step in range(steps + 1):
        if step == 1:  # the first step warms up allocations; not timed
            started, tokens = time.process_time(), 0
        chunk = [examples[(step * batch + i) % len(examples)] for i in range(batch)]
        width = max(len(e.input_ids) for e in chunk)
        ids = torch.tensor([list(e.input_ids) + [pad] * (width - len(e.input_ids)) for e in chunk])
        labels = torch.tensor([list(e.labels) + [-100] * (width - len(e.labels)) for e in chunk])
        mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in chunk])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(mask.sum())
    return time.process_time() - started, tokens


def ours(model: Any, examples: list[Example], settings: TrainSettings, pad: int, steps: int, tmp: Path) -> tuple[float, int]:
    """Our trainer for 1 + ``steps`` steps; the timed part excludes the first (warm-up) step."""
    trainer = LoraTrainer(model, examples, settings.model_copy(update={"steps": steps + 1}), pad_id=pad,
                          device="cpu", checkpoint_dir=tmp)
    marks: list[tuple[float, int]] = []
    trainer.train(lambda p: marks.append((time.process_time(), trainer.state.tokens)))
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return t1 - t0, n1 - n0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    base = prepare_base(starter_llm_path(), progress=lambda m: print(m, file=sys.stderr))
    tokenizer = AutoTokenizer.from_pretrained(str(base.folder))
    settings = TrainSettings(batch_size=2, dropout=0.0, lr_schedule="constant", learning_rate=1e-4, threads=args.threads)
    encoder = ChatEncoder(tokenizer, tokenizer.chat_template, max_length=settings.max_length)
    examples = [e for e in (encoder.encode(c) for c in conversations()) if e is not None]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    model = AutoModelForCausalLM.from_pretrained(str(base.folder), dtype=torch.float32)
    best = {"ours": 0.0, "bare": 0.0}
    for trial in range(args.trials):
        for kind in ("ours", "bare"):
            lora = peft_model(model, settings, None)
            if kind == "ours":
                seconds, tokens = ours(lora, examples, settings, pad, args.steps, Path("/tmp/bench-train-ckpt"))
            else:
                seconds, tokens = bare_loop(lora, examples, args.steps, settings.batch_size, settings.learning_rate, pad)
            model = lora.unload()
            rate = tokens / seconds
            best[kind] = max(best[kind], rate)
            print(f"trial {trial + 1} {kind:>4}: {rate:8.1f} tokens/CPU-s ({tokens} tokens in {seconds:.2f} CPU-s)")
    ratio = best["ours"] / best["bare"]
    print(f"ours {best['ours']:.1f} tokens/CPU-s, bare PEFT + torch {best['bare']:.1f} tokens/CPU-s, ratio {ratio:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
