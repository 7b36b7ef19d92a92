"""Retrieval quality on the bilingual fixture corpus, and turns that cite it through the real engine.

The corpus (tests/knowledge_corpus: 31 short documents, 15 Russian, 16 English) is embedded once
for this module; each question names the document that answers it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agent.engine import ConversationEngine
from agent.knowledge.embed import default_embedder
from agent.knowledge.indexer import Indexer
from agent.knowledge.retriever import HEADER, KnowledgeRetriever
from agent.knowledge.search import SearchOptions, search
from agent.knowledge.store import KnowledgeStore
from agent.log import DialogueLog
from agent.personas import PersonaBook
from tests.knowledge_fixtures import CORPUS, corpus_files

QUESTIONS = json.loads((CORPUS / "questions.json").read_text(encoding="utf-8"))
CROSS = json.loads((CORPUS / "questions_cross.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "knowledge.sqlite3"
    with KnowledgeStore(path) as store:
        results = Indexer(store, default_embedder()).add_all([str(p) for p in corpus_files()])
        assert {r.status for r in results} == {"added"}
        yield store


def _recall_at_5(store, questions):
    """Share of questions whose answering document is among the first five hits, per language."""
    found: dict[str, list[bool]] = {}
    for q in questions:
        hits = search(store, default_embedder(), q["q"], SearchOptions(limit=5)).hits
        found.setdefault(q["lang"], []).append(q["doc"] in {Path(h.chunk.source).name for h in hits})
    every = [f for fs in found.values() for f in fs]
    return {"all": sum(every) / len(every)} | {lang: sum(fs) / len(fs) for lang, fs in found.items()}


def test_the_corpus_is_bilingual_and_every_question_names_a_corpus_document():
    names = {p.name for p in corpus_files()}
    assert len(names) >= 30 and len(QUESTIONS) >= 40
    assert {q["doc"] for q in QUESTIONS + CROSS} <= names
    assert sum(q["lang"] == "ru" for q in QUESTIONS) >= 20
    russian_docs = {p.name for p in corpus_files() if re.search("[а-яё]", p.read_text(encoding="utf-8"))}
    assert 0.4 <= len(russian_docs) / len(names) <= 0.6


def test_recall_at_5_is_at_least_0_9_overall_and_for_russian_questions(corpus_store):
    recall = _recall_at_5(corpus_store, QUESTIONS)
    assert recall["all"] >= 0.9 and recall["ru"] >= 0.9 and recall["en"] >= 0.9, recall


def test_questions_in_the_other_language_mostly_find_their_document(corpus_store):
    recall = _recall_at_5(corpus_store, CROSS)  # English questions about Russian notes and the reverse
    assert recall["all"] >= 0.75, recall
    hits = search(corpus_store, default_embedder(), "When was Saint Petersburg founded?", SearchOptions(limit=3)).hits
    assert Path(hits[0].chunk.source).name == "piter.md" and any("1703" in h.chunk.text for h in hits)


LIBRARIAN = """
[chat]
persona = "librarian"
[personas.librarian]
system_prompt = "Answer briefly from the sources."
retrieve = "knowledge"
[personas.plain]
system_prompt = "Answer briefly."
[sampler]
seed = 3
max_tokens = 8
[knowledge]
path = "{path}"
max_sources = 2
max_tokens = 200
"""


@pytest.fixture
def engine(make_config, starter_model, corpus_store):
    config = make_config(LIBRARIAN.format(path=corpus_store.path))
    retriever = KnowledgeRetriever(config)
    log = DialogueLog(config.log_path())
    yield ConversationEngine(starter_model, PersonaBook(config), config.settings.sampler, log=log, retriever=retriever)
    retriever.close()
    log.close()


def test_a_turn_puts_the_right_source_into_the_prompt_and_logs_its_chunk_ids(engine):
    finished = engine.respond("When is the Aurora prototype due?")
    retrieval = engine.last_retrieval
    assert finished is not None and retrieval is not None and retrieval.sources
    first = retrieval.sources[0]
    assert Path(first.source).name == "project-aurora.md" and first.heading.endswith("Deadline and next steps")
    reply = engine.log.get_turn(finished.turn_id)
    prompt = reply.data["prompt_text"]
    assert HEADER in prompt and f"[1] ({first.label}) " in prompt and "14 March" in prompt
    assert prompt.index("Answer briefly from the sources.") < prompt.index(HEADER) < prompt.index("When is the Aurora")
    logged = reply.data["extra"]["retrieval"]
    assert [s["chunk_id"] for s in logged["sources"]] == [s.chunk_id for s in retrieval.sources]
    assert logged["sources"][0]["text_hash"] == first.text_hash and logged["sources"][0]["source"] == first.source
    assert logged["tokens"] == engine.model.count_tokens(retrieval.block) <= logged["budget_tokens"]


def test_sources_stay_within_the_token_budget_the_planner_gives_them(engine):
    engine.respond("Сколько соли нужно на литр рассола для огурцов?")
    retrieval = engine.last_retrieval
    budget = engine._budget(engine.sampler) - engine.model.count_tokens("Сколько соли нужно на литр рассола для огурцов?")
    assert retrieval is not None and 0 < retrieval.tokens <= retrieval.budget_tokens <= budget // 2
    first = retrieval.sources[0]
    assert Path(first.source).name == "ogurtsy.md" and "соли" in first.text
    assert first.truncated and first.text.endswith(" …")  # a Russian chunk is long in this model's tokens


def test_a_persona_without_retrieve_and_an_irrelevant_question_inject_nothing(engine):
    engine.set_persona("plain")
    finished = engine.respond("When is the Aurora prototype due?")
    assert engine.last_retrieval is None
    reply = engine.log.get_turn(finished.turn_id)
    assert HEADER not in reply.data["prompt_text"] and "retrieval" not in reply.data["extra"]
    engine.set_persona("librarian")
    finished = engine.respond("Who won the football world cup in 1966?")
    assert engine.last_retrieval is not None and engine.last_retrieval.sources == ()
    reply = engine.log.get_turn(finished.turn_id)
    assert HEADER not in reply.data["prompt_text"] and reply.data["extra"]["retrieval"]["sources"] == []
