"""Voice activity detection: cut a 16 kHz stream into utterances with webrtcvad.

``VadSegmenter.feed`` takes blocks of any length and returns events: :class:`SpeechStarted` when
speech dominates the start window, :class:`SpeechEnded` (with the audio, pre-roll included) after
``end_silence_ms`` of silence, or :class:`SpeechRejected` when the utterance was too short or the
optional Silero second opinion heard no speech in it.

Built with ``pauses`` (as :meth:`VadSegmenter.from_settings` does when ``[vad] end_of_turn`` is
model or both, or ``early_start`` is on), it also reports
:class:`SpeechPaused` after ``turn_check_ms`` of silence (in model mode again at each multiple),
and :class:`SpeechResumed` when speech comes back after such a pause; whoever asks the turn-end
model may then end the utterance at once with :meth:`VadSegmenter.end_now`. In model mode the
silence that ends an utterance regardless is ``turn_max_silence_ms``.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass

import numpy as np

from audio.events import SpeechEnded, SpeechRejected, SpeechStarted
from audio.pcm import STT_RATE, to_float32, to_int16
from audio.settings import VadSettings

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class SpeechPaused:
    """Silence of ``silence_ms`` inside an utterance: time to ask whether the turn is over."""

    silence_ms: int
    pcm: np.ndarray  # the utterance so far (float32 16 kHz), trailing silence included


@dataclass(frozen=True)
class SpeechResumed:
    """Speech came back after a :class:`SpeechPaused`: the utterance goes on."""

    at_s: float


VadEvent = SpeechStarted | SpeechEnded | SpeechRejected | SpeechPaused | SpeechResumed


class SileroCheck:
    """Second opinion: how much speech Silero VAD (faster-whisper's bundled ONNX) hears in a clip."""

    def __init__(self, threshold: float = 0.5) -> None:
        from faster_whisper.vad import get_vad_model

        self.threshold = threshold
        get_vad_model()  # load the ONNX session now, not on the first utterance

    def speech_ms(self, pcm: np.ndarray, sample_rate: int = STT_RATE) -> float:
        """Milliseconds of speech Silero finds in ``pcm`` (16 kHz float32)."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        opts = VadOptions(threshold=self.threshold, min_speech_duration_ms=0, min_silence_duration_ms=100)
        stamps = get_speech_timestamps(to_float32(pcm), opts, sampling_rate=sample_rate)
        return 1000.0 * sum(s["end"] - s["start"] for s in stamps) / sample_rate


MIN_SKIP_S = 30.0  # a stretch without speech this long (a whole Whisper window) is skipped; shorter cuts cost accuracy
SPEECH_PAD_S = 0.4  # kept around each stretch of speech, so no syllable is clipped
MIN_SPEECH_MS = 250  # shorter blips (a click, a cough in noise) are not speech


def speech_spans(audio: np.ndarray, *, min_skip_s: float = MIN_SKIP_S, threshold: float = 0.5) -> list[tuple[float, float]]:
    """The stretches of a recording worth transcribing, in seconds; [] when Silero hears no speech.

    Only stretches of at least ``min_skip_s`` without speech are left out; shorter pauses, and a
    lead-in or tail shorter than that, stay, so Whisper hears the speech as it was recorded. A
    recording with no such stretch comes back as one span from 0 to its end.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    opts = VadOptions(threshold=threshold, min_speech_duration_ms=MIN_SPEECH_MS,
                      min_silence_duration_ms=int(min_skip_s * 1000), speech_pad_ms=int(SPEECH_PAD_S * 1000))
    found = get_speech_timestamps(to_float32(audio), opts, sampling_rate=STT_RATE)
    spans: list[tuple[float, float]] = []
    for stamp in found:
        start, end = stamp["start"] / STT_RATE, stamp["end"] / STT_RATE
        if spans and start - spans[-1][1] < min_skip_s:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    duration = len(audio) / STT_RATE
    if spans and spans[0][0] < min_skip_s:
        spans[0] = (0.0, spans[0][1])
    if spans and duration - spans[-1][1] < min_skip_s:
        spans[-1] = (spans[-1][0], duration)
    return spans


class VadSegmenter:
    """Turns a stream of 16 kHz mono blocks into utterance events."""

    def __init__(self, settings: VadSettings | None = None, *, silero: SileroCheck | None = None,
                 pauses: bool = False) -> None:
        import webrtcvad

        self.settings = settings or VadSettings()
        s = self.settings
        self.sample_rate = STT_RATE
        self.frame_len = self.sample_rate * s.frame_ms // 1000
        self._vad = webrtcvad.Vad(s.aggressiveness)
        self._silero = silero
        self._start_frames = max(1, s.start_ms // s.frame_ms)
        end_ms = s.turn_max_silence_ms if pauses and s.end_of_turn == "model" else s.end_silence_ms
        self._end_frames = max(1, end_ms // s.frame_ms)
        self._pause_frames = max(1, s.turn_check_ms // s.frame_ms) if pauses else 0
        self._repeat_pause = s.end_of_turn == "model"
        self.last_silence_ms = 0  # silence that ended the last utterance
        self._window: collections.deque[bool] = collections.deque(maxlen=self._start_frames)
        self._pre: collections.deque[np.ndarray] = collections.deque(maxlen=max(self._start_frames, s.pre_roll_ms // s.frame_ms))
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames_seen = 0
        self.reset()

    @classmethod
    def from_settings(cls, settings: VadSettings) -> VadSegmenter:
        """A segmenter with the Silero second opinion when the settings ask for it, reporting
        pauses when the end of turn or the early start needs the turn-end model."""
        silero = SileroCheck(settings.silero_threshold) if settings.silero_check else None
        return cls(settings, silero=silero, pauses=settings.end_of_turn != "silence" or settings.early_start)

    def reset(self) -> None:
        """Forget any utterance in progress (e.g. when the agent starts speaking in half-duplex)."""
        self._window.clear()
        self._pre.clear()
        self._pending = np.zeros(0, dtype=np.int16)
        self._speech: list[np.ndarray] = []
        self._voiced = 0
        self._silence_run = 0
        self._start_frame = 0
        self._paused = False
        self.in_speech = False

    def feed(self, pcm: np.ndarray) -> list[VadEvent]:
        """Add audio (float32 or int16, 16 kHz mono); return the events it completes."""
        data = np.concatenate([self._pending, to_int16(pcm if pcm.dtype == np.int16 else to_float32(pcm))])
        n = len(data) // self.frame_len
        self._pending = data[n * self.frame_len:]
        events: list[VadEvent] = []
        for i in range(n):
            event = self._frame(data[i * self.frame_len:(i + 1) * self.frame_len])
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[VadEvent]:
        """End of stream: close an utterance in progress."""
        return [self._finish()] if self.in_speech else []

    def end_now(self) -> SpeechEnded | SpeechRejected | None:
        """End the utterance in progress now (the turn-end model says it is finished)."""
        return self._finish() if self.in_speech else None

    def current_audio(self) -> np.ndarray:
        """Audio of the utterance in progress (for partial transcripts), float32."""
        if not self._speech:
            return np.zeros(0, dtype=np.float32)
        return to_float32(np.concatenate(self._speech))

    def _frame(self, frame: np.ndarray) -> VadEvent | None:
        voiced = self._vad.is_speech(frame.tobytes(), self.sample_rate)
        self.frames_seen += 1
        if self.in_speech:
            return self._in_speech(frame, voiced)
        self._pre.append(frame)
        self._window.append(voiced)
        if sum(self._window) >= self.settings.start_ratio * self._start_frames and len(self._window) == self._start_frames:
            return self._start()
        return None

    def _start(self) -> SpeechStarted:
        self.in_speech = True
        self._speech = list(self._pre)
        self._voiced = sum(self._window)
        self._silence_run = 0
        self._start_frame = self.frames_seen - len(self._pre)
        first_voiced = self.frames_seen - self._start_frames + list(self._window).index(True)
        self._pre.clear()
        self._window.clear()
        return SpeechStarted(at_s=self._t(first_voiced))

    def _in_speech(self, frame: np.ndarray, voiced: bool) -> VadEvent | None:
        self._speech.append(frame)
        self._voiced += voiced
        self._silence_run = 0 if voiced else self._silence_run + 1
        too_long = len(self._speech) * self.settings.frame_ms >= self.settings.max_utterance_s * 1000
        if self._silence_run >= self._end_frames or too_long:
            return self._finish()
        if voiced and self._paused:
            self._paused = False
            return SpeechResumed(at_s=self._t(self.frames_seen))
        return self._pause_check()

    def _pause_check(self) -> SpeechPaused | None:
        run, every = self._silence_run, self._pause_frames
        if not every or run < every or run % every or (run > every and not self._repeat_pause):
            return None
        self._paused = True
        return SpeechPaused(silence_ms=run * self.settings.frame_ms, pcm=to_float32(np.concatenate(self._speech)))

    def _finish(self) -> SpeechEnded | SpeechRejected:
        pcm = to_float32(np.concatenate(self._speech))
        voiced_ms = self._voiced * self.settings.frame_ms
        start_s, end_s = self._t(self._start_frame), self._t(self.frames_seen)
        self.last_silence_ms = self._silence_run * self.settings.frame_ms
        self.reset()
        if voiced_ms < self.settings.min_speech_ms:
            return SpeechRejected(reason=f"only {voiced_ms} ms of speech", at_s=end_s)
        if self._silero is not None:
            heard = self._silero.speech_ms(pcm, self.sample_rate)
            if heard < self.settings.silero_min_speech_ms:
                return SpeechRejected(reason=f"Silero heard {heard:.0f} ms of speech", at_s=end_s)
        return SpeechEnded(pcm=pcm, start_s=start_s, end_s=end_s, sample_rate=self.sample_rate)

    def _t(self, frame_index: int) -> float:
        return frame_index * self.settings.frame_ms / 1000.0
