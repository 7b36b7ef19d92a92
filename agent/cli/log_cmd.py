"""``epistemic log list|show``: browse the dialogue log from a terminal or a script (the curation
commands, ``log rate|edit|...``, live in :mod:`agent.cli.curate_cmd`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from agent.cli.curate_cmd import attach
from agent.cli.plot_cmd import plot
from agent.harvest.curation import CurationState, state_of
from agent.llm.base import entropy_is_lower_bound
from agent.log import DialogueLog, TelemetryError, moe_view
from agent.log.reads import is_active, latest_alternatives, reply_group
from agent.log.summary import (
    model_line,
    sampler_line,
    telemetry_line,
    timing_line,
    token_table,
    when,
)
from agent.private import is_writable
from agent.records import StoredTurn


@click.group()
def log() -> None:
    """Browse and curate the dialogue log (every turn, with its provenance and token telemetry).

    Curation (rate, edit, prefer, exclude, tag, transcript) is kept beside the turns, which never
    change; every action prints an id that `epistemic log undo` takes back.
    """


@contextmanager
def _open(ctx: click.Context) -> Iterator[DialogueLog | None]:
    """The configured log (None when no file exists yet); read-only when the file is."""
    path = ctx.obj["config"].log_path()
    if not path.exists():
        yield None
        return
    readonly = not (is_writable(path) and is_writable(path.parent))
    with DialogueLog(path, readonly=readonly) as opened:
        yield opened


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


@log.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="How many conversations.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_cmd(ctx: click.Context, limit: int, as_json: bool) -> None:
    """Conversations, newest first: id, started, persona, turns, title."""
    with _open(ctx) as opened:
        summaries = opened.list_conversations(limit=limit) if opened else []
    if as_json:
        click.echo(_dump([dataclasses.asdict(s) for s in summaries]))
        return
    if not summaries:
        click.echo(f"No conversations yet (log: {ctx.obj['config'].log_path()})")
        return
    width = max(12, *(len(s.persona) for s in summaries))
    click.echo(f"{'ID':>5}  {'STARTED':<16}  {'PERSONA':<{width}}  {'TURNS':>5}  TITLE")
    for s in summaries:
        click.echo(f"{s.id:>5}  {when(s.started_at):<16}  {s.persona:<{width}}  {s.turns:>5}  {s.title}")


@log.command("show")
@click.argument("conversation_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every stored field).")
@click.option("--tokens", is_flag=True, help="Per-token table: piece, logprob, entropy, top alternatives.")
@click.option("--moe", is_flag=True, help="Mixture-of-experts routing ([llm] moe_routing): expert usage per layer, then each token's experts, gate weights and router entropy.")
@click.pass_context
def show(ctx: click.Context, conversation_id: int, as_json: bool, tokens: bool, moe: bool) -> None:
    """One conversation's turns with persona, sampler, stop reason and alternatives."""
    with _open(ctx) as opened:
        if opened is None:
            raise click.ClickException(f"no dialogue log yet at {ctx.obj['config'].log_path()}")
        summary = opened.get_conversation(conversation_id)
        meta = opened.conversation_meta(conversation_id)
        turns = opened.conversation_turns(conversation_id)
        telemetry = {t.id: _telemetry(opened, t) for t in turns if t.role == "assistant"}
        routing = {t.id: moe_view.read_or_reason(opened, t) for t in turns if moe and t.role == "assistant"}
        state = state_of(opened)
    if as_json:
        payload = dataclasses.asdict(summary) | {"meta": meta}
        payload["turns"] = [_turn_json(t, turns, telemetry.get(t.id), tokens) | {"curation": _marks(state, t)}
                            | moe_view.turn_json(routing, t) for t in turns]
        payload["tags"] = sorted(state.tags.get(conversation_id, ()))
        payload["excluded"] = conversation_id in state.excluded_conversations
        click.echo(_dump(payload))
        return
    title = f' "{summary.title}"' if summary.title else ""
    click.echo(f"Conversation {summary.id}{title} · persona {summary.persona} · "
               f"started {when(summary.started_at, seconds=True)} · {summary.turns} turns"
               + _conversation_marks(state, conversation_id))
    for turn in turns:
        click.echo("")
        for line in _turn_lines(turn, turns, telemetry.get(turn.id), tokens):
            click.echo(line)
        for line in moe_view.turn_lines(routing, turn, telemetry.get(turn.id)):
            click.echo(line)
        for line in _curation_lines(state, turn):
            click.echo(line)


