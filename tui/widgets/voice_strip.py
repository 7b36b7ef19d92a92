"""The voice strip: mode, mic level, VAD state, speaking indicator, the partial transcript line and
the last turn's latency waterfall.

Hidden until voice is switched on. All setters are cheap and must be called on the UI thread
(:class:`tui.voice_bridge.VoiceController` drains the voice loop's events on a timer and calls them).
"""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

_BARS = " ▁▂▃▄▅▆▇█"
FLOOR_DBFS = -60.0  # the quietest level the meter shows
_VAD_STYLE = {"speech": "bold $success", "muted": "$warning", "push_to_talk": "$accent", "off": "$error"}
_VAD_LABEL = {"idle": "listening", "speech": "speech", "muted": "muted", "push_to_talk": "F8 to talk", "off": "off",
              "loading": "loading…"}


def level_of(dbfs: float) -> float:
    """A dBFS loudness mapped onto [0, 1] (-60 dBFS and below: 0)."""
    return min(1.0, max(0.0, (dbfs - FLOOR_DBFS) / -FLOOR_DBFS))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def describe_turn_end(waterfall: Any) -> str:
    """``model 0.97 @210 ms, early −480``: how the turn ended and what the early start did."""
    end = getattr(waterfall, "turn_end", None)
    if end is None:
        return ""
    said = end.decision if end.probability is None else f"{end.decision} {end.probability:.2f}"
    text = f"{said} @{_ms(waterfall.end_silence_s)} ms"
    early = getattr(waterfall, "early_start", "off")
    if early == "used":
        text += f", early −{_ms(waterfall.early_saved_s or 0.0)}"
    elif early == "discarded":
        text += ", early discarded"
    return text


def describe_waterfall(waterfall: Any) -> str:
    """``last turn: model 0.97 @210 ms, early −480 │ stt 420 → token 910 → sentence 1300 → audio 1620 ms``
    (``agent.voice.waterfall.Waterfall``; stages in ms after the end of speech)."""
    turn = describe_turn_end(waterfall)
    return (f"last turn: {f'{turn} │ ' if turn else ''}stt {_ms(waterfall.transcript_s)} → "
            f"token {_ms(waterfall.first_token_s)} → sentence {_ms(waterfall.first_sentence_s)} → "
            f"audio {_ms(waterfall.first_audio_s)} ms")


class VoiceStrip(Widget):
    """Two lines: ``hands-free · half-duplex │ mic ▅ │ speech │ speaking │ partial…`` and the waterfall."""

    DEFAULT_CSS = """
    VoiceStrip { height: 2; padding: 0 1; background: $boost; display: none; text-wrap: nowrap; text-overflow: ellipsis; }
    VoiceStrip.-active { display: block; }
    """

    level: reactive[float] = reactive(0.0)
    vad_state: reactive[str] = reactive("off")
    partial: reactive[str] = reactive("")
    final: reactive[bool] = reactive(False)
    speaking: reactive[bool] = reactive(False)
    mode: reactive[str] = reactive("hands-free · half-duplex")
    waterfall: reactive[str] = reactive("")

    def set_level(self, level: float) -> None:
        """Microphone level in [0, 1] (see :func:`level_of`)."""
        self.level = min(1.0, max(0.0, float(level)))

    def set_vad_state(self, state: str) -> None:
        """What the listener is doing: idle, speech, muted, push_to_talk, off (or loading)."""
        self.vad_state = state

    def set_partial(self, text: str, *, final: bool = False) -> None:
        """The transcript of the utterance in progress, or its final transcript ("" clears it)."""
        self.partial, self.final = text, final

    def set_speaking(self, speaking: bool) -> None:
        """Whether the agent's voice is playing."""
        self.speaking = speaking

    def set_mode(self, push_to_talk: bool, barge_in: bool) -> None:
        """Turn-taking mode: hands-free or push-to-talk; half-duplex or barge-in."""
        self.mode = f"{'push-to-talk' if push_to_talk else 'hands-free'} · {'barge-in' if barge_in else 'half-duplex'}"

    def set_waterfall(self, waterfall: Any) -> None:
        """The last spoken turn's latency waterfall."""
        self.waterfall = describe_waterfall(waterfall)

    def activate(self, active: bool = True) -> None:
        """Show (or hide) the strip."""
        self.set_class(active, "-active")

    def render(self) -> Content:
        bar = _BARS[round(self.level * (len(_BARS) - 1))]
        state = self.vad_state
        parts: list[tuple[str, str] | str] = [
            (self.mode, "bold"), " │ ", ("mic ", "dim"), (bar, "$accent"), " │ ",
            (_VAD_LABEL.get(state, state), _VAD_STYLE.get(state, "dim")),
        ]
        if self.speaking:
            parts += [" │ ", ("speaking", "bold $warning")]
        if self.partial:
            parts += [" │ ", ("heard: " if self.final else "", "dim"), (self.partial, "" if self.final else "italic")]
        hint = "F7 voice off · F8 talk · F9 mode · F10 barge-in"
        parts += ["\n", (self.waterfall or hint, "dim")]
        return Content.assemble(*parts)
