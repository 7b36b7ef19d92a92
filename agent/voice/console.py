"""Show the voice loop in a plain terminal: partial and final transcripts, the streamed reply,
notices and each turn's latency waterfall. Engine events and every :class:`agent.events.Notice`
go to the chat's :class:`TextPrinter`.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import click

from agent.cli.events_out import TextPrinter
from agent.events import TurnStarted
from agent.voice.events import (
    BargedIn,
    DeviceLost,
    PartialTranscriptUpdated,
    UserUtterance,
    WaterfallReady,
)


class VoicePrinter:
    """A thread-safe ``on_event`` for :class:`agent.voice.loop.VoiceLoop` that prints."""

    def __init__(self, color: bool = False, show_partials: bool = True) -> None:
        self.color = color
        self.show_partials = show_partials
        self.engine_printer = TextPrinter(show_reasoning=False, color=color)
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self._print(event)

    def _print(self, event: Any) -> None:
        if isinstance(event, PartialTranscriptUpdated):
            if self.show_partials:
                click.secho(f"  ... {event.text}", err=True, dim=True, color=self.color)
        elif isinstance(event, UserUtterance):
            confidence = event.stt.get("confidence")
            sure = f"  [{confidence:.2f}]" if isinstance(confidence, float) else ""
            click.echo(f"you> {event.text}{sure}")
        elif isinstance(event, BargedIn):
            click.secho(f"[interrupted; heard: {event.heard_text!r}]", err=True, fg="yellow", color=self.color)
        elif isinstance(event, WaterfallReady):
            click.secho(f"[latency: {event.waterfall.describe()}]", err=True, dim=True, color=self.color)
        elif isinstance(event, DeviceLost):
            pass  # the loop's Notice says it; notices print as the chat prints them
        elif isinstance(event, TurnStarted):
            click.echo("agent> ", nl=False)
        else:
            self.engine_printer(event)
            sys.stdout.flush()
