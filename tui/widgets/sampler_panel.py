"""The sampler panel: every sampler value, editable live; a change applies from the next turn.

The panel only shows values and reports edits (:class:`SamplerPanel.ValueSubmitted`); the app
validates them through the engine and refreshes the panel, so an invalid value never sticks.
"""

from __future__ import annotations

import tomllib
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from agent.llm.sampler import ADAPTIVE_FIELDS, SamplerSettings

# The values most people steer, first, then the entropy-adaptive mode and its thresholds (tuned
# live while watching the entropy view); the rest follow in declaration order.
FIRST = ("temperature", "top_k", "top_p", "min_p", "max_tokens", "seed", "repeat_penalty")


def field_order() -> list[str]:
    rest = [name for name in SamplerSettings.model_fields if name not in FIRST and name not in ADAPTIVE_FIELDS]
    return [*FIRST, *ADAPTIVE_FIELDS, *rest]


def format_value(value: Any) -> str:
    """A sampler value as the user types it (TOML-like; None shows as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(format_value(v) if not isinstance(v, str) else repr(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {v}" for k, v in value.items()) + "}"
    return str(value)


def parse_value(raw: str) -> Any:
    """What the user typed as a Python value: TOML scalars/arrays/tables, '' or 'none' -> None."""
    text = raw.strip()
    if text.lower() in ("", "none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


class SamplerRow(Horizontal):
    """One sampler field: its name and an input with its value."""

    DEFAULT_CSS = """
    SamplerRow { height: 1; }
    SamplerRow > Label { width: 18; color: $text-muted; }
    SamplerRow > Input { width: 1fr; }
    SamplerRow.-changed > Label { color: $accent; text-style: bold; }
    """

    def __init__(self, name: str, value: Any, description: str) -> None:
        super().__init__(id=f"sampler-{name}")
        self.field_name = name
        self.value = value
        self.tooltip = description

    def compose(self) -> ComposeResult:
        yield Label(self.field_name[:17])
        yield Input(format_value(self.value), compact=True, select_on_focus=True)

    def show(self, value: Any, changed: bool) -> None:
        self.value = value
        self.query_one(Input).value = format_value(value)
        self.set_class(changed, "-changed")


class SamplerPanel(VerticalScroll):
    """Side panel listing the sampler the next reply will use."""

    DEFAULT_CSS = """
    SamplerPanel { dock: right; width: 40; border-left: tall $primary; padding: 0 1; display: none; }
    SamplerPanel.-visible { display: block; }
    SamplerPanel > .title { text-style: bold; margin-bottom: 1; }
    SamplerPanel > .hint { color: $text-muted; margin-bottom: 1; }
    SamplerPanel > Button { width: 100%; margin-top: 1; }
    """

    class ValueSubmitted(Message):
        """The user entered a value for the sampler field ``field`` (not yet validated)."""

        def __init__(self, field: str, value: Any) -> None:
            super().__init__()
            self.field = field
            self.value = value

    class ResetPressed(Message):
        """The user asked to drop live changes (back to the persona's values)."""

    def compose(self) -> ComposeResult:
        yield Static("Sampler (next turn)", classes="title")
        yield Static("Enter applies a value; highlighted = changed live.", classes="hint")
        defaults = SamplerSettings()
        for name in field_order():
            info = SamplerSettings.model_fields[name]
            yield SamplerRow(name, getattr(defaults, name), info.description or "")
        yield Button("Reset to persona", id="sampler-reset", variant="warning", compact=True)

    def show(self, settings: SamplerSettings, changed: set[str]) -> None:
        """Show ``settings``; names in ``changed`` are highlighted."""
        for row in self.query(SamplerRow):
            row.show(getattr(settings, row.field_name), row.field_name in changed)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        row = event.input.parent
        if isinstance(row, SamplerRow):
            self.post_message(self.ValueSubmitted(row.field_name, parse_value(event.value)))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "sampler-reset":
            event.stop()
            self.post_message(self.ResetPressed())
