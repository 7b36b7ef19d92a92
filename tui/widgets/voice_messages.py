"""A user turn that was spoken, not typed: the same bubble, marked as heard by the microphone."""

from __future__ import annotations

from textual.content import Content

from tui.widgets.transcript import UserMessage


class SpokenMessage(UserMessage):
    """A spoken user turn: its final transcript, prefixed with a "spoken" mark."""

    DEFAULT_CSS = """
    SpokenMessage { border-left: outer $success; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.add_class("-spoken")
        self.update(Content.assemble(("spoken · ", "dim italic"), text))
