"""Latency waterfall of one spoken turn: end of speech -> final transcript -> first token ->
first sentence ready -> first audio out.

Times are seconds on ``time.perf_counter()``, reported relative to the end of speech (the moment
the VAD closed the utterance, or the push-to-talk key was released). The VAD's end-of-speech
silence (``[vad] end_silence_ms``) comes before that moment and is kept apart. The pipeline's own
overhead is the first-audio time minus the compute of the stages on the critical path (final
transcript, model up to the end of the first sentence, synthesis of the first sentence).

Each turn also records how its end was decided (:class:`TurnEnd`: the silence timer or the
turn-end model, with the model's probability) and whether an early start prepared the reply at
a pause before the turn ended (``early_start``: off, none, used or discarded, and the head start it
gave in ``early_saved_s``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

MARKS = ("speech_end", "transcript", "turn_started", "first_token", "first_sentence", "first_audio")
EarlyStatus = Literal["off", "none", "used", "discarded"]


@dataclass(frozen=True)
class TurnEnd:
    """How the end of a turn was decided."""

    mode: str = "silence"  # [vad] end_of_turn, or push_to_talk / typed
    decision: str = "silence"  # model (it said finished), silence (the timer), max_silence, key, typed
    probability: float | None = None  # the turn-end model's last probability of "finished"
    model_s: float | None = None  # its inference time (on the critical path when it decided)


@dataclass(frozen=True)
class Waterfall:
    """One turn's latencies in seconds after the end of speech (None: the stage never happened)."""

    end_silence_s: float  # VAD silence waited before the end of speech was declared
    transcript_s: float | None  # final transcript ready
    first_token_s: float | None  # first generated token
    first_sentence_s: float | None  # first speakable sentence complete
    first_audio_s: float | None  # first samples handed to the output device
    stt_compute_s: float | None  # Whisper's compute for the final transcript
    partial_wait_s: float  # waiting for a partial transcript still running at end of speech
    llm_compute_s: float | None  # generation start -> first sentence complete
    tts_compute_s: float | None  # Piper's compute for the first sentence
    turn_end: TurnEnd = TurnEnd()
    partial_abandoned: bool = False  # a partial still running at end of speech was dropped, not waited for
    early_start: EarlyStatus = "off"  # off; none: no pause looked final; used; discarded (transcript differed)
    early_saved_s: float | None = None  # a used early start: how much sooner the reply's work began
    early_generated_s: float | None = None  # ... and how long its reply had been generating when kept

    @property
    def compute_s(self) -> float | None:
        """Compute of the stages on the critical path to the first audio."""
        parts = (self.stt_compute_s, self.llm_compute_s, self.tts_compute_s)
        return None if any(p is None for p in parts) else sum(parts)  # type: ignore[arg-type]

    @property
    def overhead_s(self) -> float | None:
        """First-audio time minus the stages' compute: what the pipeline itself costs."""
        compute = self.compute_s
        return None if compute is None or self.first_audio_s is None else self.first_audio_s - compute

    @property
    def last_word_s(self) -> float | None:
        """The user's last word to the first audio: silence waited, the model's decision, the rest."""
        model = (self.turn_end.model_s or 0.0) if self.turn_end.decision == "model" else 0.0
        return None if self.first_audio_s is None else self.end_silence_s + model + self.first_audio_s

    def as_record(self) -> dict[str, Any]:
        """Plain dict for the dialogue log (milliseconds are easier to read: values stay seconds)."""
        return asdict(self) | {"compute_s": self.compute_s, "overhead_s": self.overhead_s, "last_word_s": self.last_word_s}

    def describe(self) -> str:
        """One line for a terminal."""
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f}"

        return (f"stt {ms(self.transcript_s)} ms, first token {ms(self.first_token_s)} ms, first sentence "
                f"{ms(self.first_sentence_s)} ms, first audio {ms(self.first_audio_s)} ms "
                f"(+{ms(self.end_silence_s)} ms end silence; overhead {ms(self.overhead_s)} ms; end of turn: "
                f"{describe_turn_end(self)})")


def describe_turn_end(waterfall: Waterfall) -> str:
    """``model 0.97 at 210 ms, early start used (-480 ms)``."""
    end = waterfall.turn_end
    said = end.decision if end.probability is None else f"{end.decision} {end.probability:.2f}"
    text = f"{said} at {waterfall.end_silence_s * 1000:.0f} ms"
    if waterfall.early_start in ("used", "discarded"):
        saved = f" (-{waterfall.early_saved_s * 1000:.0f} ms)" if waterfall.early_saved_s else ""
        text += f", early start {waterfall.early_start}{saved}"
    return text


class WaterfallClock:
    """Collects the marks of one turn from several threads; the first mark of each name wins."""

    def __init__(self, speech_end: float | None = None, end_silence_s: float = 0.0, turn_end: TurnEnd | None = None) -> None:
        self._lock = threading.Lock()
        self._marks: dict[str, float] = {}
        self._durations: dict[str, float] = {}
        self.end_silence_s = end_silence_s
        self.turn_end = turn_end or TurnEnd()
        self.partial_abandoned = False
        self.early_start: EarlyStatus = "off"
        self.early_saved_s: float | None = None
        self.early_generated_s: float | None = None
        self.mark("speech_end", speech_end)

    @property
    def speech_end_at(self) -> float:
        """perf_counter time of the end of speech."""
        with self._lock:
            return self._marks["speech_end"]

    def early(self, status: EarlyStatus, saved_s: float | None = None, generated_s: float | None = None) -> None:
        """What became of the early start (the turn worker, before the result is read)."""
        with self._lock:
            self.early_start, self.early_saved_s, self.early_generated_s = status, saved_s, generated_s

    def mark(self, name: str, at: float | None = None) -> None:
        """Record ``name`` now (or at ``at``) unless it was recorded already."""
        if name not in MARKS:
            raise ValueError(f"unknown waterfall mark {name!r}")
        with self._lock:
            self._marks.setdefault(name, time.perf_counter() if at is None else at)

    def duration(self, name: str, seconds: float) -> None:
        """Record a stage's compute time (first value wins)."""
        with self._lock:
            self._durations.setdefault(name, seconds)

    def _since_end(self, name: str) -> float | None:
        at = self._marks.get(name)
        return None if at is None else at - self._marks["speech_end"]

    def result(self) -> Waterfall:
        """The waterfall as measured so far."""
        with self._lock:
            llm = None
            if "turn_started" in self._marks and "first_sentence" in self._marks:
                llm = self._marks["first_sentence"] - self._marks["turn_started"]
            return Waterfall(
                end_silence_s=self.end_silence_s,
                transcript_s=self._since_end("transcript"),
                first_token_s=self._since_end("first_token"),
                first_sentence_s=self._since_end("first_sentence"),
                first_audio_s=self._since_end("first_audio"),
                stt_compute_s=self._durations.get("stt"),
                partial_wait_s=self._durations.get("partial_wait", 0.0),
                llm_compute_s=llm,
                tts_compute_s=self._durations.get("tts"),
                turn_end=self.turn_end,
                partial_abandoned=self.partial_abandoned,
                early_start=self.early_start,
                early_saved_s=self.early_saved_s,
                early_generated_s=self.early_generated_s,
            )
