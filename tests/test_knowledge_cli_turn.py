"""As a user runs it: ``knowledge add`` a note, then ``chat --once`` with a persona that retrieves;
the logged turn keeps what was retrieved and the prompt carried the source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent.log import DialogueLog

NOTE = "# Lighthouse\n\nThe keeper of the Vardø lighthouse feeds his cat Pelle at seven every morning.\n"
CONFIG = """[paths]
data_dir = "{data}"
[sampler]
temperature = 0.0
max_tokens = 24
[personas.reader]
system_prompt = "Answer from the sources."
retrieve = "knowledge"
"""


def _epistemic(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPISTEMIC_")}
    env["EPISTEMIC_CONFIG"] = str(tmp_path / "config.toml")
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL)


def test_a_retrieving_persona_gets_the_note_and_the_turn_logs_it(tmp_path):
    (tmp_path / "config.toml").write_text(CONFIG.format(data=tmp_path / "data"), encoding="utf-8")
    (tmp_path / "lighthouse.md").write_text(NOTE, encoding="utf-8")
    added = _epistemic(tmp_path, "knowledge", "add", str(tmp_path / "lighthouse.md"))
    assert added.returncode == 0, added.stderr
    chat = _epistemic(tmp_path, "chat", "--once", "When does the lighthouse keeper feed his cat?", "--persona", "reader", "--json")
    assert chat.returncode == 0, chat.stderr
    finished = [json.loads(line) for line in chat.stdout.splitlines() if '"turn_finished"' in line][-1]
    with DialogueLog(tmp_path / "data" / "dialogues.sqlite3") as log:
        turn = log.get_turn(finished["turn_id"])
    retrieval = turn.data["extra"]["retrieval"]
    assert retrieval["sources"] and "lighthouse.md" in json.dumps(retrieval)
    assert "Pelle at seven" in turn.data["prompt_text"]
    assert finished["retrieval"] == retrieval  # --json shows what the log keeps
    text = _epistemic(tmp_path, "chat", "--once", "When does the lighthouse keeper feed his cat?", "--persona", "reader")
    assert text.returncode == 0 and "[sources: [1] lighthouse.md § Lighthouse" in text.stderr
