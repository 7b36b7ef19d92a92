"""A strip for the voice loop: mic level, VAD state, partial transcript, speaking indicator.

Hidden until the voice engine feeds it. All setters are cheap and must be called on the UI
thread (from a worker: ``app.call_from_thread`` is NOT for hot paths; post a message instead).
"""

from __future__ import annotations

from typing import Literal

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

VadState = Literal["idle", "listening", "speech", "processing"]
_BARS = " ▁▂▃▄▅▆▇█"


class VoiceStrip(Widget):
    """One line: ``mic ▅ │ speech │ partial transcript… │ speaking``."""

    DEFAULT_CSS = """
    VoiceStrip { height: 1; padding: 0 1; background: $boost; display: none; }
    VoiceStrip.-active { display: block; }
    """

    level: reactive[float] = reactive(0.0)
    vad_state: reactive[str] = reactive("idle")
    partial: reactive[str] = reactive("")
    speaking: reactive[bool] = reactive(False)

    def set_level(self, level: float) -> None:
        """Microphone level in [0, 1] (RMS or peak, already scaled)."""
        self.level = min(1.0, max(0.0, float(level)))

    def set_vad_state(self, state: VadState) -> None:
        """What the voice activity detector is doing."""
        self.vad_state = state

    def set_partial(self, text: str) -> None:
        """The partial transcript of the utterance in progress ("" clears it)."""
        self.partial = text

    def set_speaking(self, speaking: bool) -> None:
        """Whether the agent's voice is playing."""
        self.speaking = speaking

    def activate(self, active: bool = True) -> None:
        """Show (or hide) the strip."""
        self.set_class(active, "-active")

    def render(self) -> Content:
        bar = _BARS[round(self.level * (len(_BARS) - 1))]
        style = "bold $success" if self.vad_state == "speech" else "dim"
        parts: list[tuple[str, str] | str] = [("mic ", "dim"), (bar, "$accent"), " │ ", (self.vad_state, style)]
        if self.partial:
            parts += [" │ ", (self.partial, "italic")]
        if self.speaking:
            parts += [" │ ", ("speaking", "bold $warning")]
        return Content.assemble(*parts)
