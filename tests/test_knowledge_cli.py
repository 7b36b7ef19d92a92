"""``epistemic knowledge ...`` end to end on real files: add (with a folder), list, search, change, reindex, remove, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.cli import main
from tests.knowledge_fixtures import closed_port, make_pdf


@pytest.fixture
def config(make_config):
    return make_config("")


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kettle.md").write_text("# Kettle\n\n## Descaling\n\nDescale the kettle monthly with citric acid.\n", encoding="utf-8")
    (folder / "баня.txt").write_text("Берёзовый веник заготавливают в конце июня.\n", encoding="utf-8")
    (folder / "report.pdf").write_bytes(make_pdf(["Revenue grew by 12 percent in the third quarter."]))
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")  # not a document: skipped inside a folder
    return folder


def _run(config, capsys, *argv):
    """Run the CLI in this process: (exit code, stdout, stderr)."""
    try:
        main(["--config", str(config.file), "knowledge", *argv])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_add_a_folder_list_search_and_an_unchanged_re_add(config, docs, capsys):
    code, out, err = _run(config, capsys, "add", str(docs))
    assert code == 0 and out.count("added") == 3 and "photo.jpg" not in out
    assert "[1/3]" in err and "[3/3]" in err  # progress
    code, out, err = _run(config, capsys, "list")
    assert code == 0 and len(out.splitlines()) == 3 and "3 documents, 3 chunks" in err
    code, out, _ = _run(config, capsys, "search", "когда", "заготавливать", "веники?")
    assert code == 0 and out.startswith("[1] ") and "баня.txt" in out.splitlines()[0]
    code, out, _ = _run(config, capsys, "add", str(docs / "kettle.md"))
    assert code == 0 and out.startswith("unchanged")


def test_change_reindex_and_remove(config, docs, capsys):
    _run(config, capsys, "add", str(docs))
    (docs / "kettle.md").write_text("# Kettle\n\n## Descaling\n\nDescale the kettle weekly with vinegar.\n", encoding="utf-8")
    code, out, _ = _run(config, capsys, "reindex")
    assert code == 0 and out.count("unchanged") == 2 and "updated" in out and "kettle.md" in out
    code, out, _ = _run(config, capsys, "search", "descale", "kettle", "--full")
    assert "vinegar" in out and "citric" not in out
    code, out, _ = _run(config, capsys, "remove", str(docs / "kettle.md"))
    assert code == 0 and out.startswith("removed")
    code, out, err = _run(config, capsys, "search", "descale", "kettle")
    assert code == 0 and out == "" and "nothing relevant found" in err
    code, _, err = _run(config, capsys, "remove", "999")
    assert code == 6 and err.strip() == "epistemic: 999: not in the knowledge store (see `epistemic knowledge list`)"


def test_a_corrupt_pdf_and_an_unreachable_url_are_one_line_exit_6_and_nothing_is_indexed(config, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not a pdf body")
    url = f"http://127.0.0.1:{closed_port()}/page.html"
    for ref, expected in ((str(broken), "not a readable PDF"), (url, "unreachable")):
        done = subprocess.run([sys.executable, "-m", "agent", "--config", str(config.file), "knowledge", "add", "-q", ref],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 6, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("epistemic: ") and expected in done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
    done = subprocess.run([sys.executable, "-m", "agent", "--config", str(config.file), "knowledge", "list"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "" and "0 documents, 0 chunks" in done.stderr


def test_one_bad_file_among_good_ones_indexes_the_rest_and_exits_6(config, docs, tmp_path, capsys):
    missing = tmp_path / "missing.md"
    code, out, err = _run(config, capsys, "add", str(docs / "kettle.md"), str(missing))
    assert code == 6 and "added" in out
    assert f"epistemic: {missing}: cannot read: No such file or directory" in err
    assert "1 of 2 not indexed" in err
