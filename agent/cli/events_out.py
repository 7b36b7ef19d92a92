"""Print engine events on a terminal (streaming text) or as JSON lines (``--json``)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TextIO

import click

from agent.events import ContextTrimmed, EngineEvent, Notice, ReplyToken, TurnFinished, TurnStarted


def event_to_json(event: EngineEvent) -> dict:
    """A JSON-able dict for one event (``event`` names its kind)."""
    if isinstance(event, ReplyToken):
        s = event.step
        return {"event": "token", "channel": event.channel, "text": event.text, "index": s.index, "token_id": s.token_id, "piece": s.text, "logprob": s.logprob, "entropy": s.entropy,
                "varentropy": s.varentropy, "action": s.action}
    if isinstance(event, TurnFinished):
        r = event.result
        return {
            "event": "turn_finished", "turn_id": event.turn_id, "answer": event.answer, "reasoning": event.reasoning,
            "stop_reason": r.stop_reason, "interrupted": event.interrupted, "timings": asdict(r.timings),
            "prompt_tokens": r.prompt.token_count,
            "speculative": asdict(r.speculative) if r.speculative else None,
            "retrieval": event.retrieval.provenance() if event.retrieval is not None else None,
        }
    if isinstance(event, TurnStarted):
        return {"event": "turn_started", **asdict(event)}
    if isinstance(event, ContextTrimmed):
        return {"event": "context_trimmed", **asdict(event)}
    if isinstance(event, Notice):
        return {"event": "notice", "level": event.level, "message": event.message}
    return {"event": type(event).__name__}


class JsonPrinter:
    """One JSON object per line on stdout."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: EngineEvent) -> None:
        self.out.write(json.dumps(event_to_json(event), ensure_ascii=False) + "\n")
        self.out.flush()


class TextPrinter:
    """Streams the answer to stdout; reasoning dimmed (or hidden); stats and notices to stderr."""

    def __init__(self, show_reasoning: bool, color: bool) -> None:
        self.show_reasoning = show_reasoning
        self.color = color
        self._channel: str | None = None

    def __call__(self, event: EngineEvent) -> None:
        if isinstance(event, ReplyToken) and event.text:
            self._token(event)
        elif isinstance(event, TurnFinished):
            self._finished(event)
        elif isinstance(event, ContextTrimmed):
            click.echo(f"[context: left out {len(event.dropped_turn_ids)} oldest turn(s) to fit {event.budget} tokens]", err=True)
        elif isinstance(event, Notice):
            click.secho(f"[{event.level}] {event.message}", err=True, fg="red" if event.level == "error" else "yellow", color=self.color)

    def _token(self, event: ReplyToken) -> None:
        if event.channel == "reasoning":
            if not self.show_reasoning:
                return
            if self._channel != "reasoning":
                click.secho("[thinking] ", nl=False, dim=True, color=self.color)
            click.secho(event.text, nl=False, dim=True, color=self.color)
        else:
            if self._channel == "reasoning" and self.show_reasoning:
                click.echo("\n")
            click.echo(event.text, nl=False)
        self._channel = event.channel
        sys.stdout.flush()

    def _finished(self, event: TurnFinished) -> None:
        t = event.result.timings
        click.echo("")
        rate = f"{t.tokens_per_second:.1f} tok/s" if t.tokens_per_second else "- tok/s"
        ttft = f"ttft {t.time_to_first_token:.2f} s" if t.time_to_first_token is not None else "ttft -"
        mark = " (interrupted)" if event.interrupted else ""
        click.secho(f"[{t.completion_tokens} tok, {rate}, {ttft}, prompt {t.prompt_tokens} tok, stop {event.result.stop_reason}]{mark}", err=True, dim=True, color=self.color)
        if event.retrieval is not None and event.retrieval.sources:
            listed = " · ".join(f"[{s.number}] {s.label}" for s in event.retrieval.sources)
            click.secho(f"[sources: {listed}]", err=True, dim=True, color=self.color)
        self._channel = None
