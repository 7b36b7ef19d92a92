"""Regenerating a reply that had sources gives the model the same sources, not a fresh retrieval:
with a real knowledge store, dialogue log and the starter model (llama.cpp SmolLM2)."""

from __future__ import annotations

import pytest

from agent.engine import ConversationEngine
from agent.events import EngineEvent, Notice
from agent.knowledge.embed import default_embedder
from agent.knowledge.retriever import KnowledgeRetriever
from agent.knowledge.service import make_indexer, open_store
from agent.log import DialogueLog
from agent.personas import PersonaBook

CONFIG = """
[personas.reader]
system_prompt = "Answer from the sources."
retrieve = "knowledge"
[sampler]
seed = 3
max_tokens = 8
"""
QUESTION = "When does the Vardø lighthouse keeper feed his cat Pelle?"
LIGHTHOUSE = "# Lighthouse\n\nThe keeper of the Vardø lighthouse feeds his cat Pelle at seven every morning.\n"
CATS = "# Cats\n\nPelle, the cat of the Vardø lighthouse keeper, gets his fish at seven every morning.\n"


@pytest.fixture
def config(make_config):
    return make_config(CONFIG)


@pytest.fixture
def notes(tmp_path, config):
    lighthouse, cats = tmp_path / "lighthouse.md", tmp_path / "cats.md"
    lighthouse.write_text(LIGHTHOUSE, encoding="utf-8")
    cats.write_text(CATS, encoding="utf-8")
    with open_store(config) as store:
        make_indexer(config, store).add(str(lighthouse))
    return lighthouse, cats


def _add(config, path, *, force=False):
    with open_store(config) as store:
        make_indexer(config, store).add(str(path), force=force)


def _sources(turn):
    return [(s["number"], s["source"], s["heading"], s["text_hash"]) for s in turn.data["extra"]["retrieval"]["sources"]]


def _engine(config, log, model):
    retriever = KnowledgeRetriever(config, default_embedder())
    return ConversationEngine(model, PersonaBook(config), config.settings.sampler, log=log, persona="reader",
                              retriever=retriever), retriever


def test_a_regenerated_reply_gets_the_sources_of_the_reply_it_replaces(config, notes, starter_model):
    lighthouse, cats = notes
    with DialogueLog(config.log_path()) as log:
        engine, retriever = _engine(config, log, starter_model)
        first = engine.respond(QUESTION)
        _add(config, cats)  # a fresh retrieval would now bring the second note too
        fresh = retriever.retrieve(QUESTION, scope="knowledge", budget_tokens=600, count_tokens=starter_model.count_tokens)
        assert str(cats) in {s.source for s in fresh.sources}
        again = engine.regenerate()
        retriever.close()
        original, alternative = log.get_turn(first.turn_id), log.get_turn(again.turn_id)
    assert alternative.alternative_of == original.id
    assert _sources(alternative) == _sources(original) == [(1, str(lighthouse), "Lighthouse", _sources(original)[0][3])]
    assert "Pelle at seven" in alternative.data["prompt_text"] and "gets his fish" not in alternative.data["prompt_text"]
    assert again.retrieval is not None and [s.source for s in again.retrieval.sources] == [str(lighthouse)]


def test_after_a_restart_the_sources_are_read_back_from_the_log(config, notes, starter_model):
    lighthouse, cats = notes
    with DialogueLog(config.log_path()) as log:
        engine, retriever = _engine(config, log, starter_model)
        first = engine.respond(QUESTION)
        retriever.close()
        conversation = engine.conversation_id
    _add(config, lighthouse, force=True)  # re-indexed: new chunk ids, same text
    _add(config, cats)
    with DialogueLog(config.log_path()) as log:
        engine, retriever = _engine(config, log, starter_model)  # a new process: nothing kept in memory
        engine.open_conversation(conversation)
        again = engine.regenerate()
        original, alternative = log.get_turn(first.turn_id), log.get_turn(again.turn_id)
        old_id = original.data["extra"]["retrieval"]["sources"][0]["chunk_id"]
        assert _sources(alternative) == _sources(original)
        assert alternative.data["extra"]["retrieval"]["sources"][0]["chunk_id"] != old_id
        assert "Pelle at seven" in alternative.data["prompt_text"] and "gets his fish" not in alternative.data["prompt_text"]

        retriever.close()

        lighthouse.write_text(LIGHTHOUSE.replace("seven", "eight"), encoding="utf-8")
        _add(config, lighthouse)  # the text it was given is gone from the store
        engine, retriever = _engine(config, log, starter_model)
        engine.open_conversation(conversation)
        events: list[EngineEvent] = []
        third = engine.regenerate(on_event=events.append)
        retriever.close()
        changed = log.get_turn(third.turn_id)
    warnings = [e.message for e in events if isinstance(e, Notice) and e.level == "warning"]
    assert warnings == [f"Source [1] {lighthouse} changed or was removed since"]
    assert changed.data["extra"]["retrieval"]["sources"] == [] and "Pelle at" not in changed.data["prompt_text"]


def test_a_persona_that_retrieves_nothing_regenerates_without_sources(make_config, notes, starter_model):
    config = make_config(CONFIG.replace('retrieve = "knowledge"', 'retrieve = "none"'))
    with DialogueLog(config.log_path()) as log:
        engine, retriever = _engine(config, log, starter_model)
        engine.respond(QUESTION)
        again = engine.regenerate()
        retriever.close()
        alternative = log.get_turn(again.turn_id)
    assert again.retrieval is None and "retrieval" not in alternative.data["extra"]
