"""The ``[train]`` config section: defaults for ``epistemic train sft|dpo`` (each a CLI option too)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class TrainSettings(BaseModel):
    """LoRA training defaults; the command line overrides any of them for one run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field("", description="Base weights: a transformers model folder, a .gguf file or a model name; empty = the [llm] model.")
    rank: int = Field(8, ge=1, le=4096, description="LoRA rank r.")
    alpha: float = Field(16.0, gt=0, description="LoRA alpha (the update is scaled by alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input during training.")
    target_modules: tuple[str, ...] = Field(ALL_LINEAR, min_length=1, description="Linear layers that get an adapter (names inside each decoder layer).")
    learning_rate: float = Field(2e-4, gt=0, description="Peak learning rate (AdamW).")
    lr_schedule: Literal["constant", "linear", "cosine"] = Field("cosine", description="Learning-rate schedule after warm-up: constant, linear or cosine decay to zero.")
    warmup_steps: int = Field(0, ge=0, description="Optimizer steps of linear warm-up from zero.")
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay.")
    epochs: float = Field(3.0, gt=0, description="Passes over the training split (used when steps = 0).")
    steps: int = Field(0, ge=0, description="Optimizer steps to train; 0 = as many as epochs gives.")
    batch_size: int = Field(4, ge=1, description="Conversations per forward pass.")
    grad_accum: int = Field(1, ge=1, description="Forward passes per optimizer step (effective batch = batch_size x grad_accum).")
    max_length: int = Field(1024, ge=16, description="Tokens per conversation; longer ones are cut at the end.")
    assistant_only_loss: bool = Field(True, description="Learn only the assistant's tokens (prompts and user turns are context, not targets).")
    seed: int = Field(42, description="Seed for shuffling, dropout and adapter initialisation.")
    threads: int = Field(0, ge=0, description="CPU threads torch uses; 0 = all cores.")
    save_every: int = Field(0, ge=0, description="Save a checkpoint every this many steps (0 = only on Ctrl-C); --resume continues from it.")
    qlora: bool = Field(False, description="QLoRA: load the base in 4-bit NF4 (bitsandbytes, CUDA GPU only; the [qlora] extra) and train the LoRA on it.")
    dpo_beta: float = Field(0.1, gt=0, description="DPO: how far the adapter may move from the base (beta).")
