"""A few TRL trainer steps (SFT, DPO, KTO) on exported datasets with a tiny fabricated model (CPU),
and an exported SFT conversation rendered with the starter model's chat template reproducing the
prompt the model was actually given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.harvest import curation
from agent.harvest.export.options import ExportOptions, Filters
from agent.harvest.export.run import export
from agent.log import DialogueLog
from tests.harvest_fixtures import reply, tiny_chat_model, varied_log

__all__ = ["tiny_chat_model"]


def _dataset(path: Path) -> Any:
    """The JSONL file as a Dataset built from a pyarrow table (Dataset.from_list once failed to pickle)."""
    import pyarrow.json as paj
    from datasets import Dataset

    table = paj.read_json(path)
    keep = [c for c in table.column_names if c in ("messages", "prompt", "chosen", "rejected", "completion", "label")]
    return Dataset(table.select(keep), fingerprint=f"export-{path.stat().st_size}")


@pytest.fixture(scope="module")
def curated_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trl") / "log.db"
    log = varied_log(path, conversations=6)
    for conv in range(1, 7):
        first, second = [t for t in log.conversation_turns(conv) if t.role == "assistant"]
        better = log.add_assistant_turn(reply(conv, first.parent_id, f"A fuller answer {conv}.", alternative_of=first.id))
        curation.rate(log, first.id, "bad")
        curation.rate(log, better, "good")
        curation.edit(log, second.id, f"Because {conv}, friend.")
    log.close()
    return path


def _export(log: Path, out: Path, fmt: str) -> Path:
    export(ExportOptions(fmt, out, Filters(), split=(1.0, 0.0, 0.0)), log)
    return out / "data" / "train.jsonl"


@pytest.mark.parametrize("fmt", ["sft", "dpo", "kto"])
def test_trainer_steps_on_export(tmp_path: Path, curated_log: Path, tiny_chat_model: Path, fmt: str) -> None:
    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = _dataset(_export(curated_log, tmp_path / fmt, fmt))
    assert len(data) >= 6
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    common = dict(output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=2, report_to=[],
                  save_strategy="no", logging_steps=1, use_cpu=True, dataloader_num_workers=0)
    if fmt == "sft":
        args: Any = trl.SFTConfig(**common, max_length=256, assistant_only_loss=True)
        trainer: Any = trl.SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    elif fmt == "dpo":
        args = trl.DPOConfig(**common, max_length=256)
        trainer = trl.DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    else:
        args = trl.KTOConfig(**common, max_length=256)
        trainer = trl.KTOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses and all(loss == loss and loss > 0 for loss in losses)


def test_sft_conversation_reproduces_the_prompt_sent(tmp_path: Path, make_config: Any, starter_model: Any) -> None:
    from agent.engine import ConversationEngine
    from agent.llm.base import ChatMessage
    from agent.llm.sampler import SamplerSettings
    from agent.personas import PersonaBook

    config = make_config("[llm]\ncontext_size = 2048\n[sampler]\nmax_tokens = 12\ntemperature = 0.0\n")
    log = DialogueLog(config.log_path())
    personas = PersonaBook(config)
    engine = ConversationEngine(starter_model, personas, SamplerSettings(max_tokens=12, temperature=0.0), log)
    for question in ("What is the capital of France?", "And of Italy?", "Thanks!"):
        engine.respond(question)
    log.close()
    report = export(ExportOptions("sft", tmp_path / "out", Filters(reasoning=False), split=(1.0, 0.0, 0.0)),
                    config.log_path(), system_prompts=lambda name: personas.get(name).system_prompt)
    (row,) = [__import__("json").loads(line) for line in (tmp_path / "out" / "data" / "train.jsonl").open()]
    assert report.rows == {"data/train.jsonl": 1}
    messages = [ChatMessage(m["role"], m["content"]) for m in row["messages"]]
    with DialogueLog(config.log_path(), readonly=True) as opened:
        for k, source in enumerate(row["provenance"]):
            end = (2 * k + 2) if messages[0].role == "system" else (2 * k + 1)
            sent = opened.get_turn(source["turn_id"]).data["prompt_text"]
            assert starter_model.render_prompt(messages[:end]).text == sent
    assert messages[0].role == "system" and messages[0].content == personas.get(None).system_prompt
