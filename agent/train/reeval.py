"""``epistemic train eval NAME``: evaluate a trained adapter again (base vs adapter), update its card."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from agent.errors import UserError
from agent.train import card
from agent.train.base_weights import prepare_base
from agent.train.data import read_dataset
from agent.train.evaluate import EvalReport, evaluate
from agent.train.run import Reporter, encode, load_model
from agent.train.settings import TrainSettings


def reevaluate(folder: Path, dataset_dir: Path | None, reporter: Reporter) -> EvalReport:
    """Score base and adapter on the validation split (train split when there is none); card rewritten."""
    from agent.train.torch_env import import_peft

    try:
        record = card.read_record(folder)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder}: not an adapter trained here (training.json unreadable: {exc})") from None
    settings = TrainSettings.model_validate(record.hyperparameters)
    base = prepare_base(record.base["source"], progress=reporter.message)
    dataset = read_dataset(dataset_dir or Path(record.dataset["folder"]))
    reporter.message(f"loading {base.name} and adapter {folder.name}")
    model, tokenizer, device = load_model(base, settings)
    model = import_peft().PeftModel.from_pretrained(model, str(folder))
    train, validation = encode(dataset, tokenizer, settings)
    split = "validation" if validation else "train"
    reporter.message(f"evaluating on the {split} split")
    report = evaluate(model, validation or train, device, split)
    updated = replace(record, evaluation=report.as_dict())
    card.write_record(folder, updated)
    png = folder / "loss.png"
    text = card.card_text(updated, report.table(), png.name if png.is_file() else None)
    (folder / "README.md").write_text(text, encoding="utf-8")
    return report
