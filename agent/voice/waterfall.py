"""Latency waterfall of one spoken turn: end of speech -> final transcript -> first token ->
first sentence ready -> first audio out.

Times are seconds on ``time.perf_counter()``, reported relative to the end of speech (the moment
the VAD closed the utterance, or the push-to-talk key was released). The VAD's end-of-speech
silence (``[vad] end_silence_ms``) comes before that moment and is kept apart. The pipeline's own
overhead is the first-audio time minus the compute of the stages on the critical path (final
transcript, model up to the end of the first sentence, synthesis of the first sentence).
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

MARKS = ("speech_end", "transcript", "turn_started", "first_token", "first_sentence", "first_audio")


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

    def as_record(self) -> dict[str, Any]:
        """Plain dict for the dialogue log (milliseconds are easier to read: values stay seconds)."""
        return asdict(self) | {"compute_s": self.compute_s, "overhead_s": self.overhead_s}

    def describe(self) -> str:
        """One line for a terminal."""
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f}"

        return (f"stt {ms(self.transcript_s)} ms, first token {ms(self.first_token_s)} ms, first sentence "
                f"{ms(self.first_sentence_s)} ms, first audio {ms(self.first_audio_s)} ms "
                f"(+{ms(self.end_silence_s)} ms end silence; overhead {ms(self.overhead_s)} ms)")


class WaterfallClock:
    """Collects the marks of one turn from several threads; the first mark of each name wins."""

    def __init__(self, speech_end: float | None = None, end_silence_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._marks: dict[str, float] = {}
        self._durations: dict[str, float] = {}
        self.end_silence_s = end_silence_s
        self.mark("speech_end", speech_end)

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
            )
