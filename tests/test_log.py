"""The dialogue log on real SQLite files: schema, migrations, round trips, branches, failures."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent.errors import LogError
from agent.llm.base import TokenStep, TopAlternative
from agent.log import SCHEMA_VERSION, DialogueLog, TelemetryError
from agent.log.codec import CODEC_VERSION, CodecError, decode_steps, encode_steps
from agent.log.migrations import MIGRATIONS, apply_migration, statements
from agent.log.moe_codec import read_routing
from agent.records import AssistantTurnRecord, StoredTurn, UserTurnRecord

REPO = Path(__file__).resolve().parents[1]
PIECES = ["При", "вет", ",", " мир", "!", " 🙂", "\ud83d", "ё"]  # multibyte, emoji, a lone surrogate


def make_steps(n: int = len(PIECES)) -> list[TokenStep]:
    steps = []
    for i in range(n):
        top = tuple(TopAlternative(1000 + k, f"{PIECES[(i + k) % len(PIECES)]}{k}", -0.25 * (k + 1)) for k in range(i % 4))
        steps.append(TokenStep(
            index=i,
            token_id=50_000 + 7 * i,
            text=PIECES[i % len(PIECES)],
            logprob=None if i == 2 else -0.123456 * i,
            entropy=None if i == 3 else 0.5 + i / 3,
            top=top,
            accepted_draft=(None, True, False)[i % 3],
        ))
    return steps


def make_reply(conversation_id: int, parent_id: int | None, **overrides: object) -> AssistantTurnRecord:
    fields: dict = dict(
        conversation_id=conversation_id,
        parent_id=parent_id,
        text="Здравствуй, путник!",
        reasoning="Пользователь поздоровался.",
        raw_text="<think>Пользователь поздоровался.</think>Здравствуй, путник!",
        prompt_text="<|im_start|>user\nПривет<|im_end|>\n<|im_start|>assistant\n",
        prompt_tokens=17,
        backend="llama_cpp",
        model_id="SmolLM2-135M-Instruct",
        model_path="/models/smollm2.gguf",
        model_hash="ab" * 32,
        persona="пират",
        adapters=[{"id": "pirate", "path": "/a/pirate.gguf", "scale": 0.75, "hash": "cd" * 8}],
        sampler={"temperature": 0.7, "top_k": 40, "seed": 7, "stop": ["\n\n"], "token_bias": {"13": -1.5}},
        timings={"prompt_tokens": 17, "completion_tokens": 8, "time_to_first_token": 0.12, "tokens_per_second": 31.5},
        stop_reason="cancelled",
        interrupted=True,
        steps=make_steps(),
        alternative_of=None,
        heard_text="Здравствуй,",
        spoken_text="Здравствуй путник",
        speculative={"method": "ngram", "proposed": 10, "accepted": 6, "acceptance_rate": 0.6},
        context={"size": 2048, "budget": 1536, "dropped_turn_ids": [1, 2]},
        extra={"latency": {"stt": 0.3, "first_audio": 0.9}, "заметка": "да"},
        created_at=1_700_000_000.25,
    )
    fields.update(overrides)
    return AssistantTurnRecord(**fields)


@pytest.fixture
def log(tmp_path: Path):
    with DialogueLog(tmp_path / "data" / "dialogues.sqlite3", busy_timeout=0.5) as opened:
        yield opened


def _stored_value(turn: StoredTurn, name: str) -> object:
    if name in {f.name for f in dataclasses.fields(StoredTurn)} and name != "data":
        return getattr(turn, name)
    assert name in turn.data, f"{name} is not stored"
    return turn.data[name]


def assert_steps_equal(got: list[TokenStep], want: list[TokenStep]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.index, g.token_id, g.text, g.accepted_draft) == (w.index, w.token_id, w.text, w.accepted_draft)
        for a, b in ((g.logprob, w.logprob), (g.entropy, w.entropy)):
            assert (a is None) == (b is None) and (a is None or a == pytest.approx(b, rel=1e-6, abs=1e-7))
        assert [(t.token_id, t.text) for t in g.top] == [(t.token_id, t.text) for t in w.top]
        assert [t.logprob for t in g.top] == pytest.approx([t.logprob for t in w.top], rel=1e-6)


# ---------------------------------------------------------------- schema and migrations


def test_new_database_is_at_latest_schema_in_wal_mode(log: DialogueLog) -> None:
    assert log.path.is_file()
    raw = sqlite3.connect(log.path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"conversations", "turns", "token_telemetry"} <= tables
    assert "label" in {r[1] for r in raw.execute("PRAGMA table_info(turns)")}
    assert log._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_older_database_is_upgraded_with_rows_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    apply_migration(raw, MIGRATIONS[0])
    raw.execute("INSERT INTO conversations (id, title, persona, started_at, updated_at, meta) "
                "VALUES (1, 'старый', 'assistant', 1.0, 2.0, '{}')")
    raw.execute("INSERT INTO turns (id, conversation_id, role, text, created_at, source, stt) "
                "VALUES (1, 1, 'user', 'Привет', 1.5, 'voice', '{\"confidence\": 0.9}')")
    raw.execute("COMMIT")
    raw.close()
    with pytest.raises(LogError, match="older"):
        DialogueLog(path, readonly=True)
    with DialogueLog(path) as upgraded:
        assert upgraded._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        [summary] = upgraded.list_conversations()
        assert (summary.title, summary.turns) == ("старый", 1)
        turn = upgraded.get_turn(1)
        assert (turn.text, turn.data["source"], turn.data["stt"], turn.data["label"]) == ("Привет", "voice", {"confidence": 0.9}, None)
        upgraded.set_label(1, "chosen")  # the column migration 2 added
        assert upgraded.get_turn(1).data["label"] == "chosen"


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    DialogueLog(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(LogError, match="newer"):
        DialogueLog(path)


def test_statement_splitter_keeps_trigger_bodies_whole() -> None:
    script = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n-- done\n"
    assert len(statements(script)) == 2


# ---------------------------------------------------------------- round trips


def test_every_assistant_field_round_trips(log: DialogueLog) -> None:
    conversation = log.new_conversation(persona="пират", title="Тест", meta={"язык": "ru"})
    user = log.add_user_turn(UserTurnRecord(conversation, "Привет"))
    record = make_reply(conversation, user)
    turn = log.get_turn(log.add_assistant_turn(record))
    assert turn.role == "assistant"
    for field in dataclasses.fields(AssistantTurnRecord):
        if field.name == "steps":
            assert_steps_equal(log.token_steps(turn.id), record.steps)
        elif field.name == "moe_routing":  # its own table; round trip in tests/test_moe.py
            assert record.moe_routing is None and read_routing(log, turn.id) is None
        else:
            assert _stored_value(turn, field.name) == getattr(record, field.name), field.name
    assert turn.data["token_count"] == len(record.steps)
    assert log.conversation_meta(conversation) == {"язык": "ru"}


def test_every_user_field_round_trips(log: DialogueLog) -> None:
    conversation = log.new_conversation(persona="assistant")
    record = UserTurnRecord(conversation, "Как дела?", source="voice", audio_path="audio/0001.wav",
                            stt={"model": "base", "language": "ru", "confidence": 0.93}, created_at=123.5)
    turn = log.get_turn(log.add_user_turn(record))
    assert turn.role == "user"
    for field in dataclasses.fields(UserTurnRecord):
        assert _stored_value(turn, field.name) == getattr(record, field.name), field.name
    assert log.token_steps(turn.id) == []


def test_russian_text_is_readable_in_the_database_file(log: DialogueLog) -> None:
    conversation = log.new_conversation(persona="пират")
    log.add_assistant_turn(make_reply(conversation, None))
    raw = sqlite3.connect(log.path)
    extra, adapters = raw.execute("SELECT extra, adapters FROM turns").fetchone()
    assert "заметка" in extra and "\\u" not in extra and "pirate" in adapters


def test_codec_round_trip_and_compactness() -> None:
    steps = make_steps(400)
    blob = encode_steps(steps)
    assert blob[0] == CODEC_VERSION
    assert_steps_equal(decode_steps(blob), steps)
    assert decode_steps(encode_steps([])) == []
    naive = sum(len(repr(s)) for s in steps)
    assert len(blob) < naive / 5, (len(blob), naive)


@pytest.mark.parametrize("damage", [
    lambda b: b[: len(b) // 2],
    lambda b: bytes([99]) + b[1:],
    lambda b: b"",
    lambda b: b[:1] + b"garbage" * 5,
])
def test_codec_rejects_damaged_blobs(damage) -> None:
    with pytest.raises(CodecError):
        decode_steps(damage(encode_steps(make_steps())))


def test_codec_rejects_inconsistent_sizes() -> None:
    import struct
    import zlib

    payload = bytearray(zlib.decompress(encode_steps(make_steps())[1:]))
    struct.pack_into("<I", payload, 0, 3)  # claims 3 steps where there are 8
    with pytest.raises(CodecError):
        decode_steps(bytes([CODEC_VERSION]) + zlib.compress(bytes(payload)))


# ---------------------------------------------------------------- conversations, alternatives


def test_alternatives_and_active_branch(log: DialogueLog) -> None:
    conversation = log.new_conversation(persona="assistant")
    u1 = log.add_user_turn(UserTurnRecord(conversation, "раз"))
    first = log.add_assistant_turn(make_reply(conversation, u1, text="A1"))
    second = log.add_assistant_turn(make_reply(conversation, None, text="A2", alternative_of=first))
    third = log.add_assistant_turn(make_reply(conversation, u1, text="A3", alternative_of=second))
    u2 = log.add_user_turn(UserTurnRecord(conversation, "два"))
    b1 = log.add_assistant_turn(make_reply(conversation, u2, text="B1"))

    assert [t.id for t in log.conversation_turns(conversation)] == [u1, first, second, third, u2, b1]
    assert [t.text for t in log.active_turns(conversation)] == ["раз", "A3", "два", "B1"]
    assert log.get_turn(second).parent_id == u1  # inherited from the reply it replaces
    assert log.get_turn(third).alternative_of == first  # always the first reply of the group
    assert log.list_conversations()[0].turns == 4


def test_list_is_newest_first_with_limit_and_titles(log: DialogueLog) -> None:
    ids = [log.new_conversation(persona=f"p{i}", title=f"t{i}") for i in range(4)]
    log.set_title(ids[1], "переименовано")
    listed = log.list_conversations(limit=3)
    assert [c.id for c in listed] == ids[::-1][:3]
    assert [c.id for c in log.list_conversations(limit=3, offset=3)] == [ids[0]]
    assert log.get_conversation(ids[1]).title == "переименовано"


def test_missing_things_raise_log_error(log: DialogueLog) -> None:
    with pytest.raises(LogError, match="no turn 42"):
        log.get_turn(42)
    with pytest.raises(LogError, match="no turn 42"):
        log.token_steps(42)
    with pytest.raises(LogError, match="no conversation 9"):
        log.add_user_turn(UserTurnRecord(9, "x"))
    with pytest.raises(LogError, match="no conversation 9"):
        log.set_title(9, "x")
    with pytest.raises(LogError, match="no conversation 9"):
        log.active_turns(9)
    assert log.active_turns(log.new_conversation(persona="empty")) == []
    conversation = log.new_conversation(persona="a")
    user = log.add_user_turn(UserTurnRecord(conversation, "x"))
    with pytest.raises(LogError, match="not an assistant reply"):
        log.add_assistant_turn(make_reply(conversation, user, alternative_of=user))
    assert len(log.conversation_turns(conversation)) == 1  # the failed write left nothing behind


def test_corrupt_telemetry_is_reported_for_that_turn_only(log: DialogueLog) -> None:
    conversation = log.new_conversation(persona="a")
    good = log.add_assistant_turn(make_reply(conversation, None))
    bad = log.add_assistant_turn(make_reply(conversation, None))
    log._conn.execute("UPDATE token_telemetry SET data = ? WHERE turn_id = ?", (b"\x01not zlib", bad))
    with pytest.raises(TelemetryError, match=f"turn {bad}"):
        log.token_steps(bad)
    assert len(log.token_steps(good)) == len(PIECES)
    assert log.get_turn(bad).text == "Здравствуй, путник!"


def test_one_log_shared_by_threads(log: DialogueLog) -> None:
    import threading

    conversation = log.new_conversation(persona="a")

    def write(tag: str) -> None:
        for n in range(25):
            user = log.add_user_turn(UserTurnRecord(conversation, f"{tag}{n}"))
            log.add_assistant_turn(make_reply(conversation, user, text=f"{tag}{n}!"))
            log.list_conversations()

    workers = [threading.Thread(target=write, args=(tag,)) for tag in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    turns = log.conversation_turns(conversation)
    assert len(turns) == 100
    by_id = {t.id: t for t in turns}
    assert all(by_id[t.parent_id].text + "!" == t.text for t in turns if t.role == "assistant")


# ---------------------------------------------------------------- failures at open


def test_read_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ro.sqlite3"
    with DialogueLog(path) as opened:
        opened.new_conversation(persona="a")
    path.chmod(0o444)
    with pytest.raises(LogError, match="read-only"):
        DialogueLog(path)
    with DialogueLog(path, readonly=True) as reader:  # reading it is fine
        assert len(reader.list_conversations()) == 1
        with pytest.raises(LogError, match="read-only"):
            reader.new_conversation(persona="b")


def test_read_only_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(LogError, match="read-only"):
            DialogueLog(folder / "log.sqlite3")
    finally:
        folder.chmod(0o755)


def test_locked_database_fails_within_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite3"
    with DialogueLog(path) as opened:
        conversation = opened.new_conversation(persona="a")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            started = time.monotonic()
            with pytest.raises(LogError, match="locked"):
                DialogueLog(path, busy_timeout=0.3)
            with pytest.raises(LogError, match="locked"):
                opened.busy_timeout = 0.3
                opened._conn.execute("PRAGMA busy_timeout = 300")
                opened.add_user_turn(UserTurnRecord(conversation, "x"))
            assert time.monotonic() - started < 3.0
        finally:
            other.execute("ROLLBACK")
            other.close()
        opened.add_user_turn(UserTurnRecord(conversation, "after the lock"))  # usable again
        assert opened.conversation_turns(conversation)[-1].text == "after the lock"


def test_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("это не база данных\n" * 200, encoding="utf-8")
    for readonly in (False, True):
        with pytest.raises(LogError, match="not a dialogue log"):
            DialogueLog(path, readonly=readonly)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE foreign_stuff (x)").connection.commit()
    with pytest.raises(LogError, match="not a dialogue log"):
        DialogueLog(other)


# ---------------------------------------------------------------- durability

_WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.test_log import make_reply
    from agent.log import DialogueLog
    from agent.records import UserTurnRecord
    from agent.llm.base import TokenStep

    log = DialogueLog(Path(sys.argv[1]))
    conversation = log.new_conversation(persona="a")
    steps = [TokenStep(i, i, "слово", -0.5, 1.0) for i in range(3000)]
    for n in range(100000):
        user = log.add_user_turn(UserTurnRecord(conversation, f"вопрос {n}"))
        reply = log.add_assistant_turn(make_reply(conversation, user, text=f"ответ {n}", steps=steps))
        print(user, reply, flush=True)
""")


