"""The transcript: user and assistant turns, the reply streaming in batch by batch.

Reasoning (``<think>``, channel "reasoning") lives in a collapsed :class:`Collapsible` above
the answer, in its own muted style, so it is always visibly apart from what the model says.
Citation markers (``[1]``) are styled as they stream; when the reply ends they are resolved to the
turn's numbered sources, listed in a footnote line (:mod:`tui.widgets.citations`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Collapsible, Static

from tui.widgets.citations import CITATION, SourceRef, footnote, styled_answer

Styler = Callable[[str], Content | str]


class UserMessage(Static):
    """A turn the user typed or spoke."""

    DEFAULT_CSS = """
    UserMessage { margin: 1 0 0 8; padding: 0 1; background: $primary-muted; color: $text; border-left: outer $primary; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)
        self.text = text


class StreamingText(Vertical):
    """Text that grows at its end: finished lines are frozen in their own widgets, so each batch
    re-wraps only the line being written, not the whole reply."""

    DEFAULT_CSS = """
    StreamingText { height: auto; }
    StreamingText > Static { padding: 0 1; }
    """

    def __init__(self, text: str = "", placeholder: str = "", *, classes: str | None = None,
                 styler: Styler | None = None) -> None:
        super().__init__(classes=classes)
        self.placeholder = placeholder
        self._styler: Styler = styler or str
        self._text = text
        self._frozen_to = 0  # text[:_frozen_to] is shown in frozen widgets
        self._live = Static(markup=False, classes="live")
        self._ready = False

    @property
    def text(self) -> str:
        return self._text

    def compose(self) -> ComposeResult:
        yield self._live

    def on_mount(self) -> None:
        self._ready = True
        self.show(self._text, force=True)

    def restyle(self, styler: Styler) -> None:
        """Draw the whole text again with ``styler`` (once, when the reply has ended)."""
        self._styler = styler
        if self._ready:
            self.remove_children(".frozen")
            self._frozen_to = 0
            self._live.update("")
            self.show(self._text, force=True)

    def show(self, text: str, *, force: bool = False) -> None:
        """Show ``text`` (normally the previous text plus more)."""
        if text == self._text and not force:
            return
        if not text.startswith(self._text[: self._frozen_to]):
            self._live.update("")
            self.remove_children(".frozen")
            self._frozen_to = 0
        self._text = text
        if not self._ready:
            return  # on_mount shows it
        cut = text.rfind("\n") + 1
        if cut > self._frozen_to:
            chunk = text[self._frozen_to : cut - 1]
            self.mount(Static(self._styler(chunk), markup=False, classes="frozen"), before=self._live)
            self._frozen_to = cut
        self._live.update(self._styler(text[self._frozen_to :]) if text else self.placeholder)


class AssistantMessage(Vertical):
    """A reply: collapsed reasoning, the answer and a one-line footnote (turn id, stop reason)."""

    DEFAULT_CSS = """
    AssistantMessage { height: auto; margin: 1 4 0 0; border-left: outer $secondary; }
    AssistantMessage .reasoning-box { display: none; background: $surface; border: none; padding: 0; margin: 0; }
    AssistantMessage.-has-reasoning .reasoning-box { display: block; }
    AssistantMessage .reasoning { color: $text-muted; text-style: italic; }
    AssistantMessage .note { color: $text-disabled; padding: 0 1; height: auto; }
    AssistantMessage .sources { color: $text-muted; padding: 0 1; height: auto; display: none; }
    AssistantMessage.-has-sources .sources { display: block; }
    AssistantMessage.-interrupted .note { color: $warning; }
    """

    def __init__(self, answer: str = "", reasoning: str = "", note: str = "",
                 sources: Sequence[SourceRef] | None = None) -> None:
        super().__init__()
        self.sources = tuple(sources) if sources is not None else None  # None: not known yet (streaming)
        self.answer_parts: list[str] = [answer] if answer else []
        self.reasoning_parts: list[str] = [reasoning] if reasoning else []
        self._note = note
        self._interrupted = False
        self._composed = False
        self.turn_id: int | None = None

    @property
    def answer(self) -> str:
        return "".join(self.answer_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def compose(self) -> ComposeResult:
        with Collapsible(title="reasoning", collapsed=True, classes="reasoning-box"):
            yield StreamingText(self.reasoning, classes="reasoning")
        yield StreamingText(self.answer, "…", classes="answer", styler=lambda text: styled_answer(text, None))
        yield Static("", markup=False, classes="sources")
        yield Static(self._note, markup=False, classes="note")

    def on_mount(self) -> None:
        self._composed = True
        self.redraw()
        self.finish(self.turn_id, self._note, self._interrupted, self.sources)

    def append(self, channel: str, text: str) -> None:
        """Queue text on a channel; call :meth:`redraw` once per batch."""
        (self.reasoning_parts if channel == "reasoning" else self.answer_parts).append(text)

    def redraw(self) -> None:
        """Show the text received so far (one update per batch, not per token)."""
        if not self._composed:
            return  # on_mount draws whatever arrived before the children existed
        if self.reasoning_parts:
            reasoning = self.reasoning
            self.set_class(True, "-has-reasoning")
            self.query_one(".reasoning", StreamingText).show(reasoning)
            fold = self.query_one(Collapsible)
            title = f"reasoning ({len(reasoning)} chars)"
            if fold.title != title:
                fold.title = title
        self.query_one(".answer", StreamingText).show(self.answer)

    def finish(self, turn_id: int | None, note: str, interrupted: bool, sources: Sequence[SourceRef] | None = None) -> None:
        """The reply ended: show its footnote (``turn_id`` None: not in the dialogue log) and resolve its
        citations to ``sources``, the numbered sources the turn was given (None: not known)."""
        self.turn_id = turn_id
        self._note, self._interrupted = note, interrupted
        self.sources = tuple(sources) if sources is not None else self.sources
        if self._composed:
            self.redraw()
            self.set_class(interrupted, "-interrupted")
            self.query_one(".note", Static).update(note)
            if self.sources is not None:
                self._cite(self.sources)

    def _cite(self, sources: tuple[SourceRef, ...]) -> None:
        known = {s.number for s in sources}
        if CITATION.search(self.answer):  # else nothing to draw differently
            self.query_one(".answer", StreamingText).restyle(lambda text: styled_answer(text, known))
        line = footnote(self.answer, sources)
        self.set_class(bool(line), "-has-sources")
        self.query_one(".sources", Static).update(line)


class TranscriptView(VerticalScroll):
    """All turns of the open conversation; stays scrolled to the end while replies stream."""

    DEFAULT_CSS = """
    TranscriptView { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    TranscriptView > .placeholder { color: $text-muted; margin: 1 0; }
    """

    def on_mount(self) -> None:
        self.anchor()

    def clear(self) -> None:
        """Remove every turn."""
        self.remove_children()

    def add_user(self, text: str) -> UserMessage:
        message = UserMessage(text)
        self.mount(message)
        self.anchor()
        return message

    def add_assistant(self, answer: str = "", reasoning: str = "", note: str = "",
                      sources: Sequence[SourceRef] | None = None) -> AssistantMessage:
        message = AssistantMessage(answer, reasoning, note, sources)
        self.mount(message)
        self.anchor()
        return message

    def last_reply(self) -> AssistantMessage | None:
        replies = self.query(AssistantMessage)
        return replies.last() if replies else None
