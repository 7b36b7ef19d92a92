"""The sources panel (Ctrl+K): what the last turn retrieved, with its scores.

Like the sampler panel it only draws what the app hands it (:meth:`SourcesPanel.show`) when a turn
ends or the persona changes; it reads no store and runs no query.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from agent.knowledge.protocols import Retrieval, Source

SNIPPET_CHARS = 180


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The text on one line, cut at a word to at most ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + " …"


def source_lines(source: Source) -> str:
    """One source as the panel lists it: number and scores, file § heading, full path, snippet."""
    cut = " · cut to fit" if source.truncated else ""
    return "\n".join([
        f"[{source.number}] score {source.score:.4f} · similarity {source.similarity:.2f}{cut}",
        source.label,
        source.source,
        snippet(source.text),
    ])


def panel_state(retrieval: Retrieval | None, retrieve: str) -> str:
    """The line above the list: retrieval off, nothing yet, nothing found, or what was searched."""
    if retrieval is None:
        return "Retrieval is off for this persona (retrieve = \"none\")." if retrieve == "none" else "No turn has retrieved sources yet."
    where = {"knowledge": "your documents", "memory": "past conversations", "both": "documents and past conversations"}
    searched = f"Searched {where.get(retrieval.scope, retrieval.scope)} in {retrieval.seconds * 1000:.0f} ms."
    if not retrieval.sources:
        return f"No sources retrieved: nothing passed the relevance threshold. {searched}"
    return f"{len(retrieval.sources)} sources, {retrieval.tokens} of {retrieval.budget_tokens} prompt tokens. {searched}"


class SourcesPanel(VerticalScroll):
    """Side panel listing the numbered sources the last reply was given. Used on the UI thread only."""

    DEFAULT_CSS = """
    SourcesPanel { dock: right; width: 48; border-left: tall $accent; padding: 0 1; display: none; }
    SourcesPanel.-visible { display: block; }
    SourcesPanel > .title { text-style: bold; }
    SourcesPanel > .state { color: $text-muted; margin-bottom: 1; }
    SourcesPanel > .source { margin-bottom: 1; }
    SourcesPanel > .notes { color: $warning; }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.retrieval: Retrieval | None = None
        self.retrieve = "none"

    def compose(self) -> ComposeResult:
        yield Static("Sources (last turn)", classes="title")
        yield Static(panel_state(None, self.retrieve), markup=False, classes="state")

    def show(self, retrieval: Retrieval | None, retrieve: str) -> None:
        """Show the last turn's ``retrieval`` (None: it retrieved nothing); ``retrieve`` is the persona's setting."""
        self.retrieval, self.retrieve = retrieval, retrieve
        self.query_one(".state", Static).update(panel_state(retrieval, retrieve))
        self.remove_children(".source, .notes")
        sources = retrieval.sources if retrieval is not None else ()
        widgets = [Static(source_lines(s), markup=False, classes="source") for s in sources]
        if retrieval is not None and retrieval.notes:
            widgets.append(Static("\n".join(retrieval.notes), markup=False, classes="notes"))
        if widgets:
            self.mount_all(widgets)
