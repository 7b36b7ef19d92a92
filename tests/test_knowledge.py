"""Knowledge ingestion and the hybrid store on real files: chunking, stemming, add, change, remove, failures."""

from __future__ import annotations

import stat

import pytest

from agent.knowledge.chunking import chunk_text
from agent.knowledge.embed import default_embedder
from agent.knowledge.errors import KnowledgeError
from agent.knowledge.indexer import Indexer
from agent.knowledge.search import SearchOptions, search
from agent.knowledge.stemming import index_terms, query_terms
from agent.knowledge.store import KnowledgeStore
from tests.knowledge_fixtures import closed_port, make_pdf, serve

NOTES = """# Garden notes

Intro about the garden.

## Roses

Prune roses in early spring, just as the buds swell. Cut above an outward-facing bud.

## Compost

Turn the compost heap every two weeks. Keep it as damp as a wrung-out sponge.
"""


@pytest.fixture
def store(tmp_path):
    with KnowledgeStore(tmp_path / "data" / "knowledge.sqlite3") as opened:
        yield opened


@pytest.fixture
def indexer(store):
    return Indexer(store, default_embedder(), timeout=5.0)


def _find(store, query, **options):
    return search(store, default_embedder(), query, SearchOptions(**options)).hits


def test_chunks_follow_headings_and_paragraphs_and_keep_exact_offsets():
    long_paragraph = " ".join(f"Sentence number {i} is here." for i in range(60))
    text = NOTES + "\n## Long\n\n" + long_paragraph + "\n"
    chunks = chunk_text(text, max_chars=300)
    headings = [c.heading for c in chunks]
    assert headings[:3] == ["Garden notes", "Garden notes > Roses", "Garden notes > Compost"]
    assert all(text[c.start:c.end] == c.text for c in chunks)
    long = [c for c in chunks if c.heading == "Garden notes > Long"]
    assert len(long) > 1 and all(len(c.text) <= 300 for c in long)
    assert all(c.text.endswith(".") for c in long)  # cut at sentence ends, never mid-word
    assert not any("#" in c.text for c in chunks)  # headings are paths, not chunk text


def test_russian_word_forms_meet_at_one_stem_and_stop_words_are_not_searched():
    assert index_terms("книги") == index_terms("книгу") == index_terms("книгой")
    assert index_terms("Ёлки") == index_terms("елки")
    assert index_terms("running") == index_terms("runs") == "run"
    assert query_terms("Какие книги о пчёлах?") == '"книг" OR "пчел"'
    assert query_terms("как и что") is None


def test_add_search_and_an_unchanged_file_is_a_no_op(store, indexer, tmp_path):
    notes = tmp_path / "garden.md"
    notes.write_text(NOTES, encoding="utf-8")
    first = indexer.add(str(notes))
    assert (first.status, first.chunks, first.embedded) == ("added", 3, 3)
    [hit, *_] = _find(store, "When should I prune my roses?")
    assert hit.chunk.heading == "Garden notes > Roses" and hit.chunk.source == str(notes.resolve())
    assert NOTES[hit.chunk.start:hit.chunk.end] == hit.chunk.text and hit.lexical_rank == 1
    generation = store.generation()
    again = indexer.add(str(notes))
    assert again.status == "unchanged" and store.generation() == generation
    assert _find(store, "When should I prune my roses?")[0].chunk.id == hit.chunk.id


def test_a_changed_file_replaces_its_chunks_and_reuses_unchanged_embeddings(store, indexer, tmp_path):
    notes = tmp_path / "garden.md"
    notes.write_text(NOTES, encoding="utf-8")
    indexer.add(str(notes))
    notes.write_text(NOTES.replace("Turn the compost heap every two weeks", "Water the tomatoes daily in July"), encoding="utf-8")
    changed = indexer.add(str(notes))
    assert (changed.status, changed.chunks, changed.embedded) == ("updated", 3, 1)
    assert [d.chunk_count for d in store.documents()] == [3] and store.stats()["chunks"] == 3
    assert "tomatoes" in _find(store, "how often to water tomatoes")[0].chunk.text
    assert not any("compost heap" in h.chunk.text for h in _find(store, "turning the compost heap", min_similarity=-1.0))


def test_reindex_picks_up_changes_and_reports_a_vanished_file(store, indexer, tmp_path):
    keep, gone = tmp_path / "keep.md", tmp_path / "gone.txt"
    keep.write_text(NOTES, encoding="utf-8")
    gone.write_text("A note about sailing knots.", encoding="utf-8")
    indexer.add_all([str(keep), str(gone)])
    keep.write_text(NOTES + "\n## Bees\n\nBees need water nearby.\n", encoding="utf-8")
    gone.unlink()
    results = {r.source: r for r in indexer.reindex()}
    assert results[str(keep.resolve())].status == "updated"
    assert results[str(gone.resolve())].status == "failed"
    assert "No such file" in results[str(gone.resolve())].error and "\n" not in results[str(gone.resolve())].error
    assert _find(store, "do bees need water")[0].chunk.heading == "Garden notes > Bees"


def test_remove_takes_chunks_out_of_both_indexes(store, indexer, tmp_path):
    notes = tmp_path / "garden.md"
    notes.write_text(NOTES, encoding="utf-8")
    indexer.add(str(notes))
    store.remove_document(store.documents()[0].id)
    assert _find(store, "prune roses", min_similarity=-1.0, lexical_min_similarity=-1.0) == ()
    assert store._query("SELECT COUNT(*) FROM chunks_fts")[0][0] == 0
    assert len(store.vectors()) == 0


