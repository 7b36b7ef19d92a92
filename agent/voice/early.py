"""The early start: the reply is prepared at a pause that looks final, before the turn has ended.

At a pause where the turn-end model says the user has probably finished, :class:`EarlyStart`
transcribes the utterance so far (final settings) and has the engine start a provisional reply on
it (:mod:`agent.provisional`: generated at once, nothing logged, shown or spoken yet). When the
turn ends, the voice loop either keeps it (:meth:`EarlyStart.keep`: the final transcript matches,
normalised, and the reply streams on from the tokens already generated) or discards it
(:meth:`EarlyStart.discard`: it never reaches the log, the history or the screen).

If no speech came after the pause, the early transcript *is* the final one (same audio, the
trailing silence aside, same settings), so it is reused rather than computed twice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.errors import TurnInProgress
from agent.events import TurnFinished
from agent.provisional import Provisional
from agent.voice.protocols import VoiceEngine
from audio.protocols import SpeechToText
from audio.stt import Transcript

log = logging.getLogger(__name__)

TRANSCRIPT_WAIT_S = 60.0
GATE_WAIT_S = 2.0  # for the gate: a discarded earlier early start may still be letting it go


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces: how two transcripts are compared."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


class _HeldSink:
    """Engine events of the provisional reply: held until it is kept, then passed on; dropped if
    discarded. The engine's turn thread calls it; ``keep``/``drop`` come from the turn worker;
    ``_lock`` guards the buffer and the target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[Any] = []
        self._target: Callable[[Any], None] | None = None
        self._dropped = False

    def __call__(self, event: Any) -> None:
        with self._lock:
            if self._dropped:
                return
            if self._target is None:
                self._held.append(event)
                return
            target = self._target
        target(event)

    def keep(self, target: Callable[[Any], None]) -> None:
        with self._lock:
            held, self._held = self._held, []
        for event in held:
            target(event)
        with self._lock:
            self._target = target

    def drop(self) -> None:
        with self._lock:
            self._dropped, self._held = True, []


class EarlyStart:
    """One early start: its transcript and its provisional reply, on a thread of its own.

    Created by the capture thread at a pause (:meth:`begin`); the listener marks it ``stale`` when
    speech resumes; the voice loop's turn worker reads the transcript, then keeps or discards it
    (so does the loop's stop). ``_done`` is set when the transcript is ready; ``transcript``,
    ``finished`` and ``error`` are written by the early thread before it sets the matching event.
    """

    def __init__(self, engine: VoiceEngine, stt: SpeechToText, pcm: np.ndarray, *, language: str | None,
                 probability: float) -> None:
        self.engine = engine
        self.stt = stt
        self.pcm = pcm
        self.language = language
        self.probability = probability
        self.started_at = time.perf_counter()
        self.cancel = threading.Event()
        self.provisional = Provisional()
        self.transcript: Transcript | None = None
        self.finished: TurnFinished | None = None
        self.error: BaseException | None = None
        self.is_stale = False  # speech came after the pause
        self._sink = _HeldSink()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voice-early", daemon=True)

    @classmethod
    def begin(cls, engine: VoiceEngine, stt: SpeechToText, pcm: np.ndarray, *, language: str | None,
              probability: float) -> EarlyStart:
        """Start transcribing ``pcm`` and answering it provisionally."""
        early = cls(engine, stt, pcm, language=language, probability=probability)
        early._thread.start()
        return early

    def _run(self) -> None:
        try:
            self.transcript = self.stt.transcribe(self.pcm, final=True, language=self.language, cancel=self.cancel)
        except Exception as exc:  # a failed early start only means no head start
            log.warning("early transcript failed: %s", exc)
            self.error = exc
        finally:
            self._done.set()
        discarded = self.provisional.decided and self.provisional.kept is None
        if self.transcript is None or not self.transcript.text or discarded:
            self.provisional.discard()
            return
        try:
            self.finished = self.engine.respond(self.transcript.text, on_event=self._sink, cancel=self.cancel,
                                                source="voice", wait=GATE_WAIT_S, provisional=self.provisional)
        except TurnInProgress:
            log.info("early start skipped: another job holds the turn gate")
            self.provisional.discard()
        except BaseException as exc:  # raised again by keep() in the turn worker
            self.error = exc

    def stale(self) -> None:
        """Speech resumed after the pause: the final transcript must be made afresh and compared."""
        self.is_stale = True

    def wait_transcript(self, timeout: float = TRANSCRIPT_WAIT_S) -> Transcript | None:
        """The early transcript (None if it failed or is not ready within ``timeout``)."""
        self._done.wait(timeout)
        return self.transcript

    def matches(self, final_text: str) -> bool:
        """True if the early transcript says the same as ``final_text`` (normalised)."""
        return self.transcript is not None and normalise(self.transcript.text) == normalise(final_text)

    def keep(self, text: str, on_event: Callable[[Any], None], **turn: Any) -> TurnFinished | None:
        """Make the provisional reply the answer to ``text``; blocks until the reply has ended.

        None if it could not be kept (it was discarded, or the early start never got the gate)."""
        if not self.provisional.keep(text, audio_path=turn.get("audio_path"), stt=turn.get("stt")):
            return None
        self._sink.keep(on_event)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.finished

    @property
    def kept(self) -> bool:
        """True once kept and answered."""
        return self.provisional.kept is not None and self.finished is not None

    def head_start_s(self, turn_end: float) -> float:
        """How much sooner this reply's work began than it would have without the early start."""
        return max(0.0, turn_end - self.started_at)

    def discard(self) -> None:
        """Drop the provisional reply: cancelled, never logged, never shown. Does not block."""
        self._sink.drop()
        self.provisional.discard()
        if self.provisional.kept is None:
            self.cancel.set()