def _conversation_marks(state: CurationState, conversation_id: int) -> str:
    tags = sorted(state.tags.get(conversation_id, ()))
    marks = (" · tags: " + ", ".join(tags)) if tags else ""
    return marks + (" · [EXCLUDED]" if conversation_id in state.excluded_conversations else "")


def _marks(state: CurationState, turn: StoredTurn) -> dict[str, Any]:
    """A turn's effective curation: rating, note, correction, preferred, excluded, transcript."""
    marks: dict[str, Any] = {}
    if turn.id in state.ratings:
        marks["rating"], marks["note"] = state.ratings[turn.id]
    if turn.id in state.edits:
        marks["edit"] = state.edits[turn.id]
    if turn.id in state.transcripts:
        marks["transcript"] = state.transcripts[turn.id]
    if turn.id in state.preferred.values():
        marks["preferred"] = True
    if turn.id in state.excluded_turns:
        marks["excluded"] = True
    return marks


def _curation_lines(state: CurationState, turn: StoredTurn) -> list[str]:
    marks = _marks(state, turn)
    flags = [f"rated {marks['rating']}" + (f" ({marks['note']})" if marks.get("note") else "")] if "rating" in marks else []
    flags += [name for name in ("preferred", "excluded") if marks.get(name)]
    lines = [f"    [curation: {', '.join(flags)}]"] if flags else []
    for key, label in (("edit", "edited to"), ("transcript", "really said")):
        if key in marks:
            lines += [f"    [{label}:]", *_indent(marks[key], 6)]
    return lines


def _telemetry(opened: DialogueLog, turn: StoredTurn) -> list | str:
    """The decoded steps, or the reason they cannot be read."""
    try:
        return opened.token_steps(turn.id)
    except TelemetryError as exc:
        return str(exc)


def _alternative_label(turn: StoredTurn, turns: list[StoredTurn]) -> str:
    group = [t for t in turns if t.role == "assistant" and reply_group(t) == reply_group(turn)]
    if len(group) == 1:
        return ""
    position = [t.id for t in group].index(turn.id) + 1
    state = "active" if is_active(turn, turns) else f"superseded by #{latest_alternatives(turns)[reply_group(turn)].id}"
    return f"  [alternative {position} of {len(group)} for #{reply_group(turn)}, {state}]"


def _turn_lines(turn: StoredTurn, turns: list[StoredTurn], steps: list | str | None, tokens: bool) -> list[str]:
    head = f"#{turn.id} {turn.role}  {when(turn.created_at, seconds=True)}"
    if turn.role == "user":
        audio = f" · audio {turn.data['audio_path']}" if turn.data.get("audio_path") else ""
        return [f"{head}  [{turn.data.get('source') or '?'}{audio}]", *_indent(turn.text)]
    lines = [f"{head}  persona {turn.persona}{_alternative_label(turn, turns)}",
             f"    sampler: {sampler_line(turn.sampler)}",
             f"    model: {model_line(turn.data)}",
             f"    {timing_line(turn.data)}"]
    if isinstance(steps, str):
        lines.append(f"    [telemetry unreadable: {steps}]")
    elif steps is not None:
        lines.append(f"    {telemetry_line(steps)}")
    if turn.interrupted:
        heard = turn.data.get("heard_text")
        lines.append("    [INTERRUPTED" + (f"; heard: {heard!r}]" if heard is not None else "]"))
    if turn.reasoning:
        lines += ["    reasoning:", *_indent(turn.reasoning, 6)]
    lines += _indent(turn.text)
    if tokens and isinstance(steps, list):
        lower = entropy_is_lower_bound(turn.data.get("extra") or {})
        lines += _indent("\n".join(token_table(steps, lower_bound=lower)), 6)
    return lines


def _indent(text: str, spaces: int = 4) -> list[str]:
    return [" " * spaces + line for line in (text.splitlines() or [""])]


def _turn_json(turn: StoredTurn, turns: list[StoredTurn], steps: list | str | None, tokens: bool) -> dict[str, Any]:
    out = dataclasses.asdict(turn) | {"active": is_active(turn, turns)}
    if isinstance(steps, str):
        out["telemetry_error"] = steps
    elif tokens and steps is not None:
        out["tokens"] = [dataclasses.asdict(s) for s in steps]
    return out


attach(log)
log.add_command(plot)
