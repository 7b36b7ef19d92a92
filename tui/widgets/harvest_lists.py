"""The Harvest screen's lists: conversations with their curation state, and one conversation's
turns with each reply's rating, correction, preference and exclusion. Both only draw what the
screen's workers read; they touch no database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from agent.harvest.counts import ConversationCuration, ExportCounts
from agent.harvest.curation import CurationState
from agent.log.reads import reply_group
from agent.records import ConversationSummary, StoredTurn


def _short(text: str, width: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def conversation_label(summary: ConversationSummary, state: CurationState,
                       tally: ConversationCuration | None) -> str:
    """``#3 Столицы [excluded]`` over ``geo · 2 rated · 1 edited``."""
    head = f"#{summary.id} {_short(summary.title or '(untitled)', 28)}"
    if summary.id in state.excluded_conversations:
        head += " [excluded]"
    bits = sorted(state.tags.get(summary.id, ()))
    if tally is not None:
        bits += [f"{n} {what}" for n, what in ((tally.rated, "rated"), (tally.edited, "edited"),
                                               (tally.preferred, "preferred"),
                                               (tally.excluded_turns, "excluded")) if n]
    return head + "\n  " + (" · ".join(bits) or f"{summary.turns} turns, not curated")


def turn_marks(turn: StoredTurn, state: CurationState) -> list[str]:
    """``good``, ``bad: too long``, ``edited``, ``preferred``, ``excluded``, ``transcript corrected``."""
    marks = []
    if turn.id in state.ratings:
        rating, note = state.ratings[turn.id]
        marks.append(f"{rating}: {note}" if note else rating)
    if turn.id in state.edits:
        marks.append("edited")
    if turn.id in state.transcripts:
        marks.append("transcript corrected")
    if state.preferred.get(reply_group(turn)) == turn.id and turn.role == "assistant":
        marks.append("preferred")
    if turn.id in state.excluded_turns:
        marks.append("excluded")
    return marks


def turn_label(turn: StoredTurn, state: CurationState, group_size: int) -> str:
    """``#5 assistant (alternative 2/2) [good, preferred]`` over the (corrected) text."""
    head = f"#{turn.id} {turn.role}"
    if group_size > 1:
        head += f" (alternative of #{reply_group(turn)}, {group_size} in all)"
    marks = turn_marks(turn, state)
    if marks:
        head += " [" + ", ".join(marks) + "]"
    text = state.edits.get(turn.id) or state.transcripts.get(turn.id) or turn.text
    return head + "\n  " + _short(text, 90)


def counts_line(counts: ExportCounts) -> str:
    """What an export with the default filters would contain now."""
    return (f"An export now: {counts.sft_conversations} SFT conversations · "
            f"{counts.dpo_pairs} DPO pairs · {counts.kto_rows} KTO rows")


class ConversationList(OptionList):
    """Conversations, newest first, each with its tags and curation tallies (UI thread only)."""

    def show(self, summaries: Sequence[ConversationSummary], state: CurationState,
             tallies: Mapping[int, ConversationCuration]) -> None:
        """Redraw, keeping the highlighted conversation where it still exists."""
        keep = self.highlighted_option.id if self.highlighted_option is not None else None
        self.clear_options()
        self.add_options([Option(conversation_label(s, state, tallies.get(s.id)), id=str(s.id))
                          for s in summaries])
        ids = [str(s.id) for s in summaries]
        if ids:
            self.highlighted = ids.index(keep) if keep in ids else 0

    @property
    def selected_id(self) -> int | None:
        """The highlighted conversation's id."""
        option = self.highlighted_option
        return int(option.id) if option is not None and option.id is not None else None


class TurnList(OptionList):
    """One conversation's turns in order, regenerated alternatives included (UI thread only)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)  # turn text is shown as it is, never as markup
        self.turns: dict[int, StoredTurn] = {}

    def show(self, turns: Sequence[StoredTurn], state: CurationState) -> None:
        """Redraw, keeping the highlighted turn where it still exists."""
        keep = self.highlighted_option.id if self.highlighted_option is not None else None
        sizes: dict[int, int] = {}
        for t in turns:
            if t.role == "assistant":
                sizes[reply_group(t)] = sizes.get(reply_group(t), 0) + 1
        self.turns = {t.id: t for t in turns}
        self.clear_options()
        self.add_options([Option(turn_label(t, state, sizes.get(reply_group(t), 1) if t.role == "assistant" else 1),
                                 id=str(t.id)) for t in turns])
        ids = [str(t.id) for t in turns]
        if ids:
            self.highlighted = ids.index(keep) if keep in ids else len(ids) - 1

    @property
    def selected(self) -> StoredTurn | None:
        """The highlighted turn."""
        option = self.highlighted_option
        if option is None or option.id is None:
            return None
        return self.turns.get(int(option.id))


class CountsBar(Static):
    """The export counts line."""

    def show(self, counts: ExportCounts) -> None:
        """Draw the counts."""
        self.update(counts_line(counts))
