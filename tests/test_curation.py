"""Curation of the dialogue log on real SQLite files: every action and its undo, the turns never
change, migration 3 -> 4, read snapshots and the export counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.errors import LogError
from agent.harvest import curation
from agent.harvest.counts import ExportCounts, count_examples, per_conversation, turn_shapes
from agent.harvest.curation import CurationState, load_state, state_of
from agent.log import SCHEMA_VERSION, DialogueLog
from agent.log.migrations import MIGRATIONS, apply_migration
from agent.records import AssistantTurnRecord, UserTurnRecord


def reply(conversation_id: int, parent_id: int | None, text: str, **overrides: object) -> AssistantTurnRecord:
    fields: dict = dict(
        conversation_id=conversation_id, parent_id=parent_id, text=text, reasoning="", raw_text=text,
        prompt_text="prompt", prompt_tokens=3, backend="llama_cpp", model_id="SmolLM2-135M-Instruct",
        model_path="/m.gguf", model_hash="00", persona="assistant", adapters=[],
        sampler={"temperature": 0.3}, timings={}, stop_reason="eos", interrupted=False,
    )
    fields.update(overrides)
    return AssistantTurnRecord(**fields)


def fill(log: DialogueLog) -> dict[str, int]:
    """Conversation 'a': a spoken question with a reply and its regenerated alternative, then a
    typed question with one reply. Conversation 'b': one typed exchange."""
    a = log.new_conversation(persona="assistant", title="Столицы")
    spoken = log.add_user_turn(UserTurnRecord(a, "Какая столица Франции?", source="voice", audio_path="a/1.wav"))
    first = log.add_assistant_turn(reply(a, spoken, "Лион."))
    second = log.add_assistant_turn(reply(a, spoken, "Париж.", alternative_of=first))
    typed = log.add_user_turn(UserTurnRecord(a, "А Германии?"))
    single = log.add_assistant_turn(reply(a, typed, "Берлин."))
    b = log.new_conversation(persona="assistant", title="b")
    b_user = log.add_user_turn(UserTurnRecord(b, "hi"))
    b_reply = log.add_assistant_turn(reply(b, b_user, "Hello!"))
    return dict(a=a, spoken=spoken, first=first, second=second, typed=typed, single=single,
                b=b, b_user=b_user, b_reply=b_reply)


@pytest.fixture
def log(tmp_path: Path):
    with DialogueLog(tmp_path / "data" / "dialogues.sqlite3", busy_timeout=0.5) as opened:
        yield opened


@pytest.fixture
def ids(log: DialogueLog) -> dict[str, int]:
    return fill(log)


def originals(path: Path) -> list[tuple]:
    """Every row of the tables curation must never touch."""
    raw = sqlite3.connect(path)
    try:
        return [tuple(r) for table in ("conversations", "turns", "token_telemetry")
                for r in raw.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        raw.close()


def test_every_action_and_its_undo_leave_the_turns_unchanged(log: DialogueLog, ids: dict[str, int]) -> None:
    before = originals(log.path)
    steps = [
        (lambda: curation.rate(log, ids["single"], "good", " concise "),
         lambda s: s.ratings == {ids["single"]: ("good", "concise")}),
        (lambda: curation.edit(log, ids["first"], "Париж, конечно."),
         lambda s: s.edits == {ids["first"]: "Париж, конечно."}),
        (lambda: curation.prefer(log, ids["second"]),
         lambda s: s.preferred == {ids["first"]: ids["second"]}),
        (lambda: curation.exclude(log, "turn", ids["typed"]),
         lambda s: s.excluded_turns == {ids["typed"]}),
        (lambda: curation.exclude(log, "conversation", ids["b"]),
         lambda s: s.excluded_conversations == {ids["b"]} and s.excluded(ids["b"])),
        (lambda: curation.tag(log, ids["a"], "geo"),
         lambda s: s.tags == {ids["a"]: frozenset({"geo"})}),
        (lambda: curation.correct_transcript(log, ids["spoken"], "Какая столица у Франции?"),
         lambda s: s.transcripts == {ids["spoken"]: "Какая столица у Франции?"}),
    ]
    for act, holds in steps:
        action_id = act()
        assert holds(state_of(log)), action_id
        assert curation.undo(log, action_id) == action_id
        assert state_of(log) == CurationState()
    assert originals(log.path) == before
    with log.snapshot() as conn:
        actions = curation.conversation_actions(conn, ids["a"]) + curation.conversation_actions(conn, ids["b"])
    assert len(actions) == len(steps) and all(a.undone_at is not None and not a.active for a in actions)
    assert all(a.undone_at is not None and a.undone_at >= a.created_at for a in actions)


def test_latest_action_wins_and_undo_brings_back_the_one_before(log: DialogueLog, ids: dict[str, int]) -> None:
    turn = ids["single"]
    curation.rate(log, turn, "good")
    bad = curation.rate(log, turn, "bad", "wrong city")
    assert state_of(log).ratings[turn] == ("bad", "wrong city")
    curation.undo(log, bad)
    assert state_of(log).ratings[turn] == ("good", None)
    curation.edit(log, turn, "Берлин, столица Германии.")
    second_edit = curation.edit(log, turn, "Берлин.\nСтолица Германии.")
    assert state_of(log).edits[turn] == "Берлин.\nСтолица Германии."
    curation.undo(log, second_edit)
    assert state_of(log).edits[turn] == "Берлин, столица Германии."


def test_preference_is_per_reply_group(log: DialogueLog, ids: dict[str, int]) -> None:
    curation.prefer(log, ids["first"])
    switched = curation.prefer(log, ids["second"])
    assert state_of(log).preferred == {ids["first"]: ids["second"]}  # keyed by the group's first reply
    curation.undo(log, switched)
    assert state_of(log).preferred == {ids["first"]: ids["first"]}


def test_tags_are_per_value_and_removed_by_undo_or_untag(log: DialogueLog, ids: dict[str, int]) -> None:
    geo = curation.tag(log, ids["a"], "geo")
    curation.tag(log, ids["a"], "русский")
    curation.tag(log, ids["b"], "geo")
    assert state_of(log).tags == {ids["a"]: {"geo", "русский"}, ids["b"]: {"geo"}}
    curation.undo(log, geo)
    assert state_of(log).tags[ids["a"]] == {"русский"}
    assert curation.untag(log, ids["a"], "русский") and ids["a"] not in state_of(log).tags
    curation.tag(log, ids["a"], "geo")  # a removed tag can be given again
    assert state_of(log).tags[ids["a"]] == {"geo"}


def test_include_undoes_an_exclusion(log: DialogueLog, ids: dict[str, int]) -> None:
    action = curation.exclude(log, "conversation", ids["a"])
    assert curation.include(log, "conversation", ids["a"]) == [action]
    assert state_of(log).excluded_conversations == frozenset()
    with pytest.raises(LogError, match="conversation .* is not excluded"):
        curation.include(log, "conversation", ids["a"])


@pytest.mark.parametrize(("act", "message"), [
    (lambda log, i: curation.rate(log, 999, "good"), "no turn 999"),
    (lambda log, i: curation.rate(log, i["spoken"], "good"), "is a user turn: only assistant replies are rated"),
    (lambda log, i: curation.rate(log, i["single"], "meh"), "rating must be good or bad"),
    (lambda log, i: curation.edit(log, i["typed"], "x"), "is a user turn"),
    (lambda log, i: curation.edit(log, i["single"], "  Берлин. "), "the same as the reply"),
    (lambda log, i: curation.edit(log, i["single"], " \n"), "is empty"),
    (lambda log, i: curation.prefer(log, i["single"]), "has no regenerated alternatives"),
    (lambda log, i: curation.exclude(log, "conversation", 999), "no conversation 999"),
    (lambda log, i: curation.exclude(log, "turn", 999), "no turn 999"),
    (lambda log, i: curation.tag(log, 999, "x"), "no conversation 999"),
    (lambda log, i: curation.tag(log, i["a"], "  "), "a tag must be non-empty"),
    (lambda log, i: curation.tag(log, i["a"], "a\nb"), "printable"),
    (lambda log, i: curation.correct_transcript(log, i["single"], "x"), "is an assistant reply"),
    (lambda log, i: curation.correct_transcript(log, i["typed"], "x"), "was typed, not spoken"),
    (lambda log, i: curation.correct_transcript(log, i["spoken"], ""), "is empty"),
    (lambda log, i: curation.undo(log, 999), "no curation action 999"),
    (lambda log, i: curation.untag(log, i["a"], "never"), "is not tagged"),
])
def test_invalid_actions_are_one_line_log_errors_and_store_nothing(log: DialogueLog, ids: dict[str, int], act, message: str) -> None:
    with pytest.raises(LogError, match=message) as caught:
        act(log, ids)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 4
    with log.snapshot() as conn:
        assert conn.execute("SELECT COUNT(*) FROM curation").fetchone()[0] == 0


def test_repeated_exclusion_tag_and_undo_are_refused(log: DialogueLog, ids: dict[str, int]) -> None:
    curation.exclude(log, "turn", ids["single"])
    with pytest.raises(LogError, match="already excluded"):
        curation.exclude(log, "turn", ids["single"])
    action = curation.tag(log, ids["a"], "geo")
    with pytest.raises(LogError, match="already tagged 'geo'"):
        curation.tag(log, ids["a"], " geo ")
    curation.undo(log, action)
    with pytest.raises(LogError, match="already undone"):
        curation.undo(log, action)


def test_actions_are_never_rewritten_or_deleted(log: DialogueLog, ids: dict[str, int]) -> None:
    action = curation.rate(log, ids["single"], "good")
    raw = sqlite3.connect(log.path, isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="never rewritten"):
        raw.execute("UPDATE curation SET value = '{\"rating\": \"bad\"}' WHERE id = ?", (action,))
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        raw.execute("DELETE FROM curation")
    raw.close()
    assert state_of(log).ratings == {ids["single"]: ("good", None)}


def test_history_and_last_action(log: DialogueLog, ids: dict[str, int]) -> None:
    good = curation.rate(log, ids["first"], "good")
    edited = curation.edit(log, ids["first"], "Париж.")
    tagged = curation.tag(log, ids["a"], "geo")
    curation.rate(log, ids["b_reply"], "bad")  # another conversation's
    curation.undo(log, edited)
    with log.snapshot() as conn:
        on_turn = curation.history(conn, "turn", ids["first"])
        all_of_a = curation.conversation_actions(conn, ids["a"])
    assert [(a.id, a.action, a.active) for a in on_turn] == [(good, "rate", True), (edited, "edit", False)]
    assert [a.id for a in all_of_a] == [good, edited, tagged]
    assert [a.describe() for a in all_of_a] == ["rate good", "edit 'Париж.'", "tag geo"]
    last = curation.last_action(log, ids["a"])
    assert last is not None and last.id == tagged
    assert curation.last_action(log, 999) is None


def _version3_log(path: Path) -> None:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    for migration in MIGRATIONS[:3]:
        apply_migration(raw, migration)
    raw.execute("INSERT INTO conversations (id, title, persona, started_at, updated_at) VALUES (1, 't', 'p', 1, 2)")
    raw.execute("INSERT INTO turns (id, conversation_id, role, text, created_at, source) VALUES (1, 1, 'user', 'q', 1, 'voice')")
    raw.execute("INSERT INTO turns (id, conversation_id, role, text, created_at, parent_id, stop_reason) "
                "VALUES (2, 1, 'assistant', 'a', 1.5, 1, 'eos')")
    raw.execute("COMMIT")
    raw.close()


def test_a_version_3_log_reads_as_uncurated_and_migrates_to_4(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    _version3_log(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 3
    assert load_state(raw) == CurationState() and curation.history(raw, "turn", 2) == []
    assert count_examples(raw) == ExportCounts(1, 0, 0)
    raw.close()
    before = originals(path)
    with DialogueLog(path) as upgraded:
        assert SCHEMA_VERSION >= 4  # later migrations (5: MoE routing) run in the same upgrade
        with upgraded.snapshot() as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert originals(path) == before
        curation.rate(upgraded, 2, "good")
        curation.correct_transcript(upgraded, 1, "question")
        assert state_of(upgraded).ratings == {2: ("good", None)}
    assert originals(path) == before


def test_a_reader_snapshot_does_not_see_later_actions(log: DialogueLog, ids: dict[str, int]) -> None:
    curation.rate(log, ids["single"], "good")
    reader = sqlite3.connect(log.path, isolation_level=None)
    reader.execute("BEGIN")
    assert load_state(reader).ratings == {ids["single"]: ("good", None)}
    curation.rate(log, ids["single"], "bad")  # the writer goes on while the export reads
    curation.tag(log, ids["a"], "geo")
    assert load_state(reader).ratings == {ids["single"]: ("good", None)} and load_state(reader).tags == {}
    reader.execute("COMMIT")
    assert load_state(reader).ratings == {ids["single"]: ("bad", None)}
    reader.close()


def counts(log: DialogueLog) -> ExportCounts:
    with log.snapshot() as conn:
        return count_examples(conn)


def test_export_counts_follow_the_curation(log: DialogueLog, ids: dict[str, int]) -> None:
    assert counts(log) == ExportCounts(sft_conversations=2, dpo_pairs=0, kto_rows=0)
    curation.prefer(log, ids["second"])  # Париж over Лион
    assert counts(log) == ExportCounts(2, 1, 0)
    curation.edit(log, ids["first"], "Париж!")  # the correction over the original Лион
    curation.rate(log, ids["single"], "good")
    curation.rate(log, ids["b_reply"], "bad")  # a bad reply alone: no SFT conversation b
    assert counts(log) == ExportCounts(1, 2, 2)
    curation.exclude(log, "turn", ids["spoken"])  # the question out: its replies too
    assert counts(log) == ExportCounts(1, 0, 2)
    action = curation.exclude(log, "conversation", ids["a"])
    assert counts(log) == ExportCounts(0, 0, 1)  # b's bad rating is still a KTO row
    curation.undo(log, action)
    assert counts(log) == ExportCounts(1, 0, 2)


def test_ratings_of_alternatives_make_pairs_without_a_preference(log: DialogueLog, ids: dict[str, int]) -> None:
    curation.rate(log, ids["first"], "bad")
    curation.rate(log, ids["second"], "good")
    assert counts(log) == ExportCounts(2, 1, 2)
    interrupted_id = log.add_assistant_turn(reply(ids["b"], ids["b_user"], "Hel", interrupted=True,
                                                  stop_reason="cancelled", alternative_of=ids["b_reply"]))
    curation.rate(log, ids["b_reply"], "bad")
    assert counts(log) == ExportCounts(1, 1, 3)  # b: the bad one unusable, the interrupted one too
    assert interrupted_id


def test_per_conversation_tallies(log: DialogueLog, ids: dict[str, int]) -> None:
    curation.rate(log, ids["first"], "good")
    curation.rate(log, ids["single"], "bad")
    curation.edit(log, ids["single"], "Берлин!")
    curation.prefer(log, ids["first"])
    curation.exclude(log, "turn", ids["b_reply"])
    with log.snapshot() as conn:
        tallies = per_conversation(load_state(conn), turn_shapes(conn))
        assert len(turn_shapes(conn, ids["b"])) == 2
    assert (tallies[ids["a"]].rated, tallies[ids["a"]].edited, tallies[ids["a"]].preferred) == (2, 1, 1)
    assert tallies[ids["b"]].excluded_turns == 1 and tallies[ids["b"]].rated == 0
