"""Memory over past dialogues: the real dialogue log indexed per exchange, recalled across languages."""

from __future__ import annotations

import pytest

from agent.cli import main
from agent.engine import ConversationEngine
from agent.knowledge.embed import default_embedder
from agent.knowledge.memory import memory_source, sync_memory
from agent.knowledge.retriever import HEADER, KnowledgeRetriever
from agent.knowledge.service import make_indexer, open_store
from agent.log import DialogueLog
from agent.personas import PersonaBook
from agent.records import AssistantTurnRecord, UserTurnRecord

CONFIG = """
[personas.rememberer]
system_prompt = "You remember earlier conversations."
retrieve = "memory"
[sampler]
seed = 5
max_tokens = 8
[knowledge]
max_sources = 2
max_tokens = 200
"""


def _reply(conversation_id: int, parent_id: int, text: str, **fields: object) -> AssistantTurnRecord:
    values: dict = dict(
        conversation_id=conversation_id, parent_id=parent_id, text=text, reasoning="", raw_text=text,
        prompt_text="(prompt)", prompt_tokens=3, backend="llama_cpp", model_id="m", model_path="/m.gguf",
        model_hash="h", persona="assistant", adapters=[], sampler={}, timings={}, stop_reason="eos", interrupted=False,
    )
    return AssistantTurnRecord(**(values | fields))


def _exchange(log: DialogueLog, conversation_id: int, question: str, answer: str, **fields: object) -> tuple[int, int]:
    user = log.add_user_turn(UserTurnRecord(conversation_id, question))
    return user, log.add_assistant_turn(_reply(conversation_id, user, answer, **fields))


@pytest.fixture
def config(make_config):
    return make_config(CONFIG)


@pytest.fixture
def logged(config):
    with DialogueLog(config.log_path()) as log:
        trip = log.new_conversation(persona="assistant", title="holiday plans")
        ids = _exchange(log, trip, "I am flying to Lisbon on the 3rd of May with my sister Olga.",
                        "Lovely! Lisbon in May is warm; pack light clothes.")
        _exchange(log, trip, "What is the weather there?", "it fails", stop_reason="error")
        work = log.new_conversation(persona="assistant", title="work")
        _exchange(log, work, "Мой начальник попросил отчёт о продажах к пятнице.", "Начните с цифр за квартал.")
    return {"trip": trip, "work": work, "lisbon": ids}


def test_exchanges_are_indexed_once_and_recalled_across_languages(config, logged):
    with open_store(config) as store:
        indexer = make_indexer(config, store)
        first = sync_memory(indexer, config.log_path())
        assert (first.conversations, first.indexed) == (2, 2)
        again = sync_memory(indexer, config.log_path())
        assert (again.indexed, again.removed) == (0, 0)  # nothing changed: nothing re-embedded
        [trip] = [d for d in store.documents(memory=True) if d.source == memory_source(logged["trip"])]
        assert trip.chunk_count == 1 and trip.meta["turn_ids"] == [list(logged["lisbon"])]  # the failed reply left out
        assert store.documents(memory=False) == []


def _run(config, argv):
    try:
        main(["--config", str(config.file), *argv])
    except SystemExit as exc:
        return exc.code
    return 0


def test_recall_prints_the_exchange_that_answers(config, logged, capsys):
    assert _run(config, ["knowledge", "recall", "Когда я лечу в Лиссабон?"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("[1] ") and f"dialogue:{logged['trip']} § conversation {logged['trip']} (holiday plans)" in first
    assert "Lisbon" in out
    assert _run(config, ["knowledge", "recall", "When is the sales report due?"]) == 0
    assert "отчёт о продажах" in capsys.readouterr().out.splitlines()[1]


def test_a_new_exchange_is_picked_up_and_a_memory_persona_cites_it(config, logged, starter_model):
    with DialogueLog(config.log_path()) as log:
        _exchange(log, logged["work"], "My car is a blue Škoda Octavia from 2015.", "Noted.")
        retriever = KnowledgeRetriever(config, default_embedder())
        engine = ConversationEngine(starter_model, PersonaBook(config), config.settings.sampler, log=log,
                                    persona="rememberer", retriever=retriever)
        finished = engine.respond("What colour is my car?")
        retriever.close()
        reply = log.get_turn(finished.turn_id)
    retrieval = engine.last_retrieval
    assert retrieval is not None and retrieval.scope == "memory"
    assert retrieval.sources[0].source == memory_source(logged["work"]) and "blue Škoda" in retrieval.sources[0].text
    assert HEADER in reply.data["prompt_text"] and "blue Škoda" in reply.data["prompt_text"]
    assert reply.data["extra"]["retrieval"]["sources"][0]["chunk_id"] == retrieval.sources[0].chunk_id
