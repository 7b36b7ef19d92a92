"""``epistemic knowledge add|list|remove|search|recall|reindex``: your documents and past dialogues.

Indexing shows progress on stderr; a document that cannot be read (unreadable file, damaged PDF,
unreachable URL) is one line and exit 6, and nothing of it is indexed. See docs/knowledge.md.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click

from agent.knowledge.errors import KnowledgeError
from agent.knowledge.fetch import is_url
from agent.knowledge.indexer import IndexResult
from agent.knowledge.readers import KINDS
from agent.knowledge.search import Hit, SearchResult
from agent.knowledge.store import KnowledgeStore


class _Progress:
    """Progress lines on stderr: redrawn in place on a terminal, whole lines otherwise."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{message[:110]}")
        elif not message.startswith("  "):
            sys.stderr.write(message + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


@contextmanager
def _store(ctx: click.Context) -> Iterator[KnowledgeStore]:
    from agent.knowledge.service import open_store

    with open_store(ctx.obj["config"]) as store:
        yield store


@click.group()
def knowledge() -> None:
    """Your documents and past dialogues: indexed, searched, and cited by personas that retrieve."""


def _expand(refs: Sequence[str]) -> list[str]:
    """Files and URLs as given; a folder becomes the supported files inside it (recursively)."""
    found: list[str] = []
    for ref in refs:
        path = Path(ref).expanduser()
        if not is_url(ref) and path.is_dir():
            found += sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in KINDS)
        else:
            found.append(ref)
    return found


