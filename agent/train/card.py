"""What a training run leaves beside the adapter: ``training.json``, the card ``README.md``, the loss
curve (``loss.png`` where matplotlib is installed) and a persona TOML that uses the adapter.

``training.json`` is the machine-readable record (``epistemic train eval NAME`` reads it to find
the base and the dataset again); the card says the same for people.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RECORD_FILE = "training.json"


@dataclass(frozen=True)
class TrainingRecord:
    """Everything about one finished run, as written to ``training.json``."""

    name: str
    method: str  # "sft" | "dpo"
    base: dict[str, str]
    dataset: dict[str, Any]
    hyperparameters: dict[str, Any]
    steps: int
    losses: tuple[float, ...]
    seconds: float
    tokens_per_second: float
    files: dict[str, str]  # role -> file name in the adapter folder
    evaluation: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)  # QLoRA's 4-bit base; {} = trained unquantised

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else float("nan")

    @property
    def best_loss(self) -> float:
        return min(self.losses) if self.losses else float("nan")


def write_record(folder: Path, record: TrainingRecord) -> Path:
    """``training.json`` in the adapter folder."""
    data = {**record.__dict__, "losses": list(record.losses), "final_loss": record.final_loss, "best_loss": record.best_loss}
    path = folder / RECORD_FILE
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def read_record(folder: Path) -> TrainingRecord:
    """The record of an earlier run (KeyError/ValueError/OSError when the folder has none)."""
    data = json.loads((folder / RECORD_FILE).read_text(encoding="utf-8"))
    data.pop("final_loss", None)
    data.pop("best_loss", None)
    data["losses"] = tuple(data["losses"])
    return TrainingRecord(**data)


def plot_losses(losses: tuple[float, ...], path: Path) -> Path | None:
    """The loss curve as a PNG; None when matplotlib is not installed."""
    import importlib

    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(range(1, len(losses) + 1), losses)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _curve(losses: tuple[float, ...], per_line: int = 10) -> str:
    rows = [", ".join(f"{v:.4f}" for v in losses[i:i + per_line]) for i in range(0, len(losses), per_line)]
    return "\n".join(f"    {start + 1:>4}: {row}" for start, row in zip(range(0, len(losses), per_line), rows, strict=True))


def _quantized(q: dict[str, Any]) -> str:
    if not q:
        return "no (the LoRA was trained on the unquantised base)"
    return (f"yes: the base loaded in {q.get('bits')}-bit {q.get('quant_type')} (double quantisation "
            f"{'on' if q.get('double_quant') else 'off'}, compute {q.get('compute_dtype')}, bitsandbytes "
            f"{q.get('bitsandbytes')}); the LoRA weights are unquantised")


def card_text(record: TrainingRecord, eval_table: str | None, png: str | None) -> str:
    """The training card (Markdown)."""
    hp = "\n".join(f"| {k} | {v} |" for k, v in record.hyperparameters.items())
    base, data = record.base, record.dataset
    parts = [
        f"# LoRA adapter `{record.name}`", "",
        f"Trained with `epistemic train {record.method}`; load it by choosing the persona `{record.name}`.", "",
        "## Base model", "",
        f"- name: {base.get('name')}", f"- source: `{base.get('source')}`", f"- sha256: `{base.get('sha256')}`",
        f"- QLoRA: {_quantized(record.quantization)}", "",
        "## Dataset", "",
        f"- folder: `{data.get('folder')}`", f"- manifest sha256: `{data.get('manifest_sha256')}`",
        f"- conversations: {data.get('train_rows')} train, {data.get('validation_rows')} validation", "",
        "## Hyper-parameters", "", "| key | value |", "|---|---|", hp, "",
        "## Training", "",
        f"- optimizer steps: {record.steps}", f"- final loss: {record.final_loss:.4f}", f"- best loss: {record.best_loss:.4f}",
        f"- time: {record.seconds:.1f} s ({record.tokens_per_second:.0f} tokens/s)", "",
        "Loss per optimizer step:", "", _curve(record.losses), "",
    ]
    if png:
        parts += [f"![loss curve]({png})", ""]
    heading = "## DPO rewards (TRL's log)" if record.method == "dpo" else "## Evaluation (base vs adapter)"
    parts += [heading, "", eval_table or "No evaluation was run.", "",
              "## Files", "", *(f"- `{name}`: {role}" for role, name in record.files.items()), ""]
    return "\n".join(parts)


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def persona_text(name: str, adapter_folder: Path, system_prompt: str, description: str) -> str:
    """A persona TOML that applies the adapter (folder path: both backends find their format in it)."""
    return "\n".join([
        f"# Persona for the LoRA adapter trained by `epistemic train` ({adapter_folder.name}).",
        f"name = {_toml_string(name)}",
        f"description = {_toml_string(description)}",
        f"system_prompt = {_toml_string(system_prompt)}",
        'language = "en"',
        f"adapters = [{{ path = {_toml_string(str(adapter_folder))}, scale = 1.0 }}]",
        "",
    ])
