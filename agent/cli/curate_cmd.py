"""``epistemic log rate|edit|prefer|exclude|tag|transcript|undo|curation``: curate the dialogue log.

Every command adds one timestamped action beside the turns (which never change) and prints its
id, so ``epistemic log undo ID`` can take it back. Problems (no such turn, a user turn rated, a
reply with no alternatives preferred) are one line and exit 4.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager

import click

from agent.cli.usage import OneLineUsage, OneOf
from agent.errors import LogError
from agent.harvest import curation
from agent.log import DialogueLog
from agent.log.summary import when


@contextmanager
def _writable(ctx: click.Context) -> Iterator[DialogueLog]:
    """The configured log, opened for writing; LogError when there is none yet."""
    path = ctx.obj["config"].log_path()
    if not path.exists():
        raise LogError(f"{path}: no dialogue log yet (talk first, then curate)")
    with DialogueLog(path) as opened:
        yield opened


def _done(action_id: int, what: str) -> None:
    click.echo(f"action {action_id}: {what} (undo: epistemic log undo {action_id})")


@click.command("rate", cls=OneLineUsage)
@click.argument("turn_id", type=int)
@click.argument("rating", type=OneOf(curation.RATINGS))
@click.option("--note", help="Why (kept with the rating).")
@click.pass_context
def rate(ctx: click.Context, turn_id: int, rating: str, note: str | None) -> None:
    """Rate assistant reply TURN_ID good or bad (KTO rows; DPO pairs between alternatives)."""
    with _writable(ctx) as log:
        _done(curation.rate(log, turn_id, rating, note), f"turn {turn_id} rated {rating}")


@click.command("edit", cls=OneLineUsage)
@click.argument("turn_id", type=int)
@click.option("--text", help="The corrected reply (without it, $EDITOR opens with the current text).")
@click.pass_context
def edit(ctx: click.Context, turn_id: int, text: str | None) -> None:
    """Correct assistant reply TURN_ID. The original stays; the correction replaces it in SFT
    exports and makes a DPO pair (chosen = correction, rejected = original)."""
    with _writable(ctx) as log:
        current = _current_text(log, turn_id)
        if text is None:
            text = click.edit(current, extension=".txt", require_save=True)
            if text is None or text.strip() == current.strip():
                raise click.ClickException("the text was not changed; nothing saved")
        _done(curation.edit(log, turn_id, text), f"turn {turn_id} corrected")


def _current_text(log: DialogueLog, turn_id: int) -> str:
    """The latest correction of a reply, else its original text."""
    turn = log.get_turn(turn_id)
    if turn.role != "assistant":
        raise LogError(f"turn {turn_id} is a user turn: only assistant replies are edited")
    return curation.state_of(log).edits.get(turn_id, turn.text)


@click.command("prefer", cls=OneLineUsage)
@click.argument("turn_id", type=int)
@click.pass_context
def prefer(ctx: click.Context, turn_id: int) -> None:
    """Mark reply TURN_ID as preferred over the other regenerated alternatives of its group."""
    with _writable(ctx) as log:
        _done(curation.prefer(log, turn_id), f"turn {turn_id} preferred")


@click.command("exclude", cls=OneLineUsage)
@click.argument("turn_id", type=int, required=False)
@click.option("--conversation", "conversation_id", type=int, help="Exclude this whole conversation instead.")
@click.pass_context
def exclude(ctx: click.Context, turn_id: int | None, conversation_id: int | None) -> None:
    """Leave turn TURN_ID (or --conversation ID) out of every export; undo includes it again.
    Excluding a user turn also leaves out the replies to it."""
    if (turn_id is None) == (conversation_id is None):
        raise click.UsageError("give either a TURN_ID or --conversation ID")
    with _writable(ctx) as log:
        if conversation_id is not None:
            _done(curation.exclude(log, "conversation", conversation_id), f"conversation {conversation_id} excluded")
        else:
            assert turn_id is not None
            _done(curation.exclude(log, "turn", turn_id), f"turn {turn_id} excluded")


@click.command("tag", cls=OneLineUsage)
@click.argument("conversation_id", type=int)
@click.argument("tag_name", metavar="TAG")
@click.option("--remove", is_flag=True, help="Remove the tag instead of adding it.")
@click.pass_context
def tag(ctx: click.Context, conversation_id: int, tag_name: str, remove: bool) -> None:
    """Tag conversation CONVERSATION_ID (exports can filter by tag)."""
    with _writable(ctx) as log:
        if remove:
            undone = curation.untag(log, conversation_id, tag_name)
            click.echo(f"conversation {conversation_id}: tag {tag_name!r} removed (undid action "
                       + ", ".join(map(str, undone)) + ")")
            return
        _done(curation.tag(log, conversation_id, tag_name), f"conversation {conversation_id} tagged {tag_name!r}")


@click.command("transcript", cls=OneLineUsage)
@click.argument("turn_id", type=int)
@click.argument("text")
@click.pass_context
def transcript(ctx: click.Context, turn_id: int, text: str) -> None:
    """Correct the transcript of spoken user turn TURN_ID with what was really said
    (used by the speech export and as the user's words in text exports)."""
    with _writable(ctx) as log:
        _done(curation.correct_transcript(log, turn_id, text), f"transcript of turn {turn_id} corrected")


@click.command("undo", cls=OneLineUsage)
@click.argument("action_id", type=int)
@click.pass_context
def undo(ctx: click.Context, action_id: int) -> None:
    """Undo curation action ACTION_ID (see `epistemic log curation`); it stays in the log, marked undone."""
    with _writable(ctx) as log:
        curation.undo(log, action_id)
    click.echo(f"action {action_id} undone")


@click.command("curation", cls=OneLineUsage)
@click.argument("conversation_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def curation_cmd(ctx: click.Context, conversation_id: int, as_json: bool) -> None:
    """The curation actions of a conversation and its turns, oldest first, with their ids for undo."""
    with _writable(ctx) as log:
        log.get_conversation(conversation_id)
        with log.snapshot("reading the curation") as conn:
            actions = curation.conversation_actions(conn, conversation_id)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(a) for a in actions], ensure_ascii=False, indent=2))
        return
    if not actions:
        click.echo(f"conversation {conversation_id}: no curation yet")
        return
    click.echo(f"{'ACTION':>6}  {'WHEN':<16}  {'TARGET':<18}  WHAT")
    for a in actions:
        undone = f"  [undone {when(a.undone_at)}]" if a.undone_at is not None else ""
        click.echo(f"{a.id:>6}  {when(a.created_at):<16}  {a.target + ' ' + str(a.target_id):<18}  "
                   f"{a.describe()}{undone}")


COMMANDS = (rate, edit, prefer, exclude, tag, transcript, undo, curation_cmd)


def attach(group: click.Group) -> None:
    """Add the curation commands to the ``log`` group."""
    for command in COMMANDS:
        group.add_command(command)
