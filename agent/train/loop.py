"""The LoRA SFT training loop: batches, AdamW with warm-up and decay, accumulation, checkpoints.

Kept as lean as a bare PEFT + torch loop (``bench/bench_train.py`` holds it to that): per optimizer
step it adds one scheduler step and one progress callback. The order of batches is a pure
function of (seed, epoch), so a run resumed from a checkpoint sees the same batches it would
have seen; the checkpoint holds the adapter, optimizer, scheduler, RNG state and loss history.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import EXIT_INTERRUPTED, UserError
from agent.train.data import IGNORE, Example
from agent.train.settings import TrainSettings

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"


@dataclass(frozen=True)
class StepProgress:
    """One optimizer step done: what the progress line shows."""

    step: int
    total: int
    loss: float
    learning_rate: float
    tokens_per_second: float
    eta_seconds: float


@dataclass
class TrainState:
    """Where a run stands: steps done and the loss of each (saved in every checkpoint)."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0


class TrainingInterrupted(UserError):
    """Ctrl-C during training: the checkpoint was saved; ``--resume`` continues (exit 130)."""

    exit_code = EXIT_INTERRUPTED


def total_steps(settings: TrainSettings, examples: int) -> int:
    """Optimizer steps of a run: ``steps``, or as many as ``epochs`` passes over the examples give."""
    if settings.steps:
        return settings.steps
    per_epoch = math.ceil(examples / settings.batch_size)
    return max(1, math.ceil(settings.epochs * per_epoch / settings.grad_accum))


def micro_batches(examples: Sequence[Example], batch_size: int, seed: int) -> Iterator[list[Example]]:
    """Batches of examples, reshuffled each epoch from (seed, epoch), forever."""
    import torch

    epoch = 0
    while True:
        order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for start in range(0, len(order), batch_size):
            yield [examples[i] for i in order[start:start + batch_size]]
        epoch += 1


def collate(batch: Sequence[Example], pad_id: int, device: str) -> dict[str, Any]:
    """Right-padded tensors (input_ids, attention_mask, labels) for one batch."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, example in enumerate(batch):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def make_optimizer(model: Any, settings: TrainSettings, steps: int) -> tuple[Any, Any]:
    """AdamW over the trainable (LoRA) parameters and its warm-up + decay schedule."""
    import torch
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[settings.lr_schedule]
    scheduler = get_scheduler(name, optimizer, num_warmup_steps=settings.warmup_steps, num_training_steps=steps)
    return optimizer, scheduler


class OutOfMemory(UserError):
    """Training ran out of (CPU or GPU) memory; the message suggests smaller settings (exit code 1)."""


def out_of_memory(exc: BaseException, settings: TrainSettings) -> OutOfMemory | None:
    """The one-line error for an out-of-memory ``exc`` (torch's CPU or CUDA allocator, or Python's); else None."""
    text = str(exc).lower()
    if not (isinstance(exc, MemoryError) or "out of memory" in text or "can't allocate memory" in text):
        return None
    accum = settings.batch_size * settings.grad_accum
    shorter = max(16, settings.max_length // 2)
    rank = f"--rank {max(1, settings.rank // 2)}"
    tail = f"{rank}, or --qlora (the base in 4 bits)" if _cuda_available() and not settings.qlora else f"or {rank}"
    return OutOfMemory(
        f"out of memory while training (batch_size={settings.batch_size}, grad_accum={settings.grad_accum}, "
        f"max_length={settings.max_length}, rank={settings.rank}): try --batch-size 1 --grad-accum {accum} "
        f"(the same effective batch), --max-length {shorter}, {tail}"
    )


def _cuda_available() -> bool:
    """Whether torch sees a CUDA GPU (False where torch was never imported: nothing ran on a GPU)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_available())


class InterruptGate:
    """Ctrl-C at once, except inside ``held()``, where it is deferred to the block's end.

    Entered by LoraTrainer.train on the training process's main thread (where Python runs signal
    handlers; elsewhere it changes nothing); no lock: the handler runs on that same thread.
    """

    def __init__(self) -> None:
        self.holding = False
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> InterruptGate:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = True
        else:
            raise KeyboardInterrupt

    @contextmanager
    def held(self) -> Iterator[None]:
        """Ctrl-C inside this block raises KeyboardInterrupt only when the block is done."""
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


