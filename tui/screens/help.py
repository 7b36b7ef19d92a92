"""The help screen: what each key does and what the numbers mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# Epistemic Engine

Type a message and press **Enter**. The reply streams in; its reasoning (`<think>`) is folded
under **reasoning**: click it (or focus it and press Enter) to read it.

| Key | Action |
|---|---|
| Enter | send the message |
| Esc | stop the reply (it is logged as *interrupted*) |
| Ctrl+R | regenerate the last reply (both replies stay in the log) |
| Ctrl+N | new conversation |
| F2 / Ctrl+P | switch persona (also in the command palette) |
| F3 | sampler panel: edit a value, Enter applies it from the next turn |
| Ctrl+K | sources panel: what the last turn retrieved (number, scores, file § heading, snippet) |
| F4 | token inspector: how the last reply and any text are tokenized |
| Ctrl+T | tokenizer lab: every tokenizer on your logged dialogues, per language; words split worst |
| F5 | history: read and continue past conversations |
| F6 | show / hide the entropy sparkline |
| Ctrl+E | entropy view of the last reply: ←/→ walk its tokens, c compares another turn, a aligns answers |
| F7 | voice on / off (loads Whisper and Piper the first time; `epistemic tui --voice` starts with it on) |
| F8 | push-to-talk: press to talk, press again to send; also cuts off speech |
| F9 | hands-free (the VAD hears you) / push-to-talk |
| F10 | half-duplex (mic ignored while it speaks) / barge-in (speak to interrupt; use headphones) |
| Ctrl+J | training jobs: a progress bar per `epistemic train` job (step, loss, tokens/s, ETA); n starts `train sft` |
| F1 | this help |
| Ctrl+Q | quit |

**Status bar**: persona, model (backend), tokens per second, time to first token (ttft),
context used / context size, and the speculative-decoding acceptance rate when the backend
drafts tokens.

**Voice strip** (when voice is on): mode, microphone level, listening state, speaking mark and
the partial transcript; below it the last turn's latency waterfall (end of speech -> transcript
-> first token -> first sentence -> first audio, in ms).

**Entropy** is the Shannon entropy (nats) of the model's full next-token distribution: low means
sure, high means torn between many tokens. The sparkline draws it for every token of the reply.

**Citations**: a persona with `retrieve` set gets numbered sources from your documents
(`epistemic knowledge add`) or past conversations; `[1]` in a reply is highlighted and resolved in
the line under it (file § heading); a number that names no source of that turn is struck through.
They are never read aloud.

Every turn is logged with the persona, every sampler value, timings and per-token telemetry.

**Harvest** (F11) curates the log for training datasets: on the highlighted reply, g / b rate it
good / bad, e edits it (Ctrl+S saves the correction beside the original), p prefers it over its
regenerated alternatives, x excludes it; shift+X excludes the conversation, u undoes the last
action. The top line says how many SFT conversations, DPO pairs and KTO rows an export would hold.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and meanings; Esc or F1 closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)
