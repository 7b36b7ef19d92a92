"""``train dpo``: preference training of a LoRA with TRL's DPOTrainer (the reference implementation).

Rows are ``{"prompt": [...messages], "chosen": [...], "rejected": [...]}`` (or plain strings), as
the dataset exporter's ``dpo`` format writes them. The reference model is the base itself (the
adapter switched off). Outputs are those of ``train sft``: PEFT adapter, GGUF, card, persona.
Ctrl-C saves a trainer checkpoint; ``--resume`` continues from the latest one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from agent.errors import MissingExtra
from agent.train import card
from agent.train.base_weights import prepare_base
from agent.train.data import DatasetError, common_system_prompt, read_dataset
from agent.train.loop import StepProgress, TrainingInterrupted
from agent.train.run import (
    CHECKPOINT,
    Reporter,
    SftJob,
    TrainOutcome,
    check_out_dir,
    load_model,
    loading_message,
    quantization,
    write_outputs,
)
from agent.train.torch_env import INSTALL, import_peft


def _preference_rows(rows: tuple[dict[str, Any], ...], folder: Path) -> list[dict[str, Any]]:
    keys = ("prompt", "chosen", "rejected")
    if not rows or any(not all(k in row for k in keys) for row in rows):
        raise DatasetError(f"{folder}: DPO needs rows with prompt, chosen and rejected (a `dataset export --format dpo`)")
    return [{k: row[k] for k in keys} for row in rows]


def _hf_dataset(rows: list[dict[str, Any]]) -> Any:
    """A datasets.Dataset built from a pyarrow table with an explicit fingerprint (no pickling)."""
    import importlib

    datasets = importlib.import_module("datasets")  # untyped; from the [harvest] / [train] extras
    pa = importlib.import_module("pyarrow")
    datasets.disable_progress_bars()  # TRL's tokenizing bars; the progress line says what runs

    fingerprint = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]
    return datasets.Dataset(pa.Table.from_pylist(rows), fingerprint=fingerprint)


def _callback(reporter: Reporter) -> Any:
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """Reports each logged step (TRL's training thread)."""

        started = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if not logs or "loss" not in logs or not state.global_step:
                return
            elapsed = time.perf_counter() - self.started
            per_step = elapsed / state.global_step
            tokens = float(state.num_input_tokens_seen or 0)
            reporter.step(StepProgress(state.global_step, state.max_steps, float(logs["loss"]),
                                       float(logs.get("learning_rate", 0.0)), tokens / elapsed if elapsed else 0.0,
                                       per_step * (state.max_steps - state.global_step)))

    return Progress()


def reward_table(losses: tuple[float, ...], margins: list[float], accuracies: list[float]) -> str:
    """DPO's own measures at the first and last step: loss, reward margin (chosen - rejected), accuracy."""
    if not losses:
        return "No step was logged."
    rows = ["| step | DPO loss | reward margin | reward accuracy |", "|---:|---:|---:|---:|"]
    for i in sorted({0, len(losses) - 1}):
        rows.append(f"| {i + 1} | {losses[i]:.4f} | {margins[i]:.4f} | {accuracies[i]:.2f} |")
    return "\n".join(rows)


def _config(job: SftJob, output_dir: Path, device: str) -> Any:
    try:
        from trl import DPOConfig
    except ImportError as exc:
        raise MissingExtra(f"train dpo needs TRL from the optional [train] extra ({exc}): {INSTALL}") from None
    import torch

    s = job.settings
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return DPOConfig(
        use_cpu=device == "cpu", bf16=bf16, fp16=device == "cuda" and not bf16,
        output_dir=str(output_dir), per_device_train_batch_size=s.batch_size, gradient_accumulation_steps=s.grad_accum,
        learning_rate=s.learning_rate, lr_scheduler_type=s.lr_schedule, warmup_steps=s.warmup_steps,
        weight_decay=s.weight_decay, num_train_epochs=s.epochs, max_steps=s.steps or -1, beta=s.dpo_beta,
        max_length=s.max_length, seed=s.seed, logging_steps=1, save_strategy="no", report_to=[],
        include_num_input_tokens_seen=True, disable_tqdm=True,
    )


def run_dpo(job: SftJob, reporter: Reporter) -> TrainOutcome:
    """Train a LoRA with DPO, then write the same outputs as SFT (no SFT-style evaluation)."""
    from trl import DPOTrainer

    from agent.train.convert import convert_peft_to_gguf

    check_out_dir(job)
    dataset = read_dataset(job.dataset)
    rows = _preference_rows(dataset.train, dataset.folder)
    base = prepare_base(job.base, cache_root=job.cache_root, progress=reporter.message)
    reporter.message(loading_message(base, job.settings))
    model, tokenizer, device = load_model(base, job.settings)
    s = job.settings
    lora = import_peft().LoraConfig(r=s.rank, lora_alpha=s.alpha, lora_dropout=s.dropout,
                                    target_modules=list(s.target_modules), task_type="CAUSAL_LM")
    checkpoints = job.out_dir / CHECKPOINT
    trainer: Any = DPOTrainer(model=model, args=_config(job, checkpoints, device), train_dataset=_hf_dataset(rows),
                         processing_class=tokenizer, peft_config=lora, callbacks=[_callback(reporter)])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # the progress line says it (stdout stays the report)
    reporter.message(f"DPO on {len(rows)} preference pairs")
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=True if job.resume else None)
    except KeyboardInterrupt:
        trainer._save_checkpoint(trainer.model, trial=None)
        raise TrainingInterrupted(f"interrupted at step {trainer.state.global_step}; checkpoint saved in {checkpoints}; "
                                  "run the same command with --resume to continue") from None
    seconds = time.perf_counter() - started
    if not trainer.is_world_process_zero():  # under accelerate: rank 0 writes the adapter and its files
        raise SystemExit(0)
    trainer.model.save_pretrained(str(job.out_dir))
    gguf = convert_peft_to_gguf(job.out_dir, job.out_dir / f"{job.name}.gguf", base.shape, name=job.name)
    logged = [e for e in trainer.state.log_history if "loss" in e]
    losses = tuple(float(e["loss"]) for e in logged)
    margins = [float(e.get("rewards/margins", "nan")) for e in logged]
    accuracies = [float(e.get("rewards/accuracies", "nan")) for e in logged]
    record = card.TrainingRecord(
        name=job.name, method="dpo", base=base.describe(),
        dataset={"folder": str(dataset.folder), "manifest_sha256": dataset.manifest_sha256, "files": list(dataset.files),
                 "train_rows": len(dataset.train), "validation_rows": len(dataset.validation)},
        hyperparameters=s.model_dump(mode="json"), steps=trainer.state.global_step, losses=losses, seconds=seconds,
        tokens_per_second=float(trainer.state.num_input_tokens_seen or 0) / seconds if seconds else 0.0,
        files={"peft adapter": "adapter_model.safetensors", "llama.cpp LoRA": gguf.name, "persona": "persona.toml"},
        evaluation={"reward_margins": margins, "reward_accuracies": accuracies}, quantization=quantization(s),
    )
    prompts = [{"messages": r["prompt"]} for r in rows if isinstance(r["prompt"], list)]
    persona = write_outputs(job, record, reward_table(losses, margins, accuracies), common_system_prompt(prompts))
    shutil.rmtree(checkpoints, ignore_errors=True)
    return TrainOutcome(out_dir=job.out_dir, record=record, report=None, gguf=gguf, persona=persona)
