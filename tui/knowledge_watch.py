"""The folders of ``[knowledge] watch`` kept indexed while the TUI runs.

:class:`agent.knowledge.watch.BackgroundWatch` follows them in its own thread; here each of its
lines becomes a :class:`KnowledgeWatch.Changed` message, which the app shows as a notification. A
turn's retriever sees the changes at its next search (the store's generation number says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from textual.message import Message

from agent.knowledge.watch import BackgroundWatch, Level

if TYPE_CHECKING:
    from textual.message_pump import MessagePump

    from agent.config_load import LoadedConfig

Severity = Literal["information", "warning", "error"]
SEVERITY: dict[Level, Severity] = {"info": "information", "warning": "warning", "error": "error"}


class KnowledgeWatch(BackgroundWatch):
    """A :class:`BackgroundWatch` that reports to a Textual app: started and stopped on the UI thread;
    the watching thread only posts messages (``post_message`` is thread-safe)."""

    class Changed(Message):
        """One change in a watched folder (or why watching stopped), as one line."""

        def __init__(self, line: str, severity: Severity = "information") -> None:
            super().__init__()
            self.line = line
            self.severity = severity

    def __init__(self, target: MessagePump, config: LoadedConfig) -> None:
        super().__init__(config, self._post)
        self.target = target

    def _post(self, level: Level, line: str) -> None:
        self.target.post_message(self.Changed(f"knowledge: {line}", SEVERITY[level]))
