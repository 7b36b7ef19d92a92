"""What the voice loop keeps with each turn: the user's audio and transcript confidence, and
with the reply what was spoken, what was heard and the latency waterfall.

The user's utterance is written as a 16-bit WAV under ``<data dir>/audio/``, owner-only (unless
``[log] keep_audio`` is off) and referenced from the user turn by its path relative to the data
dir. After the reply was played (or cut off) the assistant turn is completed with
``DialogueLog.update_spoken``.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from agent.errors import LogError
from agent.events import EventSink, Notice, TurnFinished
from agent.private import private_dir, private_file
from agent.voice.events import UserUtterance
from agent.voice.waterfall import Waterfall
from audio.pcm import STT_RATE, write_wav

if TYPE_CHECKING:
    from agent.voice.listener import Utterance
    from agent.voice.speaker import SpokenOutcome

log = logging.getLogger(__name__)

AUDIO_DIR = "audio"


@dataclass(frozen=True)
class Heard:
    """A final transcript ready to be answered."""

    text: str
    audio_path: str | None
    stt: dict[str, Any]

    @property
    def event(self) -> UserUtterance:
        """The event announcing it."""
        return UserUtterance(self.text, self.audio_path, self.stt)


class SpokenLog(Protocol):
    """The dialogue log as the recorder sees it (:class:`agent.log.DialogueLog` implements it)."""

    def update_spoken(self, turn_id: int, *, heard_text: str | None, spoken_text: str | None,
                      extra: dict | None = None) -> None:
        """Complete a logged reply with what was spoken and heard."""
        ...


class TurnRecorder:
    """Transcribes utterances and keeps audio, transcripts and spoken replies in the log.

    Called from the voice loop's turn worker only; it holds no state between calls but its settings.
    """

    def __init__(self, *, log: SpokenLog | None, data_dir: Path, keep_audio: bool, emit: EventSink | None = None) -> None:
        self.log = log
        self.data_dir = Path(data_dir)
        self.keep_audio = keep_audio
        self._emit = emit or (lambda event: None)

    def transcribe(self, utterance: Utterance) -> Heard | None:
        """The final transcript of a :class:`agent.voice.listener.Utterance` (None: nothing said).

        An early start whose audio covers the utterance (no speech after its pause) already
        transcribed it: that transcript is the final one. Otherwise a partial transcript still
        running is abandoned and the final one starts at once."""
        clock, early = utterance.clock, utterance.early
        reused = early.wait_transcript() if early is not None and not early.is_stale else None
        if reused is not None and reused.text:
            clock.partial_abandoned = utterance.transcriber.abandon()
            transcript = reused
            clock.mark("transcript")
            clock.duration("stt", clock.result().transcript_s or 0.0)  # what was left of it after the end of speech
        else:
            started = time.perf_counter()
            clock.partial_abandoned = utterance.transcriber.abandon()
            clock.duration("partial_wait", time.perf_counter() - started)
            transcript = utterance.transcriber.finish(utterance.pcm)
            clock.mark("transcript")
            clock.duration("stt", transcript.compute_s)
        if not transcript.text:
            log.info("empty transcript (%s)", "; ".join(transcript.dropped) or "no speech")
            return None
        return Heard(transcript.text, self.save_audio(utterance.pcm), transcript.as_record())

    def save_audio(self, pcm: np.ndarray, sample_rate: int = STT_RATE) -> str | None:
        """Write the utterance under the data dir; its path relative to the data dir (or None)."""
        if not self.keep_audio:
            return None
        relative = Path(AUDIO_DIR) / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.wav"
        try:
            private_dir(self.data_dir)
            write_wav(private_file(self.data_dir / relative), pcm, sample_rate)
        except OSError as exc:
            self._emit(Notice("warning", f"Could not keep your audio: {exc.strerror or exc}"))
            return None
        return relative.as_posix()

    def store_reply(self, finished: TurnFinished, outcome: SpokenOutcome, waterfall: Waterfall | None) -> None:
        """Complete the assistant turn with what was spoken, what was heard and the waterfall."""
        if self.log is None or not finished.logged or finished.turn_id is None:
            return
        extra: dict[str, Any] = {"voice": {"interrupted": outcome.interrupted, "played_s": outcome.played_s,
                                           "sentences": outcome.sentences}}
        if waterfall is not None:
            extra["waterfall"] = waterfall.as_record()
        try:
            self.log.update_spoken(finished.turn_id, heard_text=outcome.heard_text, spoken_text=outcome.spoken_text, extra=extra)
        except LogError as exc:
            self._emit(Notice("error", f"Could not log what was spoken: {exc}"))
