"""The knowledge store and indexer a configuration names (the CLI and the engine share this)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.config_load import LoadedConfig
from agent.knowledge.embed import Embedder, default_embedder
from agent.knowledge.indexer import Indexer
from agent.knowledge.search import SearchOptions
from agent.knowledge.store import KnowledgeStore

STORE_NAME = "knowledge.sqlite3"


def store_path(config: LoadedConfig) -> Path:
    """``[knowledge] path``, or knowledge.sqlite3 in the data dir beside the dialogue log."""
    path = config.settings.knowledge.path
    return config.resolve(path) if path else config.data_dir() / STORE_NAME


def open_store(config: LoadedConfig, embedder: Embedder | None = None) -> KnowledgeStore:
    """The configured store, created (owner-only) on first use."""
    return KnowledgeStore(store_path(config), dim=(embedder or default_embedder()).dim)


def make_indexer(config: LoadedConfig, store: KnowledgeStore, embedder: Embedder | None = None,
                 progress: Callable[[str], None] | None = None) -> Indexer:
    """An indexer with the configured chunk size and fetch timeout."""
    settings = config.settings.knowledge
    return Indexer(store, embedder or default_embedder(), max_chars=settings.chunk_chars,
                   timeout=settings.fetch_timeout_s, progress=progress)


def search_options(config: LoadedConfig, scope: str, limit: int | None = None) -> SearchOptions:
    """Search options from ``[knowledge]`` for one scope (knowledge, memory or both)."""
    settings = config.settings.knowledge
    return SearchOptions(limit=limit or settings.max_sources, scope=scope, min_similarity=settings.min_similarity,
                         lexical_min_similarity=settings.lexical_min_similarity)