def test_a_query_about_something_absent_injects_nothing(store, indexer, tmp_path):
    notes = tmp_path / "garden.md"
    notes.write_text(NOTES, encoding="utf-8")
    indexer.add(str(notes))
    assert _find(store, "What is the exchange rate of the yen?") == ()
    assert _find(store, "Кто написал «Войну и мир»?") == ()


def test_pdf_pages_are_indexed_and_a_corrupt_pdf_is_one_line_and_keeps_the_old_version(store, indexer, tmp_path):
    report = tmp_path / "report.pdf"
    report.write_bytes(make_pdf(["Quarterly report", "Revenue grew by 12 percent in the third quarter."]))
    assert indexer.add(str(report)).status == "added"
    [hit, *_] = _find(store, "How much did revenue grow?")
    assert hit.chunk.heading == "page 1" and "12 percent" in hit.chunk.text
    report.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nstream garbage")
    with pytest.raises(KnowledgeError) as caught:
        indexer.add(str(report))
    message = str(caught.value)
    assert message.startswith(f"{report.resolve()}: not a readable PDF") and "\n" not in message
    assert [d.chunk_count for d in store.documents()] == [1]  # the earlier version is intact
    assert _find(store, "How much did revenue grow?")[0].chunk.id == hit.chunk.id


def test_a_corrupt_pdf_added_first_leaves_nothing(store, indexer, tmp_path):
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"not a pdf at all")
    [result] = indexer.add_all([str(broken)])
    assert result.status == "failed" and "not a readable PDF" in result.error
    assert store.stats()["documents"] == 0 and store.stats()["chunks"] == 0


def test_html_from_a_local_server_keeps_the_main_text_and_bad_urls_index_nothing(store, indexer, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "page.html").write_text(
        "<html><head><title>Kettle care</title></head><body><nav>Home | Shop | Login</nav><article>"
        "<h1>Kettle care</h1><p>Descale the kettle once a month with citric acid: boil a litre of water "
        "with two spoons of it, leave it for an hour and rinse.</p></article><footer>Copyright shop</footer></body></html>",
        encoding="utf-8",
    )
    with serve(site) as base:
        result = indexer.add(f"{base}/page.html")
        with pytest.raises(KnowledgeError, match="HTTP 404"):
            indexer.add(f"{base}/missing.html")
    assert result.status == "added"
    [hit] = _find(store, "how to descale a kettle")
    assert hit.chunk.source == f"{base}/page.html" and hit.chunk.heading == "Kettle care"
    assert "Login" not in hit.chunk.text and "Copyright" not in hit.chunk.text
    unreachable = f"http://127.0.0.1:{closed_port()}/notes.html"
    with pytest.raises(KnowledgeError) as caught:
        indexer.add(unreachable)
    assert str(caught.value).startswith(f"{unreachable}: unreachable") and "\n" not in str(caught.value)
    assert [d.source for d in store.documents()] == [f"{base}/page.html"]


def test_unsupported_and_unreadable_files_are_one_line_errors(indexer, tmp_path):
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(KnowledgeError, match="unsupported file type '.jpg'"):
        indexer.add(str(image))
    latin = tmp_path / "old.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(KnowledgeError, match="not UTF-8 text"):
        indexer.add(str(latin))


def test_the_store_is_owner_only(store, indexer, tmp_path):
    notes = tmp_path / "garden.md"
    notes.write_text(NOTES, encoding="utf-8")
    indexer.add(str(notes))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    wal = store.path.with_name(store.path.name + "-wal")
    assert not wal.exists() or stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_citation_numbers_are_never_spoken():
    from audio.textprep import speakable

    spoken = speakable("The prototype is due on 14 March [1][2]; the budget is 42,000 euros [2, 3].", "en", normalise=False)
    assert spoken.spoken == "The prototype is due on 14 March; the budget is 42,000 euros."
    assert speakable("Прототип готов к 14 марта [1].", "ru", normalise=False).spoken == "Прототип готов к 14 марта."
    assert speakable("See [the notes](http://x) page", "en", normalise=False).spoken == "See the notes page."


def test_a_missing_module_of_the_extra_names_the_knowledge_extra():
    from agent.errors import MissingExtra
    from agent.knowledge.errors import require

    with pytest.raises(MissingExtra) as caught:
        require("usem3_not_installed_here", "knowledge embeddings")
    assert str(caught.value) == (
        "knowledge embeddings needs the optional [knowledge] extra (module usem3_not_installed_here is not "
        "installed): pip install 'epistemic-engine[knowledge]'"
    )
    assert caught.value.exit_code == 3


def test_llama_cpp_still_loads_a_model_after_a_search_in_the_same_process(tmp_path):
    """Vector search must not bring in a C++ runtime that breaks llama.cpp (usearch's does)."""
    import subprocess
    import sys

    script = f"""
from pathlib import Path
from agent.knowledge.embed import default_embedder
from agent.knowledge.indexer import Indexer
from agent.knowledge.search import SearchOptions, search
from agent.knowledge.store import KnowledgeStore
notes = Path({str(tmp_path)!r}) / "n.md"
notes.write_text("# Bees\\n\\nBees need water.\\n", encoding="utf-8")
store = KnowledgeStore(Path({str(tmp_path)!r}) / "k.sqlite3")
Indexer(store, default_embedder()).add(str(notes))
assert search(store, default_embedder(), "do bees need water", SearchOptions()).hits
from agent.config_load import load_config
from agent.llm import load_backend
model = load_backend(load_config(None, env={{}}))
assert model.count_tokens("Привет") > 0
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
