"""What the text formats hold, row by row, on real SQLite logs: the Parquet file has exactly the
SFT rows with provenance as columns, corrected transcripts replace the user's words (the original
kept in provenance), and retrieved sources are kept or left out as asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.harvest import curation
from agent.harvest.export.options import ExportOptions
from agent.harvest.export.run import export
from agent.log import DialogueLog
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


READER = """
[personas.reader]
system_prompt = "Answer from the sources."
retrieve = "knowledge"
[sampler]
seed = 3
max_tokens = 8
"""
NOTES = {"lighthouse.md": "# Lighthouse\n\nThe keeper of the Vardø lighthouse feeds his cat Pelle at seven every morning.\n",
         "bakery.md": "# Bakery\n\nThe bakery on Strandgata sells cardamom buns until noon on Saturdays.\n"}


@pytest.fixture
def retrieval_log(tmp_path: Path, make_config, starter_model) -> tuple[Path, list[int]]:  # type: ignore[no-untyped-def]
    """A real log written by the engine: a persona that retrieves, two notes, three questions."""
    from agent.engine import ConversationEngine
    from agent.knowledge.embed import default_embedder
    from agent.knowledge.retriever import KnowledgeRetriever
    from agent.knowledge.service import make_indexer, open_store
    from agent.personas import PersonaBook

    config = make_config(READER)
    with open_store(config) as store:
        for name, text in NOTES.items():
            (tmp_path / name).write_text(text, encoding="utf-8")
            make_indexer(config, store).add(str(tmp_path / name))
    retriever = KnowledgeRetriever(config, default_embedder())
    with DialogueLog(config.log_path()) as log:
        engine = ConversationEngine(starter_model, PersonaBook(config), config.settings.sampler, log=log,
                                    persona="reader", retriever=retriever)
        replies = [engine.respond(q).turn_id for q in ("When does the lighthouse keeper feed Pelle?",
                                                       "Until when are cardamom buns sold on Saturdays?",
                                                       "And the Vardø lighthouse cat, when does he eat?")]
    retriever.close()
    return config.log_path(), replies


@pytest.mark.slow  # the starter model answers three questions, with a real knowledge store
def test_retrieved_sources_kept_exactly_as_sent_or_left_out(tmp_path: Path, retrieval_log, starter_model) -> None:  # type: ignore[no-untyped-def]
    from agent.knowledge.retriever import HEADER
    from agent.llm.base import ChatMessage

    path, replies = retrieval_log
    with DialogueLog(path) as log:
        turns = {r: log.get_turn(r) for r in replies}
        curation.rate(log, replies[0], "good")
    blocks = {r: t.data["extra"]["retrieval"]["block"] for r, t in turns.items()}
    for reply, block in blocks.items():
        assert block.startswith(HEADER) and f"Answer from the sources.\n\n{block}" in turns[reply].data["prompt_text"]
    include = export(ExportOptions("sft", tmp_path / "include", split=(1.0, 0.0, 0.0)), path)
    rows = jsonl(tmp_path / "include")
    runs = 1 + sum(blocks[a] != blocks[b] for a, b in zip(replies, replies[1:], strict=False))
    assert len(rows) == runs == include.rows["data/train.jsonl"] and runs > 1, blocks
    for row in rows:  # each row ends with a reply whose prompt had exactly the row's system message
        last = row["provenance"][-1]["turn_id"]
        assert row["messages"][0] == {"role": "system", "content": f"Answer from the sources.\n\n{blocks[last]}"}
        messages = [ChatMessage(m["role"], m["content"]) for m in row["messages"]]
        for k, source in enumerate(row["provenance"]):  # rendered by the model's template: the prompt as sent
            if blocks[source["turn_id"]] == blocks[last]:
                sent = turns[source["turn_id"]].data["prompt_text"]
                assert starter_model.render_prompt(messages[:2 * k + 2]).text == sent
    assert [p["turn_id"] for p in rows[-1]["provenance"]] == replies  # the last row holds the whole history
    assert include.facts.extra["replies given retrieved sources"] == 3
    kto = export(ExportOptions("kto", tmp_path / "kto", split=(1.0, 0.0, 0.0)), path)
    (rated,) = jsonl(tmp_path / "kto")
    assert rated["prompt"][0]["content"] == f"Answer from the sources.\n\n{blocks[replies[0]]}" and kto.rows

    omit = export(ExportOptions("sft", tmp_path / "omit", split=(1.0, 0.0, 0.0), retrieved_context="omit"), path)
    (row,) = jsonl(tmp_path / "omit")
    assert row["messages"][0] == {"role": "system", "content": "Answer from the sources."}
    assert not any(HEADER in m["content"] or "[1]" in m["content"] for m in row["messages"][:1])
    rendered = starter_model.render_prompt([ChatMessage(m["role"], m["content"]) for m in row["messages"][:-1]]).text
    assert HEADER not in rendered and "Answer from the sources." in rendered
    assert [p["turn_id"] for p in row["provenance"]] == replies
    manifest = json.loads((tmp_path / "omit" / "manifest.json").read_text())
    assert manifest["query"]["options"]["retrieved_context"] == "omit"
    assert manifest["counts"]["retrieved context"].startswith("omit:")
    assert "\"retrieved_context\": \"omit\"" in (tmp_path / "omit" / "README.md").read_text()
    assert omit.facts.extra["replies given retrieved sources"] == 3


def test_corrected_transcript_replaces_the_user_text_in_every_text_format(tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    log = DialogueLog(tmp_path / "log.db")
    conv = log.new_conversation(persona="assistant")
    heard, first = exchange(log, conv, "what's the whether tomorrow", "Sunny.", user={"source": "voice"})
    _, second = exchange(log, conv, "thanks", "You are welcome.", user={"source": "voice"})
    alternative = log.add_assistant_turn(_alt(conv, heard, first, "Rain, I am afraid."))
    curation.correct_transcript(log, heard, "what's the weather tomorrow")
    curation.rate(log, first, "good")
    curation.rate(log, alternative, "bad")
    curation.prefer(log, first)
    log.close()

    one_split = dict(split=(1.0, 0.0, 0.0))
    export(ExportOptions("sft", tmp_path / "sft", **one_split), tmp_path / "log.db")  # type: ignore[arg-type]
    (row,) = jsonl(tmp_path / "sft")
    assert [m["content"] for m in row["messages"] if m["role"] == "user"] == ["what's the weather tomorrow", "thanks"]
    assert [p["original_user_text"] for p in row["provenance"]] == ["what's the whether tomorrow", ""]
    card = (tmp_path / "sft" / "README.md").read_text()
    assert "corrected transcripts: 1 in the log" in card and "original_user_text" in card

    export(ExportOptions("dpo", tmp_path / "dpo", **one_split), tmp_path / "log.db")  # type: ignore[arg-type]
    (pair,) = jsonl(tmp_path / "dpo")
    assert pair["prompt"] == [{"role": "user", "content": "what's the weather tomorrow"}]
    assert pair["provenance"]["original_user_text"] == "what's the whether tomorrow"

    export(ExportOptions("sharegpt", tmp_path / "sharegpt", **one_split), tmp_path / "log.db")  # type: ignore[arg-type]
    (shared,) = jsonl(tmp_path / "sharegpt")
    assert shared["conversations"][0] == {"from": "human", "value": "what's the weather tomorrow"}

    export(ExportOptions("parquet", tmp_path / "pq", **one_split), tmp_path / "log.db")  # type: ignore[arg-type]
    (table_row,) = pq.read_table(tmp_path / "pq" / "data" / "train.parquet").to_pylist()
    assert table_row["messages"][0]["content"] == "what's the weather tomorrow"
    assert table_row["original_user_texts"] == ["what's the whether tomorrow", ""] and second in table_row["turn_ids"]


def _alt(conv: int, user: int, of: int, text: str):  # type: ignore[no-untyped-def]
    from tests.harvest_fixtures import reply

    return reply(conv, user, text, alternative_of=of)


def test_sources_of_an_older_log_without_the_block_are_counted_and_left_out(tmp_path: Path) -> None:
    source = {"number": 1, "chunk_id": 3, "source": "/notes/a.md", "heading": "A", "text_hash": "h"}
    block = "Sources (cite a source you use as [n]):\n\n[1] (a.md § A) The tide turns at six."
    log = DialogueLog(tmp_path / "log.db")
    conv = log.new_conversation(persona="assistant")
    _, new = exchange(log, conv, "When does the tide turn?", "At six [1].",
                      extra={"retrieval": {"scope": "knowledge", "block": block, "sources": [source]}})
    _, old = exchange(log, conv, "And tomorrow?", "Later [1].", extra={"retrieval": {"sources": [source]}})
    _, plain = exchange(log, conv, "Thanks", "You're welcome.", extra={"note": "no retrieval here"})
    log.close()
    report = export(ExportOptions("sft", tmp_path / "out", split=(1.0, 0.0, 0.0)), tmp_path / "log.db")
    first, second = jsonl(tmp_path / "out")
    assert first["messages"][0] == {"role": "system", "content": block}
    assert [p["turn_id"] for p in first["provenance"]] == [new]
    assert second["messages"][0]["role"] == "user"  # neither later reply's sources block is known / there
    assert [p["turn_id"] for p in second["provenance"]] == [new, old, plain]
    assert report.facts.extra["replies given retrieved sources"] == 2
    assert report.facts.extra["replies whose sources block was not logged (older log; exported without it)"] == 1
