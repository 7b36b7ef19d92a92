"""`train dpo` for real: a log whose replies were corrected -> `epistemic dataset export --format dpo`
-> `epistemic train dpo` (TRL's DPOTrainer) for a few steps on a tiny fabricated base -> adapter,
GGUF, card and persona, finite losses starting at ln 2 and falling, reward margins growing."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.config_load import load_config
from agent.harvest import curation
from agent.log import DialogueLog
from agent.train.jobs import STATUS_FILE, read_status
from tests.harvest_fixtures import exchange
from tests.train_fixtures import epistemic, tiny_base, train_config  # noqa: F401  (fixtures)

QUESTIONS = ["What is the capital of France?", "How do I boil an egg?", "Tell me a joke.", "Who wrote Hamlet?"]
CURT, KIND = "A curt answer.", "Thank you kindly, my friend."


@pytest.mark.slow
def test_train_dpo_on_an_export_of_corrected_replies(tmp_path, tiny_base):  # noqa: F811
    config = train_config(tmp_path)
    log = DialogueLog(load_config(config, env={}).log_path())
    for i in range(8):
        conv = log.new_conversation(persona="assistant", title=f"c{i}")
        _, answer = exchange(log, conv, f"{QUESTIONS[i % 4]} ({i})", CURT)
        curation.edit(log, answer, KIND)
    log.close()
    exported = CliRunner().invoke(cli, ["--config", str(config), "dataset", "export", "--format", "dpo",
                                        "--out", str(tmp_path / "prefs"), "--split", "1,0,0", "-q"])
    assert exported.exit_code == 0, exported.output
    rows = [json.loads(line) for line in (tmp_path / "prefs" / "data" / "train.jsonl").open(encoding="utf-8")]
    assert len(rows) == 8 and {r["chosen"][-1]["content"] for r in rows} == {KIND}

    done = epistemic(config, "train", "dpo", "--dataset", str(tmp_path / "prefs"), "--out", "kind",
                     "--base", str(tiny_base), "--steps", "6", "--batch-size", "4", "--learning-rate", "5e-3",
                     "--threads", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "step 6/6" in done.stderr and "tok/s" in done.stderr and "Traceback" not in done.stderr
    assert "{'loss'" not in done.stdout and "steps 6, final loss" in done.stdout  # TRL's log dicts not printed
    out = tmp_path / "models" / "adapters" / "kind"
    for name in ("adapter_config.json", "adapter_model.safetensors", "kind.gguf", "README.md", "persona.toml", "training.json"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint").exists()
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    losses, margins = record["losses"], record["evaluation"]["reward_margins"]
    assert record["method"] == "dpo" and record["steps"] == 6 and len(losses) == len(margins) == 6
    assert all(math.isfinite(v) for v in losses + margins)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-3)  # the adapter starts as the reference model
    assert losses[-1] < losses[0] - 0.1 and margins[-1] > margins[0] + 0.1
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## DPO rewards" in card and f"| 6 | {losses[-1]:.4f} | {margins[-1]:.4f} |" in card
    status = read_status(out / STATUS_FILE)
    assert status is not None and status.state == "finished" and status.method == "dpo" and status.step == 6
    assert (tmp_path / "personas" / "kind.toml").is_file()
