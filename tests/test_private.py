"""Private by default: what the product writes about the user is owner-only (0600 files, 0700
folders) whatever the umask — the dialogue database and its -wal/-shm, recorded utterances,
kept voice messages and the program log."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.config_load import load_config
from agent.private import (
    copy_private,
    private_dir,
    private_file,
    private_sqlite,
    write_private_bytes,
)

ROOT = Path(__file__).resolve().parents[1]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_helpers_create_owner_only_folders_and_files(tmp_path, umask):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    folder = private_dir(shared / "a" / "b")
    assert (mode(shared / "a"), mode(folder)) == (0o700, 0o700)
    assert mode(shared) == 0o755  # an existing parent is not ours to change
    assert mode(private_file(tmp_path / "c" / "log.txt")) == 0o600 and mode(tmp_path / "c") == 0o700
    written = write_private_bytes(tmp_path / "d" / "x.jsonl", b"{}\n")
    assert mode(written) == 0o600 and written.read_bytes() == b"{}\n"
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["x.jsonl"]  # no temp file left behind
    assert mode(copy_private(written, tmp_path / "e" / "copy.jsonl")) == 0o600


def test_loose_files_and_folders_are_tightened(tmp_path):
    loose_dir, loose_file = tmp_path / "old", tmp_path / "old" / "f"
    loose_dir.mkdir(mode=0o755)
    loose_file.write_text("x")
    os.chmod(loose_dir, 0o755)
    os.chmod(loose_file, 0o644)
    private_file(loose_file)
    assert (mode(loose_dir), mode(loose_file)) == (0o700, 0o600)
    assert loose_file.read_text() == "x"  # tightening never truncates


def test_sqlite_side_files_follow_the_database_file(tmp_path, umask):
    import sqlite3

    db = private_sqlite(tmp_path / "data" / "d.sqlite3")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    side = [db.with_name(db.name + s) for s in ("-wal", "-shm")]
    assert all(p.exists() for p in side)
    assert [mode(p) for p in (db, *side)] == [0o600, 0o600, 0o600]
    conn.close()


def test_the_dialogue_database_and_its_wal_are_owner_only(tmp_path, umask):
    from agent.log.db import DialogueLog

    path = tmp_path / "data" / "dialogues.sqlite3"
    log = DialogueLog(path)
    try:
        files = [p for p in path.parent.iterdir()]
        assert path in files
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(path.parent) == 0o700
    finally:
        log.close()


def test_recorded_utterances_are_owner_only(tmp_path, umask):
    from agent.voice.turns import TurnRecorder

    recorder = TurnRecorder(log=None, data_dir=tmp_path / "data", keep_audio=True)
    relative = recorder.save_audio(np.zeros(1600, dtype=np.float32))
    assert relative is not None
    wav = tmp_path / "data" / relative
    assert wav.stat().st_size > 44  # a real WAV with samples
    assert (mode(tmp_path / "data"), mode(wav.parent), mode(wav)) == (0o700, 0o700, 0o600)


def test_a_kept_voice_message_is_owner_only(tmp_path, umask):
    from agent.cli.voice_cmds import _keep_voice_file

    source = tmp_path / "message.wav"
    source.write_bytes(b"RIFF....WAVE")
    os.chmod(source, 0o644)
    config = load_config(ROOT / "config.toml", env={"EPISTEMIC_PATHS__DATA_DIR": str(tmp_path / "data")})
    relative = _keep_voice_file(config, source)
    assert relative is not None
    kept = tmp_path / "data" / relative
    assert kept.read_bytes() == source.read_bytes()
    assert (mode(tmp_path / "data"), mode(kept.parent), mode(kept)) == (0o700, 0o700, 0o600)


@pytest.mark.parametrize("umask_value", ["0o022", "0o000"])
def test_the_program_log_is_owner_only(tmp_path, umask_value):
    state = tmp_path / "state"
    code = f"import os; os.umask({umask_value}); from agent.cli import main; main(['config', 'check'])"
    env = {**os.environ, "XDG_STATE_HOME": str(state), "EPISTEMIC_PATHS__DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    log_file = state / "epistemic-engine" / "log" / "epistemic.log"
    assert mode(log_file) == 0o600
    assert mode(log_file.parent) == 0o700 and mode(log_file.parent.parent) == 0o700
