"""``epistemic chat`` as a user runs it: real processes, real model, real SQLite file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.log import DialogueLog


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPISTEMIC_") or k == "EPISTEMIC_PULSE_DIR"}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_STATE_HOME=str(tmp_path / "state"))
    env.update(extra)
    return env


def _epistemic(args, tmp_path, **env):
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path, **env), timeout=300, stdin=subprocess.DEVNULL)


def _db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "epistemic-engine" / "dialogues.sqlite3"


def test_once_prints_the_reply_and_logs_it(tmp_path):
    proc = _epistemic(["chat", "--once", "Say hello.", "--persona", "assistant"], tmp_path, EPISTEMIC_SAMPLER__SEED="1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "Traceback" not in proc.stderr
    with DialogueLog(_db(tmp_path)) as log:
        [conv] = log.list_conversations()
        user, reply = log.conversation_turns(conv.id)
    assert user.text == "Say hello." and reply.text.strip() == proc.stdout.strip()


def test_json_events_carry_per_token_telemetry(tmp_path):
    proc = _epistemic(["chat", "--once", "Count to five.", "--json"], tmp_path, EPISTEMIC_SAMPLER__MAX_TOKENS="20")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    tokens = [e for e in events if e["event"] == "token"]
    assert events[0]["event"] == "turn_started" and events[-1]["event"] == "turn_finished"
    assert tokens and all(t["entropy"] >= 0 and t["logprob"] <= 0 for t in tokens)
    assert events[-1]["timings"]["completion_tokens"] == len({t["index"] for t in tokens})
    assert all(t["varentropy"] >= 0 and t["action"] is None for t in tokens)  # fixed mode: no action


def test_json_events_carry_the_adaptive_action(tmp_path):
    proc = _epistemic(["chat", "--once", "Count to five.", "--json"], tmp_path, EPISTEMIC_SAMPLER__MAX_TOKENS="12",
                      EPISTEMIC_SAMPLER__MODE="adaptive")
    assert proc.returncode == 0, proc.stderr
    tokens = [e for e in map(json.loads, proc.stdout.splitlines()) if e["event"] == "token"]
    assert tokens and all(t["action"] in ("argmax", "sample", "explore", "pause") for t in tokens)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"EPISTEMIC_LLM__MODEL": "/nonexistent/model.gguf"}, "/nonexistent/model.gguf"),
        ({"EPISTEMIC_SAMPLER__TEMPERATURE": "hot"}, "sampler.temperature"),
        ({"EPISTEMIC_LLM__BACKEND": "nope"}, "llm.backend"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(tmp_path, env, needle):
    proc = _epistemic(["chat", "--once", "hi"], tmp_path, **env)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert needle in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1


def test_corrupt_model_file_is_named(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + os.urandom(4096))
    proc = _epistemic(["chat", "--once", "hi"], tmp_path, EPISTEMIC_LLM__MODEL=str(bad))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and str(bad) in proc.stderr


def test_read_only_database_is_a_clear_message(tmp_path):
    data = tmp_path / "ro"
    data.mkdir()
    db = data / "dialogues.sqlite3"
    DialogueLog(db).close()
    db.chmod(0o444)
    data.chmod(0o555)
    try:
        proc = _epistemic(["chat", "--once", "hi"], tmp_path, EPISTEMIC_PATHS__DATA_DIR=str(data))
    finally:
        data.chmod(0o755)
    # refused even as root (who could write): the user asked for a read-only file
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    assert "read-only" in proc.stderr.lower() and str(data) in proc.stderr


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _count_turns(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("select count(*) from turns").fetchone()[0]
    except sqlite3.Error:
        return 0


def _start_chat(tmp_path, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "chat", "--json"], cwd=tmp_path, env=_env(tmp_path, **env),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_tokens(proc, count):
    seen = 0
    while seen < count:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        if json.loads(line)["event"] == "token":
            seen += 1


def test_sigkill_mid_reply_leaves_earlier_turns_intact_and_the_reply_marked_crashed(tmp_path):
    proc = _start_chat(tmp_path, EPISTEMIC_SAMPLER__MAX_TOKENS="400", EPISTEMIC_SAMPLER__SEED="5")
    try:
        proc.stdin.write("Say one word.\n")
        proc.stdin.flush()
        assert _wait_for(lambda: _count_turns(_db(tmp_path)) == 2)
        while json.loads(proc.stdout.readline() or '{"event": "eof"}')["event"] not in ("turn_finished", "eof"):
            pass  # the first reply's lines are read: the tokens counted next are the second reply's
        proc.stdin.write("Now tell me a very long story about the sea.\n")
        proc.stdin.flush()
        _wait_tokens(proc, 5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    with DialogueLog(_db(tmp_path)) as log:
        [conv] = log.list_conversations()
        turns = log.conversation_turns(conv.id)
    assert [t.role for t in turns[:2]] == ["user", "assistant"]
    assert turns[0].text == "Say one word."
    assert len(turns) == 4 and turns[2].text.startswith("Now tell me")
    crashed = turns[3]  # the reply in flight, recovered from its draft when the log was opened again
    assert crashed.parent_id == turns[2].id and crashed.interrupted
    assert crashed.data["stop_reason"] == "crashed" and crashed.text
    assert crashed.data["timings"]["completion_tokens"] >= 4


def test_ctrl_c_stops_the_reply_and_logs_it_interrupted(tmp_path):
    proc = _start_chat(tmp_path, EPISTEMIC_SAMPLER__MAX_TOKENS="400")
    try:
        proc.stdin.write("Tell me a very long story about the sea.\n")
        proc.stdin.flush()
        _wait_tokens(proc, 3)
        proc.send_signal(signal.SIGINT)
        assert _wait_for(lambda: _count_turns(_db(tmp_path)) == 2, timeout=30)
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in proc.stderr.read()
    with DialogueLog(_db(tmp_path)) as log:
        [conv] = log.list_conversations()
        reply = log.conversation_turns(conv.id)[1]
    assert reply.interrupted and reply.data["stop_reason"] == "cancelled"
    assert 3 <= reply.data["timings"]["completion_tokens"] < 400


def test_tokenize_shows_how_a_russian_word_is_split(tmp_path):
    import re

    proc = _epistemic(["tokenize", "--json", "бессознательное"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    tokens = json.loads(proc.stdout)
    assert len(tokens) > 3  # a 135M English-centric vocabulary splits it finely

    def to_bytes(piece: str) -> bytes:
        parts = re.split(r"(<0x[0-9A-F]{2}>)", piece)
        return b"".join(bytes([int(p[3:5], 16)]) if re.fullmatch(r"<0x[0-9A-F]{2}>", p) else p.encode() for p in parts)

    assert b"".join(to_bytes(t["piece"]) for t in tokens).decode() == "бессознательное"
