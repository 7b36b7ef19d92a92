"""``epistemic log list|show`` against real SQLite files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.config import LogSettings, Settings
from agent.config_load import LoadedConfig
from agent.llm.base import TokenStep, TopAlternative
from agent.log import DialogueLog
from agent.records import AssistantTurnRecord, UserTurnRecord

REPO = Path(__file__).resolve().parents[1]


def reply(conversation_id: int, parent_id: int | None, text: str, **overrides: object) -> AssistantTurnRecord:
    steps = [
        TokenStep(0, 4211, "Ар", -0.25, 1.5, (TopAlternative(4211, "Ар", -0.25), TopAlternative(88, "Эй", -2.0))),
        TokenStep(1, 977, "р!", -1.75, 2.25, (), True),
    ]
    fields: dict = dict(
        conversation_id=conversation_id, parent_id=parent_id, text=text, reasoning="", raw_text=text,
        prompt_text="prompt", prompt_tokens=12, backend="llama_cpp", model_id="SmolLM2-135M-Instruct",
        model_path="/m.gguf", model_hash="00", persona="пират",
        adapters=[{"id": "pirate", "scale": 0.8}],
        sampler={"temperature": 0.3, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "repeat_penalty": 1.1,
                 "seed": 11, "max_tokens": 64, "dry_multiplier": 0.8},
        timings={"completion_tokens": 2, "time_to_first_token": 0.2, "tokens_per_second": 12.5},
        stop_reason="eos", interrupted=False, steps=steps,
    )
    fields.update(overrides)
    return AssistantTurnRecord(**fields)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dialogues.sqlite3"


@pytest.fixture
def filled(db_path: Path) -> dict[str, int]:
    """Two conversations; the second has an interrupted reply, a regenerated one and reasoning."""
    with DialogueLog(db_path) as log:
        first = log.new_conversation(persona="assistant", title="Первый")
        log.add_user_turn(UserTurnRecord(first, "hello"))
        second = log.new_conversation(persona="пират", title="О кораблях")
        user = log.add_user_turn(UserTurnRecord(second, "Расскажи о кораблях", source="voice", audio_path="a/1.wav"))
        cut = log.add_assistant_turn(reply(second, user, "Корабли бывают разные, и", stop_reason="cancelled",
                                           interrupted=True, heard_text="Корабли бывают"))
        again = log.add_assistant_turn(reply(second, user, "Арр! Корабли!", alternative_of=cut, reasoning="Надо ответить по-пиратски."))
    return {"first": first, "second": second, "user": user, "cut": cut, "again": again}


def run(db_path: Path, *args: str):
    from agent.cli.log_cmd import log

    loaded = LoadedConfig(settings=Settings(log=LogSettings(path=str(db_path))), file=None)
    return CliRunner().invoke(log, list(args), obj={"config": loaded}, catch_exceptions=True)


def test_list_without_a_database(db_path: Path) -> None:
    result = run(db_path, "list")
    assert result.exit_code == 0 and "No conversations yet" in result.output
    assert json.loads(run(db_path, "list", "--json").output) == []
    assert not db_path.exists()  # listing never creates the file


def test_list_table_and_json(db_path: Path, filled: dict[str, int]) -> None:
    result = run(db_path, "list")
    assert result.exit_code == 0, result.output
    header, newest, oldest = result.output.splitlines()
    assert header.split() == ["ID", "STARTED", "PERSONA", "TURNS", "TITLE"]
    assert newest.split()[0] == str(filled["second"]) and "пират" in newest and newest.endswith("О кораблях")
    assert newest.split()[4] == "2"  # user turn + one reply (its alternative is not another turn)
    assert oldest.split()[0] == str(filled["first"])
    rows = json.loads(run(db_path, "list", "--json", "--limit", "1").output)
    assert [(r["id"], r["title"], r["turns"]) for r in rows] == [(filled["second"], "О кораблях", 2)]


def test_show_text(db_path: Path, filled: dict[str, int]) -> None:
    result = run(db_path, "show", str(filled["second"]))
    assert result.exit_code == 0, result.output
    out = result.output
    assert 'Conversation 2 "О кораблях"' in out
    assert f"#{filled['user']} user" in out and "[voice · audio a/1.wav]" in out
    assert "temperature=0.3 top_k=40" in out and "dry_multiplier=0.8" in out
    assert "llama_cpp SmolLM2-135M-Instruct · adapters: pirate×0.8" in out
    assert "stop cancelled" in out and "[INTERRUPTED; heard: 'Корабли бывают']" in out
    assert f"[alternative 1 of 2 for #{filled['cut']}, superseded by #{filled['again']}]" in out
    assert f"[alternative 2 of 2 for #{filled['cut']}, active]" in out
    assert "Надо ответить по-пиратски." in out and "mean entropy 1.88 nats" in out
    assert "'Ар'" not in out  # the token table only with --tokens


def test_show_tokens_table(db_path: Path, filled: dict[str, int]) -> None:
    out = run(db_path, "show", str(filled["second"]), "--tokens").output
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("0 ", "1 "))]
    assert ["0", "4211", "'Ар'", "-0.250", "1.500"] == rows[0][:5]
    assert "'Эй'" in rows[0] and rows[1][5] == "yes"


def test_show_json_has_every_field(db_path: Path, filled: dict[str, int]) -> None:
    data = json.loads(run(db_path, "show", str(filled["second"]), "--json", "--tokens").output)
    turns = {t["id"]: t for t in data["turns"]}
    cut, again = turns[filled["cut"]], turns[filled["again"]]
    assert (cut["active"], again["active"], again["alternative_of"]) == (False, True, filled["cut"])
    assert cut["data"]["heard_text"] == "Корабли бывают" and cut["interrupted"] is True
    assert again["tokens"][0]["top"][1] == {"token_id": 88, "text": "Эй", "logprob": -2.0}
    assert turns[filled["user"]]["data"]["source"] == "voice"


def test_show_survives_corrupt_telemetry(db_path: Path, filled: dict[str, int]) -> None:
    import sqlite3

    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE token_telemetry SET data = x'01deadbeef' WHERE turn_id = ?", (filled["cut"],))
    raw.commit()
    raw.close()
    result = run(db_path, "show", str(filled["second"]), "--tokens")
    assert result.exit_code == 0, result.output
    assert f"[telemetry unreadable: turn {filled['cut']}:" in result.output
    assert "Корабли бывают разные" in result.output and "'Эй'" in result.output  # the other turn still shows
    data = json.loads(run(db_path, "show", str(filled["second"]), "--json").output)
    assert "telemetry_error" in next(t for t in data["turns"] if t["id"] == filled["cut"])


def test_show_missing_conversation_through_the_real_cli(db_path: Path, filled: dict[str, int], tmp_path: Path) -> None:
    env = os.environ | {"EPISTEMIC_LOG__PATH": str(db_path), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    code = "from agent.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "log", "show", "99"], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 4
    assert done.stderr.strip().endswith("no conversation 99") and "Traceback" not in done.stderr
    listed = subprocess.run([sys.executable, "-c", code, "log", "list"], capture_output=True, text=True, env=env, cwd=REPO)
    assert listed.returncode == 0 and "О кораблях" in listed.stdout


def test_read_only_log_is_still_browsable(db_path: Path, filled: dict[str, int]) -> None:
    db_path.chmod(0o444)
    result = run(db_path, "list")
    assert result.exit_code == 0 and "О кораблях" in result.output