@knowledge.command("add")
@click.argument("refs", nargs=-1, required=True, metavar="PATH|URL...")
@click.option("--force", is_flag=True, help="Index again even if unchanged.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.pass_context
def add(ctx: click.Context, refs: tuple[str, ...], force: bool, quiet: bool) -> None:
    """Index Markdown, text, HTML and PDF files, folders of them, or web pages (unchanged ones are skipped)."""
    from agent.knowledge.service import make_indexer

    progress = _Progress(quiet)
    with _store(ctx) as store:
        results = make_indexer(ctx.obj["config"], store, progress=progress).add_all(_expand(refs), force=force)
    progress.done()
    _report(results)


def _report(results: Sequence[IndexResult]) -> None:
    failed = [r for r in results if r.status == "failed"]
    for r in results:
        if r.status != "failed":
            fresh = f", {r.embedded} embedded" if r.status != "unchanged" else ""
            click.echo(f"{r.status:<9} {r.source}: {r.chunks} chunks{fresh} ({r.seconds:.1f} s)")
    if len(results) == 1 and failed:
        raise KnowledgeError(failed[0].error)
    for r in failed:
        click.echo(f"epistemic: {r.error}", err=True)
    if failed:
        raise KnowledgeError(f"{len(failed)} of {len(results)} not indexed (nothing of them was kept)")


@knowledge.command("list")
@click.option("--memory", is_flag=True, help="List the indexed conversations instead of documents.")
@click.pass_context
def list_documents(ctx: click.Context, memory: bool) -> None:
    """List indexed documents: id, kind, chunks, last indexed, title, source."""
    from agent.log.summary import when

    with _store(ctx) as store:
        documents = store.documents(memory=memory)
        stats = store.stats()
    for d in documents:
        click.echo(f"{d.id:>5}  {d.kind:<8} {d.chunk_count:>4} chunks  {when(d.updated_at)}  {d.title[:40]:<40}  {d.source}")
    click.echo(f"{stats['documents']} documents, {stats['chunks']} chunks, {stats['bytes'] / 1e6:.1f} MB in {store.path}", err=True)


@knowledge.command("remove")
@click.argument("refs", nargs=-1, required=True, metavar="ID|PATH...")
@click.pass_context
def remove(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Forget documents (by id from `list`, path or URL): their chunks leave the index."""
    from agent.knowledge.readers import source_key

    with _store(ctx) as store:
        for ref in refs:
            document = store.document_by_id(int(ref)) if ref.isdigit() else store.document(source_key(ref))
            if document is None:
                raise KnowledgeError(f"{ref}: not in the knowledge store (see `epistemic knowledge list`)")
            store.remove_document(document.id)
            click.echo(f"removed {document.id} {document.source} ({document.chunk_count} chunks)")


@knowledge.command("reindex")
@click.option("--force", is_flag=True, help="Re-read and re-embed everything, changed or not.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@click.pass_context
def reindex(ctx: click.Context, force: bool, quiet: bool) -> None:
    """Read every indexed document again; changed ones are replaced, missing ones reported."""
    from agent.knowledge.service import make_indexer

    progress = _Progress(quiet)
    with _store(ctx) as store:
        results = make_indexer(ctx.obj["config"], store, progress=progress).reindex(force=force)
    progress.done()
    _report(results)


def _show(result: SearchResult, full: bool) -> None:
    if not result.hits:
        click.echo("nothing relevant found", err=True)
    for number, hit in enumerate(result.hits, 1):
        _show_hit(number, hit, full)
    click.echo(f"{len(result.hits)} sources in {result.seconds * 1000:.0f} ms", err=True)


def _show_hit(number: int, hit: Hit, full: bool) -> None:
    chunk = hit.chunk
    where = f"{chunk.source} § {chunk.heading}" if chunk.heading else chunk.source
    ranks = f"lexical #{hit.lexical_rank or '-'} vector #{hit.vector_rank or '-'}"
    click.echo(f"[{number}] score {hit.score:.4f} similarity {hit.similarity:.2f} ({ranks}) chunk {chunk.id}  {where}")
    text = " ".join(chunk.text.split())
    click.echo(f"    {text if full else text[:200]}")


def _search(ctx: click.Context, query: str, scope: str, limit: int | None) -> SearchResult:
    from agent.knowledge.embed import default_embedder
    from agent.knowledge.search import search
    from agent.knowledge.service import search_options

    with _store(ctx) as store:
        if scope != "knowledge":
            _sync_memory(ctx, store)
        return search(store, default_embedder(), query, search_options(ctx.obj["config"], scope, limit))


def _sync_memory(ctx: click.Context, store: KnowledgeStore) -> None:
    from agent.knowledge.memory import sync_memory
    from agent.knowledge.service import make_indexer

    config = ctx.obj["config"]
    synced = sync_memory(make_indexer(config, store), config.log_path())
    if synced.indexed or synced.removed:
        click.echo(f"memory: {synced.indexed} conversations indexed, {synced.removed} forgotten", err=True)


@knowledge.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option("-n", "--limit", type=click.IntRange(1, 100), help="Most sources (default [knowledge] max_sources).")
@click.option("--scope", type=click.Choice(["knowledge", "memory", "both"]), default="knowledge", show_default=True)
@click.option("--full", is_flag=True, help="Whole chunk texts.")
@click.pass_context
def search_cmd(ctx: click.Context, query: tuple[str, ...], limit: int | None, scope: str, full: bool) -> None:
    """Search your documents as a turn would: numbered sources, best first, irrelevant ones left out."""
    _show(_search(ctx, " ".join(query), scope, limit), full)


@knowledge.command("recall")
@click.argument("query", nargs=-1, required=True)
@click.option("-n", "--limit", type=click.IntRange(1, 100), help="Most sources (default [knowledge] max_sources).")
@click.option("--full", is_flag=True, help="Whole exchanges.")
@click.pass_context
def recall(ctx: click.Context, query: tuple[str, ...], limit: int | None, full: bool) -> None:
    """Find what was said in earlier conversations (in any language); new ones are indexed first."""
    _show(_search(ctx, " ".join(query), "memory", limit), full)


@knowledge.command("watch")
@click.argument("folders", nargs=-1, type=click.Path(file_okay=False), metavar="[DIR...]")
@click.pass_context
def watch(ctx: click.Context, folders: tuple[str, ...]) -> None:
    """Keep folders indexed until Ctrl-C: new and changed files are (re)indexed, deleted ones forgotten.

    Without DIR, watches the folders listed in [knowledge] watch. Files added or changed while
    nothing watched are caught up first; then one line per change.
    """
    from agent.knowledge.service import make_indexer
    from agent.knowledge.watch import FolderWatcher, watched_folders

    config = ctx.obj["config"]
    settings = config.settings.knowledge
    paths = watched_folders(folders or [config.resolve(f) for f in settings.watch])
    with _store(ctx) as store:
        def ready() -> None:
            click.echo(f"watching {', '.join(map(str, paths))} (Ctrl-C stops)", err=True)

        watcher = FolderWatcher(make_indexer(config, store), paths, click.echo,
                                debounce_ms=settings.watch_debounce_ms, on_ready=ready)
        try:
            watcher.run()
        except KeyboardInterrupt:
            click.echo("stopped watching", err=True)