class LoraTrainer:
    """Trains the LoRA of a PEFT model on encoded examples.

    Used from one thread (the training process's main thread); no lock. ``checkpoint_dir`` receives
    a checkpoint every ``save_every`` steps and on Ctrl-C.
    """

    def __init__(self, model: Any, examples: Sequence[Example], settings: TrainSettings, *,
                 pad_id: int, device: str, checkpoint_dir: Path) -> None:
        self.model = model
        self.examples = examples
        self.settings = settings
        self.pad_id = pad_id
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.steps = total_steps(settings, len(examples))
        self.optimizer, self.scheduler = make_optimizer(model, settings, self.steps)
        self.state = TrainState()
        self._step_rng: Any = None  # torch's RNG state when the step under way began

    def _batches(self) -> Iterator[list[Example]]:
        stream = micro_batches(self.examples, self.settings.batch_size, self.settings.seed)
        for _ in range(self.state.step * self.settings.grad_accum):  # resumed: skip what was trained
            next(stream)
        return stream

    def accumulate(self, batches: Iterator[list[Example]]) -> tuple[float, int]:
        """Forward and backward over ``grad_accum`` batches; (mean loss, input tokens)."""
        total, tokens = 0.0, 0
        for _ in range(self.settings.grad_accum):
            inputs = collate(next(batches), self.pad_id, self.device)
            loss = self.model(**inputs).loss / self.settings.grad_accum
            loss.backward()
            total += float(loss.detach())
            tokens += int(inputs["attention_mask"].sum())
        return total, tokens

    def update(self) -> None:
        """The optimizer and scheduler step on the accumulated gradients."""
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def train(self, progress: Callable[[StepProgress], None] | None = None) -> TrainState:
        """Run to ``self.steps``; Ctrl-C saves a checkpoint and raises TrainingInterrupted.

        Ctrl-C during forward/backward drops the step under way; during the weight update and its
        bookkeeping it takes effect right after, so a checkpoint never holds half a step.
        """
        import torch

        self.model.train()
        batches = self._batches()
        started = time.perf_counter() - self.state.seconds  # a resumed run counts its earlier time
        gate = InterruptGate()
        try:
            with gate:
                while self.state.step < self.steps:
                    self._step_rng = torch.get_rng_state()  # a step cut short resumes with the RNG it began with
                    loss, tokens = self.accumulate(batches)
                    with gate.held():
                        self.update()
                        self._record(loss, tokens, started)
                        self._step_rng = None
                    if progress is not None:
                        progress(self._progress(started))
                    if self.settings.save_every and self.state.step % self.settings.save_every == 0:
                        with gate.held():
                            self.save_checkpoint()
        except KeyboardInterrupt:
            self.optimizer.zero_grad(set_to_none=True)  # drop the half-accumulated step
            self.save_checkpoint()
            if progress is not None and self.state.losses:  # Ctrl-C may land between a step and its report
                progress(self._progress(started))
            raise TrainingInterrupted(
                f"interrupted at step {self.state.step}/{self.steps}; checkpoint saved in {self.checkpoint_dir}; "
                "run the same command with --resume to continue"
            ) from None
        except (RuntimeError, MemoryError) as exc:
            error = out_of_memory(exc, self.settings)
            if error is None:
                raise
            raise error from None
        return self.state

    def _record(self, loss: float, tokens: int, started: float) -> None:
        self.state.step += 1
        self.state.losses.append(loss)
        self.state.tokens += tokens
        self.state.seconds = time.perf_counter() - started

    def _progress(self, started: float) -> StepProgress:
        elapsed = time.perf_counter() - started
        per_step = elapsed / max(1, self.state.step)
        return StepProgress(
            step=self.state.step, total=self.steps, loss=self.state.losses[-1],
            learning_rate=float(self.scheduler.get_last_lr()[0]),
            tokens_per_second=self.state.tokens / elapsed if elapsed > 0 else 0.0,
            eta_seconds=per_step * (self.steps - self.state.step),
        )

    # -- checkpoints ------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Adapter, optimizer, scheduler, RNG and loss history into ``checkpoint_dir``."""
        import torch

        folder = self.checkpoint_dir
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder))
        rng = self._step_rng if self._step_rng is not None else torch.get_rng_state()
        saved = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(), "rng": rng}
        if torch.cuda.is_available():
            saved["cuda_rng"] = torch.cuda.get_rng_state_all()
        torch.save(saved, folder / "optimizer.pt")
        state = {"step": self.state.step, "losses": self.state.losses, "tokens": self.state.tokens,
                 "seconds": self.state.seconds, "total_steps": self.steps}
        (folder / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        log.info("checkpoint at step %d saved in %s", self.state.step, folder)
        return folder

    def load_checkpoint(self) -> None:
        """Continue from ``checkpoint_dir`` (the adapter weights were loaded with the model)."""
        import torch

        state = json.loads((self.checkpoint_dir / STATE_FILE).read_text(encoding="utf-8"))
        if state.get("total_steps", self.steps) != self.steps:
            raise UserError(f"{self.checkpoint_dir}: the checkpoint is of a {state['total_steps']}-step run, not {self.steps}; "
                            "resume with the settings it was started with")
        saved = torch.load(self.checkpoint_dir / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        if "cuda_rng" in saved and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        self.state = TrainState(step=state["step"], losses=list(state["losses"]), tokens=state["tokens"], seconds=state["seconds"])
