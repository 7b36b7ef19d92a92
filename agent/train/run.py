"""One ``train sft`` run from dataset folder to adapter folder, persona and card.

``models/adapters/NAME/`` receives the PEFT adapter (``adapter_config.json`` +
``adapter_model.safetensors``), the same adapter as a llama.cpp LoRA (``NAME.gguf``), the card
(``README.md``, ``loss.png``), ``training.json`` and ``persona.toml``; the persona is also installed
into the personas folder, so ``epistemic chat --persona NAME`` talks to it at once. While it runs,
``progress.json`` there tells other processes how far it is (:mod:`agent.train.jobs`).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.errors import UserError
from agent.train import card
from agent.train.base_weights import BaseWeights, prepare_base
from agent.train.data import (
    ChatEncoder,
    Dataset,
    DatasetError,
    Example,
    common_system_prompt,
    read_dataset,
)
from agent.train.evaluate import EvalReport, evaluate
from agent.train.loop import LoraTrainer, StepProgress
from agent.train.settings import TrainSettings

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"


class Reporter(Protocol):
    """Where a run's progress goes (the CLI's progress line; tests collect it)."""

    def message(self, text: str) -> None:
        """A stage of the run (loading, converting, evaluating ...)."""
        ...

    def step(self, progress: StepProgress) -> None:
        """An optimizer step finished."""
        ...


@dataclass(frozen=True)
class SftJob:
    """One ``train sft`` run: what to train on, from which base, into which folder, how."""

    name: str
    dataset: Path
    out_dir: Path  # models/adapters/NAME
    base: Path  # a .gguf file or a transformers model folder
    settings: TrainSettings
    resume: bool = False
    overwrite: bool = False
    personas_dir: Path | None = None  # where persona NAME.toml is installed; None = only in out_dir
    cache_root: Path | None = None  # for dequantised GGUF bases; None = the user cache


@dataclass(frozen=True)
class TrainOutcome:
    """What a finished run produced."""

    out_dir: Path
    record: card.TrainingRecord
    report: EvalReport | None
    gguf: Path
    persona: Path | None


def check_out_dir(job: SftJob) -> None:
    has_adapter = (job.out_dir / "adapter_config.json").is_file()
    if job.resume and not (job.out_dir / CHECKPOINT).is_dir():
        raise UserError(f"{job.out_dir}: no checkpoint to resume from (it is saved on Ctrl-C)")
    if has_adapter and not job.resume and not job.overwrite:
        raise UserError(f"{job.out_dir}: an adapter of that name exists; choose another --out or pass --overwrite")


def load_model(base: BaseWeights, settings: TrainSettings) -> tuple[Any, Any, str]:
    """(model, tokenizer, device) of the base weights, on a GPU in bf16 where there is one (4-bit with qlora)."""
    from agent.train.torch_env import device_and_dtype, import_training, set_threads

    torch, transformers = import_training()
    set_threads(settings.threads)
    device, dtype = device_and_dtype()
    if settings.qlora:
        from agent.train.qlora import load_quantised

        model = load_quantised(base.folder)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(base.folder), dtype=dtype).to(device)
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base.folder))
    if not tokenizer.chat_template:
        raise DatasetError(f"{base.folder}: the base model has no chat template, so conversations cannot be rendered for it")
    return model, tokenizer, device


def peft_model(model: Any, settings: TrainSettings, checkpoint: Path | None) -> Any:
    """The model with a fresh LoRA (seeded), or the checkpoint's LoRA to continue training."""
    import torch

    from agent.train.torch_env import import_peft

    peft = import_peft()
    if checkpoint is not None:
        return peft.PeftModel.from_pretrained(model, str(checkpoint), is_trainable=True)
    torch.manual_seed(settings.seed)
    config = peft.LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules), bias="none", task_type="CAUSAL_LM",
    )
    try:
        return peft.get_peft_model(model, config)
    except ValueError as exc:
        raise UserError(f"LoRA target modules {list(settings.target_modules)} do not fit this model: {exc}") from None


def encode(dataset: Dataset, tokenizer: Any, settings: TrainSettings) -> tuple[list[Example], list[Example]]:
    """Train and validation examples (DatasetError when nothing is left to learn)."""
    encoder = ChatEncoder(tokenizer, tokenizer.chat_template, max_length=settings.max_length,
                          assistant_only=settings.assistant_only_loss)
    train = encoder.encode_rows(dataset.train, "train")
    if not train:
        raise DatasetError(f"{dataset.folder}: no train conversation has assistant tokens within max_length={settings.max_length}")
    return train, encoder.encode_rows(dataset.validation, "validation")


