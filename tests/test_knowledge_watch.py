"""Watched folders on a real temp folder: a written file becomes searchable, a changed one replaces its
text, a deleted one is forgotten; the CLI's ``knowledge watch`` prints a line per change and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.knowledge.embed import default_embedder
from agent.knowledge.indexer import Indexer
from agent.knowledge.search import SearchOptions, search
from agent.knowledge.store import KnowledgeStore
from agent.knowledge.watch import FolderWatcher, indexable
from tests.knowledge_fixtures import make_pdf

WAIT_S = 10.0


def _until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S:.0f} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def watched(tmp_path) -> Iterator[tuple[Path, KnowledgeStore, list[str]]]:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "before.md").write_text("# Tea\n\nGreen tea steeps for two minutes at eighty degrees.\n", encoding="utf-8")
    store = KnowledgeStore(tmp_path / "k.sqlite3")
    lines: list[str] = []
    watcher = FolderWatcher(Indexer(store, default_embedder()), [folder], lines.append, debounce_ms=100)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        assert watcher.ready.wait(WAIT_S), "the watcher did not start"
        yield folder, store, lines
    finally:
        watcher.stop()
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the watcher did not stop"
        store.close()


def _texts(store: KnowledgeStore, query: str) -> str:
    return " ".join(hit.chunk.text for hit in search(store, default_embedder(), query, SearchOptions()).hits)


def test_written_changed_and_deleted_files_follow_in_the_store(watched):
    folder, store, lines = watched
    assert "two minutes" in _texts(store, "how long does green tea steep")  # caught up at start
    bees = folder / "bees.md"
    bees.write_text("# Bees\n\nThe hive on the balcony swarmed in early May.\n", encoding="utf-8")
    _until(lambda: "swarmed in early May" in _texts(store, "when did the hive swarm"), "a new file searchable")
    bees.write_text("# Bees\n\nThe hive on the balcony was moved to the orchard in July.\n", encoding="utf-8")
    _until(lambda: "orchard in July" in _texts(store, "where was the hive moved"), "a changed file re-indexed")
    assert "swarmed" not in _texts(store, "when did the hive swarm")
    bees.unlink()
    _until(lambda: store.document(str(bees.resolve())) is None, "a deleted file forgotten")
    assert "orchard" not in _texts(store, "where was the hive moved")
    assert any(line.startswith("added") and "bees.md" in line for line in lines)
    assert any(line.startswith("updated") and "bees.md" in line for line in lines)
    assert any(line.startswith("removed") and "bees.md" in line for line in lines)
    assert all("\n" not in line for line in lines)


def test_a_corrupt_pdf_is_one_failed_line_and_the_watch_goes_on(watched):
    folder, store, lines = watched
    (folder / "broken.pdf").write_bytes(make_pdf(["Quarterly revenue"])[:120])
    _until(lambda: any("broken.pdf" in line for line in lines), "a line for the corrupt PDF")
    assert [line for line in lines if "broken.pdf" in line][0].startswith("failed")
    assert store.document(str((folder / "broken.pdf").resolve())) is None
    (folder / "after.txt").write_text("The boiler is serviced every October.\n", encoding="utf-8")
    _until(lambda: "every October" in _texts(store, "when is the boiler serviced"), "the next file after a failure")


def test_only_documents_and_no_editor_temporaries_are_watched():
    assert indexable("/n/a.md") and indexable("/n/b.PDF") and indexable("/n/c.html")
    assert not indexable("/n/.a.md.swp") and not indexable("/n/a.md~") and not indexable("/n/.#a.md") and not indexable("/n/a.jpg")


def _cli(tmp_path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\ndata_dir = "{tmp_path / "data"}"\n[knowledge]\nwatch_debounce_ms = 100\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPISTEMIC_")}
    return [sys.executable, "-m", "agent", "--config", str(config), "knowledge", *args], env


def test_the_cli_prints_a_line_per_change_and_stops_cleanly_on_ctrl_c(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "old.md").write_text("# Old\n\nThe shed key hangs by the back door.\n", encoding="utf-8")
    argv, env = _cli(tmp_path, "watch", str(folder))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    guard = threading.Timer(180, proc.kill)  # a hung watcher fails the test instead of blocking it
    guard.start()
    try:
        assert proc.stdout is not None
        first, ready = proc.stdout.readline(), proc.stdout.readline()
        assert first.startswith("added") and "old.md" in first  # caught up first
        assert ready.startswith(f"watching {folder}")
        (folder / "new.txt").write_text("The bicycle pump is in the garage.\n", encoding="utf-8")
        second = proc.stdout.readline()
        assert second.startswith("added") and "new.txt" in second
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        guard.cancel()
    assert proc.returncode == 0, rest
    assert rest.strip() == "stopped watching" and "Traceback" not in rest


def test_watching_a_missing_folder_is_one_line_and_exit_6(tmp_path):
    argv, env = _cli(tmp_path, "watch", str(tmp_path / "nope"))
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 6 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "nope" in done.stderr


def test_no_folder_named_or_configured_says_so(tmp_path):
    argv, env = _cli(tmp_path, "watch")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 6 and "[knowledge] watch" in done.stderr and "Traceback" not in done.stderr


def test_headless_voice_follows_the_configured_watch_folders(make_config, tmp_path, capsys):
    """``epistemic voice`` starts the ``[knowledge] watch`` thread beside the loop (its lines on
    stderr), and starts nothing when no folder is configured."""
    from agent.cli.voice_cmds import _knowledge_watch

    assert _knowledge_watch(make_config("")) is None
    folder = tmp_path / "watched"
    folder.mkdir()
    watch = _knowledge_watch(make_config(f'[knowledge]\nwatch = ["{folder}"]\nwatch_debounce_ms = 100\n'))
    assert watch is not None
    try:
        _until(lambda: "watching" in capsys.readouterr().err, "the 'watching' line")
        (folder / "new.md").write_text("# Cats\n\nCats sleep sixteen hours a day.\n", encoding="utf-8")
        seen: list[str] = []
        _until(lambda: seen.append(capsys.readouterr().err) or "new.md" in "".join(seen), "the change line")
        assert "knowledge: " in "".join(seen)
    finally:
        watch.stop()
    assert not watch.running