def test_sigkill_mid_write_keeps_earlier_turns(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(REPO)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    committed = []
    try:
        while len(committed) < 5:
            line = proc.stdout.readline()
            assert line, "writer died early"
            committed.append(tuple(int(x) for x in line.split()))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    with DialogueLog(path) as reopened:
        assert reopened._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for n, (user, reply) in enumerate(committed):
            assert reopened.get_turn(user).text == f"вопрос {n}"
            assert reopened.get_turn(reply).text == f"ответ {n}"
            assert len(reopened.token_steps(reply)) == 3000
        turns = reopened.conversation_turns(1)
        assert len(turns) >= 2 * len(committed)
        for turn in turns:  # whatever else made it is complete too
            assert len(reopened.token_steps(turn.id)) == (3000 if turn.role == "assistant" else 0)


def test_update_spoken_completes_a_reply_and_merges_extra(log: DialogueLog) -> None:
    conv = log.new_conversation(persona="p")
    user = log.add_user_turn(UserTurnRecord(conv, "Привет"))
    reply = log.add_assistant_turn(make_reply(conv, user, extra={"kept": 1}))
    log.update_spoken(reply, heard_text="Здравствуй,", spoken_text="Здравствуй, путник!", extra={"waterfall": {"first_audio_s": 0.4}})
    data = log.get_turn(reply).data
    assert (data["heard_text"], data["spoken_text"]) == ("Здравствуй,", "Здравствуй, путник!")
    assert data["extra"] == {"kept": 1, "waterfall": {"first_audio_s": 0.4}}
    with pytest.raises(LogError):
        log.update_spoken(user, heard_text=None, spoken_text=None)
