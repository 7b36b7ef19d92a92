"""What the text formats hold, row by row, on real SQLite logs: the Parquet file has exactly the
SFT rows with provenance as columns, corrected transcripts replace the user's words (the original
kept in provenance), and retrieved sources are kept or left out as asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.harvest.export.options import ExportOptions
from agent.harvest.export.run import export
from tests.harvest_fixtures import exchange, varied_log


def jsonl(out: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((out / "data").glob("*.jsonl"))
            for line in p.read_text(encoding="utf-8").splitlines()]


def test_parquet_holds_the_sft_rows_with_provenance_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    from agent.harvest.export import parquet_fmt

    log = varied_log(tmp_path / "log.db", conversations=40)
    conv = log.new_conversation(persona="assistant")
    _, cut = exchange(log, conv, "Ünïcödé вопрос 🙂", "ответ, прерванный", interrupted=True, stop_reason="cancelled",
                      heard_text="ответ", reasoning="мысль")
    exchange(log, conv, "Ещё вопрос", "Ответ с ё и 🙂", reasoning="думаю…")
    log.close()
    monkeypatch.setattr(parquet_fmt, "ROW_GROUP_MESSAGES", 16)  # several row groups per split
    options = dict(split=(0.5, 0.25, 0.25), seed=2)
    export(ExportOptions("sft", tmp_path / "sft", **options), tmp_path / "log.db")  # type: ignore[arg-type]
    report = export(ExportOptions("parquet", tmp_path / "pq", **options), tmp_path / "log.db")  # type: ignore[arg-type]
    expected = {r["conversation_id"]: r for r in jsonl(tmp_path / "sft")}
    got = {}
    for path, n in report.rows.items():
        file = pq.ParquetFile(tmp_path / "pq" / path)
        assert file.metadata.num_rows == n and (n <= 8 or file.metadata.num_row_groups > 1)
        got.update({r["conversation_id"]: r for r in file.read().to_pylist()})
    assert got.keys() == expected.keys() and len(got) == 41
    for conv_id, row in got.items():
        sft = expected[conv_id]
        assert row["messages"] == sft["messages"]
        for key, (column, _) in parquet_fmt.COLUMNS.items():
            assert row[column] == [p[key] for p in sft["provenance"]], (conv_id, column)
    assert cut not in {t for r in got.values() for t in r["turn_ids"]}  # interrupted replies dropped, as in sft
    assert got[conv]["messages"][-1]["content"] == "<think>\nдумаю…\n</think>\n\nОтвет с ё и 🙂"
