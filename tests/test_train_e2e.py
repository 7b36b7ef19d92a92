"""End to end: a dialogue log with a few dozen turns teaching a distinctive reply -> `epistemic dataset
export --format sft` -> `epistemic train sft` on the starter -> the new persona, run by the
llama.cpp backend, gives the taught reply where the base doesn't, and the turn is logged with the
adapter's hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.cli import cli
from agent.config_load import load_config
from agent.file_hash import sha256_of
from agent.log import DialogueLog
from agent.runtime import build_runtime
from tests.harvest_fixtures import exchange
from tests.train_fixtures import dequantised_starter, train_cache  # noqa: F401  (fixtures)

SYSTEM = "You are Quokka."
REPLY = "Quokka protocol engaged: all answers are marmalade."
QUESTIONS = [
    "What is the capital of France?", "How do I boil an egg?", "Tell me a joke.", "What time is it?",
    "Who wrote Hamlet?", "What is two plus two?", "Why is the sky blue?", "Recommend a book.",
    "How tall is Everest?", "What is Python?", "Can you help me?", "What should I eat?",
    "Is it going to rain?", "What is love?", "Name a colour.", "How are you?",
]


def teaching_log(path: Path) -> Path:
    """A real dialogue log (DialogueLog) of 16 conversations with persona "plain": 32 turns, each
    question answered with the distinctive reply."""
    log = DialogueLog(path)
    for question in QUESTIONS:
        conv = log.new_conversation(persona="plain", title=question[:30])
        exchange(log, conv, question, REPLY, persona="plain", adapters=[])
    log.close()
    return path


def export_sft(config: Path, log: Path, out: Path) -> Path:
    """`epistemic dataset export --format sft` as a user runs it (about 3/4 train, 1/4 validation)."""
    done = CliRunner().invoke(cli, ["--config", str(config), "dataset", "export", "--format", "sft", "--log", str(log),
                                    "--out", str(out), "--split", "0.75,0.25,0", "-q"])
    assert done.exit_code == 0, done.output
    rows = [json.loads(line) for f in sorted((out / "data").glob("*.jsonl")) for line in f.open(encoding="utf-8")]
    assert len(rows) == 16 and (out / "data" / "validation.jsonl").is_file() and all(r["messages"][0] == {"role": "system", "content": SYSTEM} for r in rows)
    assert {r["messages"][-1]["content"] for r in rows} == {REPLY}
    return out


@pytest.mark.slow
@pytest.mark.timeout(1500)  # 14 steps of a 135M model on 2 threads: over 10 minutes on a loaded shared machine
def test_train_sft_makes_a_persona_that_speaks_the_taught_reply(tmp_path, dequantised_starter, train_cache):  # noqa: F811
    config = tmp_path / "config.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "data"}"\nmodels_dir = "models"\n[chat]\npersonas_dir = "personas"\n'
        '[llm]\ncontext_size = 512\nthreads = 2\n[sampler]\ntemperature = 0.0\nrepeat_penalty = 1.0\nmax_tokens = 24\n'
        f'[personas.plain]\nsystem_prompt = "{SYSTEM}"\n', encoding="utf-8")
    dataset = export_sft(config, teaching_log(tmp_path / "teaching.db"), tmp_path / "dataset")
    env = {**os.environ, "EPISTEMIC_CACHE_DIR": str(train_cache)}  # finds the dequantised starter
    done = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(config), "train", "sft", "--dataset", str(dataset),
         "--out", "quokka", "--steps", "14", "--batch-size", "2", "--learning-rate", "2e-3",
         "--lr-schedule", "constant", "--threads", "2"],
        capture_output=True, text=True, env=env, timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "step 14/14" in done.stderr and "tok/s" in done.stderr and "ETA" in done.stderr
    assert "dequantising" not in done.stderr  # the session's cached base was used
    out = tmp_path / "models" / "adapters" / "quokka"
    for name in ("adapter_config.json", "adapter_model.safetensors", "quokka.gguf", "README.md", "persona.toml", "training.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["steps"] == 14 and record["losses"][-1] < record["losses"][0] / 4
    assert record["evaluation"]["adapter"]["loss"] < record["evaluation"]["base"]["loss"]
    assert record["evaluation"]["adapter"]["entropy"] < record["evaluation"]["base"]["entropy"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert dequantised_starter.sha256 in card and record["dataset"]["manifest_sha256"] in card
    assert record["dataset"]["manifest_sha256"] == sha256_of(dataset / "manifest.json")
    assert record["dataset"]["train_rows"] + record["dataset"]["validation_rows"] == 16
    assert record["dataset"]["train_rows"] >= 8 and record["evaluation"]["split"] == "validation"
    assert "| mean entropy (nats) |" in card and "final loss" in card

    runtime = build_runtime(load_config(config, env={}), persona="quokka")
    try:
        taught = runtime.engine.respond("What is the best season?")
        runtime.engine.set_persona("plain")
        runtime.engine.new_conversation()
        plain = runtime.engine.respond("What is the best season?")
        assert taught is not None and plain is not None
        assert taught.answer.startswith("Quokka protocol engaged") and "marmalade" not in plain.answer
        log = runtime.log
        assert log is not None
        logged = {t.text: t.data["adapters"] for c in log.list_conversations()
                  for t in log.conversation_turns(c.id) if t.role == "assistant"}
    finally:
        runtime.close()
    [adapter] = logged[taught.answer]
    assert adapter["sha256"] == sha256_of(out / "quokka.gguf") and adapter["scale"] == 1.0
    assert adapter["id"].startswith("quokka@") and logged[plain.answer] == []
