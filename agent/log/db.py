"""The dialogue log: every conversation turn in one SQLite file, the product's training data.

One writer (the engine) owns a :class:`DialogueLog`; readers (``epistemic log``, the TUI
history) may open the same file concurrently, read-only or not. The file runs in WAL mode and
each turn is committed in its own transaction the moment it is added; a reply in flight is kept
as a draft (:mod:`agent.log.drafts`), so a killed process leaves it marked ``crashed``.
The file and its folder are owner-only (0600 / 0700): it holds everything the user said.

Durability: ``synchronous=FULL``. In WAL mode NORMAL already survives a killed process, but may
lose the last commits on power loss; FULL fsyncs the WAL on every commit. Turns arrive seconds
apart, so the fsync (about a millisecond or two) costs nothing noticeable, and it makes the
design's promise hold for power loss too: a crash loses at most the turn in flight.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.errors import LogError
from agent.llm.base import TokenStep
from agent.log import drafts, moe_codec, rows
from agent.log.codec import CodecError, decode_steps, encode_steps
from agent.log.migrations import SCHEMA_VERSION, apply_migration, pending, user_version
from agent.log.reads import active_branch
from agent.log.sqlite_errors import describe
from agent.private import is_writable, private_dir, private_sqlite
from agent.records import (
    AssistantTurnRecord,
    ConversationSummary,
    ReplyDraft,
    StoredTurn,
    UserTurnRecord,
)

logger = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT = 5.0
_TURN_SELECT = (
    "SELECT turns.*, token_telemetry.token_count AS token_count FROM turns "
    "LEFT JOIN token_telemetry ON token_telemetry.turn_id = turns.id "
)
_SUMMARY_SELECT = (
    "SELECT c.id, c.title, c.persona, c.started_at, c.updated_at, "
    "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id AND t.alternative_of IS NULL) "
    "FROM conversations c "
)


class TelemetryError(LogError):
    """One turn's token telemetry cannot be decoded; the rest of the log is fine."""


