"""One factory that assembles the product from a configuration; the CLI, TUI and tests share it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.config_load import LoadedConfig
from agent.engine import ConversationEngine
from agent.llm import load_backend
from agent.llm.base import LanguageModel, ProgressCallback
from agent.log import DialogueLog
from agent.personas import PersonaBook

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The loaded model, the dialogue log and the engine that joins them."""

    config: LoadedConfig
    model: LanguageModel
    log: DialogueLog | None
    personas: PersonaBook
    engine: ConversationEngine

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.model.close()


def open_log(config: LoadedConfig) -> DialogueLog | None:
    """The dialogue log named by the config, or None when logging is off."""
    if not config.settings.log.enabled:
        return None
    return DialogueLog(config.log_path())


def build_runtime(
    config: LoadedConfig,
    *,
    persona: str | None = None,
    progress: ProgressCallback | None = None,
    model: LanguageModel | None = None,
) -> Runtime:
    """Load personas, open the log, load the model (unless given) and build the engine.

    The log is opened before the model so a broken database is reported before a long load.
    """
    personas = PersonaBook(config)
    personas.get(persona)  # unknown persona: fail before loading anything
    log = open_log(config)
    try:
        model = model or load_backend(config, progress)
        # the retriever opens its store on the first turn that retrieves
        from agent.knowledge.retriever import KnowledgeRetriever

        engine = ConversationEngine(
            model, personas, config.settings.sampler, log=log, persona=persona, resolve_path=config.resolve,
            retriever=KnowledgeRetriever(config),
        )
    except BaseException:
        if log is not None:
            log.close()
        raise
    return Runtime(config=config, model=model, log=log, personas=personas, engine=engine)
