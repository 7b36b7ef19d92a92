"""``epistemic log rate|edit|prefer|exclude|tag|transcript|undo|curation`` on real SQLite files."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from agent.config import LogSettings, Settings
from agent.config_load import LoadedConfig
from agent.errors import LogError
from agent.harvest.curation import state_of
from agent.log import DialogueLog
from tests.test_curation import fill, originals

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "dialogues.sqlite3"


@pytest.fixture
def ids(db_path: Path) -> dict[str, int]:
    with DialogueLog(db_path) as log:
        return fill(log)


def run(db_path: Path, *args: str, env: dict[str, str] | None = None):
    from agent.cli.log_cmd import log

    loaded = LoadedConfig(settings=Settings(log=LogSettings(path=str(db_path))), file=None)
    return CliRunner(env=env).invoke(log, list(args), obj={"config": loaded}, catch_exceptions=True)


def action_id(output: str) -> int:
    found = re.match(r"action (\d+): ", output)
    assert found, output
    return int(found.group(1))


def state(db_path: Path):
    with DialogueLog(db_path) as log:
        return state_of(log)


def test_each_command_records_an_action_that_undo_takes_back(db_path: Path, ids: dict[str, int]) -> None:
    before = originals(db_path)
    commands = [
        (["rate", str(ids["single"]), "good", "--note", "точно"], lambda s: s.ratings == {ids["single"]: ("good", "точно")}),
        (["edit", str(ids["first"]), "--text", "Париж."], lambda s: s.edits == {ids["first"]: "Париж."}),
        (["prefer", str(ids["second"])], lambda s: s.preferred == {ids["first"]: ids["second"]}),
        (["exclude", str(ids["typed"])], lambda s: s.excluded_turns == {ids["typed"]}),
        (["exclude", "--conversation", str(ids["b"])], lambda s: s.excluded_conversations == {ids["b"]}),
        (["tag", str(ids["a"]), "geo"], lambda s: s.tags == {ids["a"]: {"geo"}}),
        (["transcript", str(ids["spoken"]), "Столица Франции?"], lambda s: s.transcripts == {ids["spoken"]: "Столица Франции?"}),
    ]
    for args, holds in commands:
        result = run(db_path, *args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        number = action_id(result.output)
        assert f"epistemic log undo {number}" in result.output
        assert holds(state(db_path)), args
        undone = run(db_path, "undo", str(number))
        assert undone.exit_code == 0 and undone.output.strip() == f"action {number} undone"
        assert state(db_path) == type(state(db_path))()
    assert originals(db_path) == before


def test_edit_opens_the_editor_with_the_current_text(db_path: Path, ids: dict[str, int], tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    editor = tmp_path / "editor.sh"
    editor.write_text(f'#!/bin/sh\ncp "$1" {seen}\nprintf "Париж — столица Франции.\\n" > "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IXUSR)
    result = run(db_path, "edit", str(ids["first"]), env={"EDITOR": str(editor), "VISUAL": ""})
    assert result.exit_code == 0, (result.output, result.exception)
    assert seen.read_text().strip() == "Лион."  # the original reply, to correct
    assert state(db_path).edits == {ids["first"]: "Париж — столица Франции.\n"}
    again = run(db_path, "edit", str(ids["first"]), env={"EDITOR": str(editor), "VISUAL": ""})
    assert again.exit_code == 1 and "not changed; nothing saved" in again.output
    assert seen.read_text().strip() == "Париж — столица Франции."  # the latest correction this time


def test_editor_closed_without_a_change_saves_nothing(db_path: Path, ids: dict[str, int], tmp_path: Path) -> None:
    result = run(db_path, "edit", str(ids["first"]), env={"EDITOR": "true", "VISUAL": ""})
    assert result.exit_code == 1 and "nothing saved" in result.output
    assert state(db_path).edits == {}


def test_exclude_needs_exactly_one_target(db_path: Path, ids: dict[str, int]) -> None:
    for args in (["exclude"], ["exclude", "3", "--conversation", "1"]):
        result = run(db_path, *args)
        assert result.exit_code == 2 and "either a TURN_ID or --conversation" in result.output


def test_tag_remove_and_curation_listing(db_path: Path, ids: dict[str, int]) -> None:
    rated = action_id(run(db_path, "rate", str(ids["first"]), "bad").output)
    tagged = action_id(run(db_path, "tag", str(ids["a"]), "geo").output)
    removed = run(db_path, "tag", str(ids["a"]), "geo", "--remove")
    assert removed.exit_code == 0 and f"undid action {tagged}" in removed.output
    listing = run(db_path, "curation", str(ids["a"]))
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].split() == ["ACTION", "WHEN", "TARGET", "WHAT"]
    assert lines[1].split()[0] == str(rated) and f"turn {ids['first']}" in lines[1] and lines[1].endswith("rate bad")
    assert lines[2].split()[0] == str(tagged) and "tag geo  [undone" in lines[2]
    as_json = json.loads(run(db_path, "curation", str(ids["a"]), "--json").output)
    assert [(a["id"], a["action"], a["undone_at"] is None) for a in as_json] == [(rated, "rate", True), (tagged, "tag", False)]
    assert "no curation yet" in run(db_path, "curation", str(ids["b"])).output


def test_show_marks_curated_turns(db_path: Path, ids: dict[str, int]) -> None:
    run(db_path, "rate", str(ids["second"]), "good", "--note", "верно")
    run(db_path, "prefer", str(ids["second"]))
    run(db_path, "edit", str(ids["single"]), "--text", "Берлин, конечно.")
    run(db_path, "exclude", str(ids["typed"]))
    run(db_path, "tag", str(ids["a"]), "geo")
    run(db_path, "transcript", str(ids["spoken"]), "Столица Франции?")
    shown = run(db_path, "show", str(ids["a"]))
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "· tags: geo" in text.splitlines()[0]
    assert "[curation: rated good (верно), preferred]" in text
    assert "[curation: excluded]" in text
    assert "[edited to:]\n      Берлин, конечно." in text and "[really said:]\n      Столица Франции?" in text
    payload = json.loads(run(db_path, "show", str(ids["a"]), "--json").output)
    marks = {t["id"]: t["curation"] for t in payload["turns"]}
    assert marks[ids["second"]] == {"rating": "good", "note": "верно", "preferred": True}
    assert marks[ids["first"]] == {} and marks[ids["typed"]] == {"excluded": True}
    assert payload["tags"] == ["geo"] and payload["excluded"] is False


def test_invalid_curation_raises_a_log_error(db_path: Path, ids: dict[str, int]) -> None:
    result = run(db_path, "rate", str(ids["spoken"]), "good")
    assert isinstance(result.exception, LogError) and "only assistant replies are rated" in str(result.exception)
    assert run(db_path, "rate", str(ids["single"]), "meh").exit_code == 2  # the choice check, one line


def _epistemic(db_path: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"EPISTEMIC_LOG__PATH": str(db_path), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "agent", "log", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=60)


def test_the_real_cli_exits_4_with_one_line(db_path: Path, ids: dict[str, int], tmp_path: Path) -> None:
    done = _epistemic(db_path, tmp_path, "prefer", str(ids["single"]))
    assert done.returncode == 4
    assert done.stderr.strip() == f"epistemic: turn {ids['single']} has no regenerated alternatives to be preferred over"
    missing = _epistemic(tmp_path / "none.sqlite3", tmp_path, "rate", "1", "good")
    assert missing.returncode == 4 and "no dialogue log yet" in missing.stderr
    assert not (tmp_path / "none.sqlite3").exists()  # curating never creates a log
    ok = _epistemic(db_path, tmp_path, "undo", "1")
    assert ok.returncode == 4 and "no curation action 1" in ok.stderr
    helped = _epistemic(db_path, tmp_path, "--help")
    assert helped.returncode == 0 and all(f" {c} " in helped.stdout for c in ("rate", "edit", "prefer", "exclude", "undo"))


def test_usage_errors_are_one_line_naming_the_choices(db_path: Path, ids: dict[str, int], tmp_path: Path) -> None:
    rated = _epistemic(db_path, tmp_path, "rate", str(ids["single"]), "meh")
    assert rated.returncode == 2
    assert rated.stderr == "epistemic: RATING: 'meh' is not one of good, bad (see 'epistemic log rate --help')\n"
    for args, expected in ((["rate", "first", "good"], "TURN_ID: 'first' is not a valid integer"),
                           (["exclude"], "give either a TURN_ID or --conversation ID"),
                           (["tag", "1"], "TAG is required")):
        result = _epistemic(db_path, tmp_path, *args)
        assert result.returncode == 2 and expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