class DialogueLog:
    """Append-only store of conversations and turns (see :mod:`agent.log.migrations` for the schema).

    One writer thread at a time per turn (the engine's worker); readers may call from any thread.
    ``_lock`` guards the connection: every statement and transaction runs under it.
    """

    def __init__(self, path: Path, *, readonly: bool = False, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self.busy_timeout = busy_timeout
        self._lock = threading.RLock()
        self._check_path()
        self._conn: sqlite3.Connection | None = self._connect()
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- opening

    def _check_path(self) -> None:
        if self.path.is_dir():
            raise LogError(f"{self.path}: is a folder, not a dialogue log file")
        if self.readonly:
            if not self.path.is_file():
                raise LogError(f"{self.path}: no dialogue log here")
            return
        try:
            private_dir(self.path.parent)
        except OSError as exc:
            raise LogError(f"{self.path.parent}: cannot create the log folder: {exc.strerror}") from None
        if not is_writable(self.path.parent):
            raise LogError(f"{self.path.parent}: folder is read-only, the dialogue log cannot be written")
        if self.path.exists() and not is_writable(self.path):
            raise LogError(f"{self.path}: dialogue log file is read-only")
        try:
            private_sqlite(self.path)  # 0600 before SQLite creates it, so -wal/-shm are 0600 too
        except OSError as exc:
            raise LogError(f"{self.path}: cannot make the dialogue log private: {exc.strerror or exc}") from None

    def _connect(self) -> sqlite3.Connection:
        target, uri = str(self.path), False
        if self.readonly:
            target, uri = self.path.resolve().as_uri() + "?mode=ro", True
        with self._translate("opening"):
            conn = sqlite3.connect(target, uri=uri, timeout=self.busy_timeout,
                                   isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        return conn

    def _prepare(self) -> None:
        conn = self._connection()
        with self._translate("opening"):
            conn.execute("PRAGMA foreign_keys = ON")
            if self.readonly:
                conn.execute("PRAGMA query_only = ON")
                self._check_version(user_version(conn))
                return
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                logger.warning("%s: WAL mode unavailable, using %s", self.path, mode)
            conn.execute("PRAGMA synchronous = FULL")
        self._migrate()
        self.recovered = self._recover_drafts()

    def _migrate(self) -> None:
        """Apply pending migrations; BEGIN IMMEDIATE also proves we can take the write lock."""
        with self._transaction("upgrading the schema") as conn:
            version = user_version(conn)
            self._check_version(version)
            for migration in pending(version):
                logger.info("%s: schema migration %d (%s)", self.path, migration.version, migration.description)
                apply_migration(conn, migration)

    def _recover_drafts(self) -> list[int]:
        """Turn drafts left by dead processes into 'crashed' turns; returns the new turn ids."""
        with self._transaction("recovering replies of a crashed run") as conn:
            recovered = drafts.recover(conn, self._insert_assistant)
        if recovered:
            logger.warning("%s: %d reply(s) of a run that crashed marked 'crashed': turns %s",
                           self.path, len(recovered), recovered)
        return recovered

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LogError(f"{self.path}: dialogue log schema version {version} is newer than this "
                           f"program knows ({SCHEMA_VERSION}); upgrade epistemic-engine")
        if version == 0 and self._connection().execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
            raise LogError(f"{self.path}: is an SQLite database but not a dialogue log")
        if self.readonly and version < SCHEMA_VERSION:
            raise LogError(f"{self.path}: dialogue log schema version {version} is older than "
                           f"{SCHEMA_VERSION}; open it once for writing to upgrade it")

    # ---------------------------------------------------------------- plumbing

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise LogError(describe(exc, action, self.path, self.busy_timeout)) from None

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on success, rolled back on any error."""
        if self.readonly:
            raise LogError(f"{self.path}: dialogue log was opened read-only")
        with self._lock, self._translate(action):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            conn.execute("COMMIT")

    @contextmanager
    def transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """A write transaction for modules that extend the log (curation): committed on success,
        rolled back on any error; ``action`` names it in error messages."""
        with self._transaction(action) as conn:
            yield conn

    @contextmanager
    def snapshot(self, action: str = "reading") -> Iterator[sqlite3.Connection]:
        """The connection inside one read transaction (a consistent snapshot), under the lock."""
        with self._lock, self._translate(action):
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LogError(f"{self.path}: dialogue log is closed")
        return self._conn

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, self._translate("reading"):
            return self._connection().execute(sql, params).fetchall()

    # ---------------------------------------------------------------- writing

    def new_conversation(self, *, persona: str, title: str = "", meta: dict | None = None) -> int:
        """Start a conversation; returns its id."""
        now = time.time()
        with self._transaction("starting a conversation") as conn:
            cur = conn.execute(
                "INSERT INTO conversations (title, persona, started_at, updated_at, meta) VALUES (?, ?, ?, ?, ?)",
                (title, persona, now, now, rows.dumps(meta or {})),
            )
        return int(cur.lastrowid or 0)

    def add_user_turn(self, record: UserTurnRecord) -> int:
        """Store a user turn and commit; returns its id."""
        created = record.created_at or time.time()
        with self._transaction("saving a user turn") as conn:
            self._require_conversation(conn, record.conversation_id)
            cur = conn.execute(rows.USER_INSERT, rows.user_params(record, created))
            self._touch(conn, record.conversation_id, created)
        return int(cur.lastrowid or 0)

    def add_assistant_turn(self, record: AssistantTurnRecord) -> int:
        """Store an assistant turn with its telemetry in one transaction; returns its id.

        ``alternative_of`` may name any earlier reply of the group; it is stored as the first one.
        """
        with self._transaction("saving an assistant turn") as conn:
            return self._insert_assistant(conn, record, record.created_at or time.time())

    def _insert_assistant(self, conn: sqlite3.Connection, record: AssistantTurnRecord, created: float) -> int:
        self._require_conversation(conn, record.conversation_id)
        parent, alternative = self._resolve_alternative(conn, record)
        cur = conn.execute(rows.ASSISTANT_INSERT, rows.assistant_params(record, created, parent, alternative))
        conn.execute("INSERT INTO token_telemetry (turn_id, token_count, data) VALUES (?, ?, ?)",
                     (cur.lastrowid, len(record.steps), encode_steps(record.steps)))
        if record.moe_routing is not None:
            moe_codec.insert(conn, int(cur.lastrowid or 0), record.moe_routing)
        self._touch(conn, record.conversation_id, created)
        return int(cur.lastrowid or 0)

    # ---------------------------------------------------------------- replies in flight

    def start_reply(self, draft: ReplyDraft, user: UserTurnRecord | None = None) -> tuple[int | None, int]:
        """Log the user turn (if given) and the reply's draft in one transaction: (user id, draft id)."""
        with self._transaction("starting a reply") as conn:
            self._require_conversation(conn, draft.conversation_id)
            user_id = None
            if user is not None:
                created = user.created_at or time.time()
                user_id = int(conn.execute(rows.USER_INSERT, rows.user_params(user, created)).lastrowid or 0)
                self._touch(conn, user.conversation_id, created)
            return user_id, drafts.insert(conn, draft, user_id if user is not None else draft.parent_id)

    def update_reply(self, draft_id: int, raw_text: str, token_count: int) -> None:
        """Save the text a reply has streamed so far.

        Without an fsync (``synchronous = NORMAL`` for this commit): in WAL mode that still survives
        a killed process, costs ~0.1 ms instead of a disk flush inside the token loop, and the
        finished turn is committed with the full fsync."""
        with self._lock:
            conn = self._connection()
            with self._translate("saving a reply in progress"):
                conn.execute("PRAGMA synchronous = NORMAL")
            try:
                with self._transaction("saving a reply in progress") as tx:
                    drafts.update(tx, draft_id, raw_text, token_count)
            finally:
                with self._translate("saving a reply in progress"):
                    conn.execute("PRAGMA synchronous = FULL")

    def finish_reply(self, draft_id: int, record: AssistantTurnRecord) -> int:
        """Commit the finished (or failed, or interrupted) reply in place of its draft; its turn id."""
        with self._transaction("saving an assistant turn") as conn:
            turn_id = self._insert_assistant(conn, record, record.created_at or time.time())
            drafts.delete(conn, draft_id)
            return turn_id

    def set_title(self, conversation_id: int, title: str) -> None:
        """Rename a conversation."""
        with self._transaction("renaming a conversation") as conn:
            self._require_conversation(conn, conversation_id)
            conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def set_label(self, turn_id: int, label: str | None) -> None:
        """Mark a turn for dataset harvesting (e.g. 'chosen' / 'rejected'); None clears it."""
        with self._transaction("labelling a turn") as conn:
            if conn.execute("UPDATE turns SET label = ? WHERE id = ?", (label, turn_id)).rowcount == 0:
                raise LogError(f"{self.path}: no turn {turn_id}")

    def update_spoken(self, turn_id: int, *, heard_text: str | None, spoken_text: str | None, extra: dict | None = None) -> None:
        """Complete a logged reply with what was spoken and heard; ``extra`` is merged into its extra JSON."""
        with self._transaction("saving what was spoken") as conn:
            row = conn.execute("SELECT role, extra FROM turns WHERE id = ?", (turn_id,)).fetchone()
            if row is None or row["role"] != "assistant":
                raise LogError(f"{self.path}: no assistant turn {turn_id}")
            merged = {**rows.loads(row["extra"]), **(extra or {})}
            conn.execute("UPDATE turns SET heard_text = ?, spoken_text = ?, extra = ? WHERE id = ?",
                         (heard_text, spoken_text, rows.dumps(merged), turn_id))

    def _require_conversation(self, conn: sqlite3.Connection, conversation_id: int) -> None:
        if not conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone():
            raise LogError(f"{self.path}: no conversation {conversation_id}")

    def _resolve_alternative(self, conn: sqlite3.Connection, record: AssistantTurnRecord) -> tuple[int | None, int | None]:
        if record.alternative_of is None:
            return record.parent_id, None
        row = conn.execute("SELECT conversation_id, role, parent_id, alternative_of FROM turns WHERE id = ?",
                           (record.alternative_of,)).fetchone()
        if row is None or row["role"] != "assistant" or row["conversation_id"] != record.conversation_id:
            raise LogError(f"{self.path}: turn {record.alternative_of} is not an assistant reply "
                           f"in conversation {record.conversation_id}")
        root = row["alternative_of"] or record.alternative_of
        parent = record.parent_id if record.parent_id is not None else row["parent_id"]
        return parent, root

    @staticmethod
    def _touch(conn: sqlite3.Connection, conversation_id: int, when: float) -> None:
        conn.execute("UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?", (when, conversation_id))

    # ---------------------------------------------------------------- reading

    def list_conversations(self, limit: int = 50, offset: int = 0) -> list[ConversationSummary]:
        """Conversations, newest first; ``turns`` counts turns without regenerated alternatives."""
        found = self._query(_SUMMARY_SELECT + "ORDER BY c.started_at DESC, c.id DESC LIMIT ? OFFSET ?", (limit, offset))
        return [ConversationSummary(*tuple(row)) for row in found]

    def get_conversation(self, conversation_id: int) -> ConversationSummary:
        """One conversation's summary; LogError if there is none."""
        found = self._query(_SUMMARY_SELECT + "WHERE c.id = ?", (conversation_id,))
        if not found:
            raise LogError(f"{self.path}: no conversation {conversation_id}")
        return ConversationSummary(*tuple(found[0]))

    def conversation_meta(self, conversation_id: int) -> dict[str, Any]:
        """The ``meta`` given to :meth:`new_conversation`."""
        found = self._query("SELECT meta FROM conversations WHERE id = ?", (conversation_id,))
        if not found:
            raise LogError(f"{self.path}: no conversation {conversation_id}")
        return rows.loads(found[0]["meta"])

    def conversation_turns(self, conversation_id: int) -> list[StoredTurn]:
        """Every turn in order, regenerated alternatives included; LogError if no such conversation."""
        found = self._query(_TURN_SELECT + "WHERE turns.conversation_id = ? ORDER BY turns.id", (conversation_id,))
        if not found and not self._query("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)):
            raise LogError(f"{self.path}: no conversation {conversation_id}")
        return [rows.stored_turn(row) for row in found]

    def active_turns(self, conversation_id: int) -> list[StoredTurn]:
        """The current branch: each user turn followed by its latest reply alternative."""
        return active_branch(self.conversation_turns(conversation_id))

    def get_turn(self, turn_id: int) -> StoredTurn:
        """One turn; LogError if there is none."""
        found = self._query(_TURN_SELECT + "WHERE turns.id = ?", (turn_id,))
        if not found:
            raise LogError(f"{self.path}: no turn {turn_id}")
        return rows.stored_turn(found[0])

    def token_steps(self, turn_id: int) -> list[TokenStep]:
        """A turn's decoded token telemetry ([] for user turns); TelemetryError if damaged."""
        found = self._query("SELECT turns.id, token_telemetry.data FROM turns LEFT JOIN token_telemetry "
                            "ON token_telemetry.turn_id = turns.id WHERE turns.id = ?", (turn_id,))
        if not found:
            raise LogError(f"{self.path}: no turn {turn_id}")
        blob = found[0]["data"]
        if blob is None:
            return []
        try:
            return decode_steps(blob)
        except CodecError as exc:
            raise TelemetryError(f"turn {turn_id}: {exc}") from None

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Close the file (safe to call twice)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> DialogueLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DialogueLog({str(self.path)!r}, readonly={self.readonly})"
