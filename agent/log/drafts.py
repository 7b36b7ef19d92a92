"""Replies while they stream, so a killed process leaves its partial reply in the log.

A draft row is written in the same transaction as the user turn it answers (a regenerated reply
writes only its draft), updated about once a second while tokens arrive, and deleted in the
transaction that commits the finished turn. A draft whose writer process is gone is turned into
an assistant turn with ``stop_reason = 'crashed'`` (interrupted) the next time the log is opened
for writing. Functions here take the caller's connection inside the caller's transaction.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable

from agent.log import rows
from agent.reasoning import split_reasoning
from agent.records import AssistantTurnRecord, ReplyDraft

CRASHED = "crashed"
CRASH_NOTE = "the program stopped while this reply was being generated"


def pid_alive(pid: int) -> bool:
    """Whether another live process has this pid (our own pid means a previous run: dead)."""
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but someone else's
        return True
    return True


def insert(conn: sqlite3.Connection, draft: ReplyDraft, parent_id: int | None) -> int:
    """Store a new draft; returns its id."""
    now = draft.started_at or time.time()
    cur = conn.execute(
        "INSERT INTO reply_drafts (conversation_id, parent_id, alternative_of, writer_pid, started_at, "
        "updated_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (draft.conversation_id, parent_id, draft.alternative_of, os.getpid(), now, now, rows.dumps(draft.provenance)),
    )
    return int(cur.lastrowid or 0)


def update(conn: sqlite3.Connection, draft_id: int, raw_text: str, token_count: int) -> None:
    """The text generated so far."""
    conn.execute("UPDATE reply_drafts SET raw_text = ?, token_count = ?, updated_at = ? WHERE id = ?",
                 (raw_text, token_count, time.time(), draft_id))


def delete(conn: sqlite3.Connection, draft_id: int) -> None:
    """The finished turn replaced the draft."""
    conn.execute("DELETE FROM reply_drafts WHERE id = ?", (draft_id,))


def crashed_record(row: sqlite3.Row) -> AssistantTurnRecord:
    """The assistant turn a dead writer's draft stands for: the partial reply, marked crashed."""
    reasoning, answer = split_reasoning(row["raw_text"])
    p = rows.loads(row["record"]) or {}
    return AssistantTurnRecord(
        conversation_id=row["conversation_id"], parent_id=row["parent_id"], alternative_of=row["alternative_of"],
        text=answer, reasoning=reasoning, raw_text=row["raw_text"],
        prompt_text=p.get("prompt_text", ""), prompt_tokens=int(p.get("prompt_tokens", 0)),
        backend=p.get("backend", ""), model_id=p.get("model_id", ""), model_path=p.get("model_path", ""),
        model_hash=p.get("model_hash", ""), persona=p.get("persona", ""), adapters=p.get("adapters", []),
        sampler=p.get("sampler", {}), context=p.get("context", {}),
        timings={"completion_tokens": row["token_count"], "wall_seconds": row["updated_at"] - row["started_at"]},
        stop_reason=CRASHED, interrupted=True, error=CRASH_NOTE,
        extra={"recovered_draft": {"writer_pid": row["writer_pid"], "last_update": row["updated_at"]}},
        created_at=row["updated_at"],
    )


def recover(conn: sqlite3.Connection, insert: Callable[[sqlite3.Connection, AssistantTurnRecord, float], int]) -> list[int]:
    """Replace every orphaned draft by its 'crashed' turn (``insert`` stores one); the new turn ids."""
    recovered = []
    for row in orphaned(conn):
        record = crashed_record(row)
        recovered.append(insert(conn, record, record.created_at))
        delete(conn, row["id"])
    return recovered


def orphaned(conn: sqlite3.Connection, alive: Callable[[int], bool] = pid_alive) -> list[sqlite3.Row]:
    """Drafts whose writer process is gone."""
    found = conn.execute("SELECT * FROM reply_drafts ORDER BY id").fetchall()
    return [row for row in found if not alive(int(row["writer_pid"]))]