def run_sft(job: SftJob, reporter: Reporter) -> TrainOutcome:
    """Train, save, convert, evaluate and write the card and persona of one SFT run."""
    check_out_dir(job)
    dataset = read_dataset(job.dataset)
    base = prepare_base(job.base, cache_root=job.cache_root, progress=reporter.message)
    reporter.message(loading_message(base, job.settings))
    model, tokenizer, device = load_model(base, job.settings)
    train, validation = encode(dataset, tokenizer, job.settings)
    checkpoint = job.out_dir / CHECKPOINT
    model = peft_model(model, job.settings, checkpoint if job.resume else None)
    job.out_dir.mkdir(parents=True, exist_ok=True)
    trainer = LoraTrainer(model, train, job.settings, pad_id=_pad_id(tokenizer), device=device, checkpoint_dir=checkpoint)
    if job.resume:
        trainer.load_checkpoint()
        reporter.message(f"resuming at step {trainer.state.step}/{trainer.steps}")
    reporter.message(f"training {trainer.steps} steps on {len(train)} conversations ({device})")
    state = trainer.train(reporter.step)
    return _finish(job, reporter, model, base, dataset, validation or train, state, trainer, "validation" if validation else "train")


def loading_message(base: BaseWeights, settings: TrainSettings) -> str:
    """What the progress line says while the base loads (QLoRA: that it is quantised, and from what)."""
    if not settings.qlora:
        return f"loading {base.name} from {base.folder}"
    origin = " (the GGUF's weights, dequantised)" if base.source.suffix == ".gguf" else ""
    return f"loading {base.name} from {base.folder}{origin}, quantised to 4-bit NF4 (QLoRA)"


def quantization(settings: TrainSettings) -> dict[str, Any]:
    """How the base was quantised for training (training.json's ``quantization``); {} = not at all."""
    if not settings.qlora:
        return {}
    from agent.train.qlora import quantization as described

    return described()


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def _finish(job: SftJob, reporter: Reporter, model: Any, base: BaseWeights, dataset: Dataset,
            eval_examples: list[Example], state: Any, trainer: LoraTrainer, split: str) -> TrainOutcome:
    from agent.train.convert import convert_peft_to_gguf

    model.save_pretrained(str(job.out_dir))
    reporter.message("converting the adapter to a llama.cpp LoRA GGUF")
    gguf = convert_peft_to_gguf(job.out_dir, job.out_dir / f"{job.name}.gguf", base.shape, name=job.name)
    reporter.message(f"evaluating base vs adapter on the {split} split ({len(eval_examples)} conversations)")
    report = evaluate(model, eval_examples, trainer.device, split)
    record = card.TrainingRecord(
        name=job.name, method="sft", base=base.describe(),
        dataset={"folder": str(dataset.folder), "manifest_sha256": dataset.manifest_sha256, "files": list(dataset.files),
                 "train_rows": len(dataset.train), "validation_rows": len(dataset.validation)},
        hyperparameters=job.settings.model_dump(mode="json"), steps=state.step, losses=tuple(state.losses),
        seconds=state.seconds, tokens_per_second=state.tokens / state.seconds if state.seconds else 0.0,
        files={"peft adapter": "adapter_model.safetensors", "llama.cpp LoRA": gguf.name, "persona": "persona.toml"},
        evaluation=report.as_dict(), quantization=quantization(job.settings),
    )
    persona = write_outputs(job, record, report.table(), common_system_prompt(dataset.train))
    shutil.rmtree(job.out_dir / CHECKPOINT, ignore_errors=True)
    return TrainOutcome(out_dir=job.out_dir, record=record, report=report, gguf=gguf, persona=persona)


def write_outputs(job: SftJob, record: card.TrainingRecord, eval_table: str | None, system_prompt: str) -> Path | None:
    """training.json, README.md (+ loss.png), persona.toml; the persona installed; its installed path."""
    card.write_record(job.out_dir, record)
    png = card.plot_losses(record.losses, job.out_dir / "loss.png")
    text = card.card_text(record, eval_table, png.name if png else None)
    (job.out_dir / "README.md").write_text(text, encoding="utf-8")
    persona = card.persona_text(job.name, job.out_dir.resolve(), system_prompt, f"LoRA adapter {job.name} ({record.method})")
    (job.out_dir / "persona.toml").write_text(persona, encoding="utf-8")
    if job.personas_dir is None:
        return None
    job.personas_dir.mkdir(parents=True, exist_ok=True)
    installed = job.personas_dir / f"{job.name}.toml"
    installed.write_text(persona, encoding="utf-8")
    return installed
