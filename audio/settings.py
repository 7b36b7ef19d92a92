"""Configuration models of the audio pipeline (the [audio], [vad], [stt] and [tts] sections)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PHANTOMS: tuple[str, ...] = (
    "спасибо",
    "спасибо за внимание",
    "спасибо за просмотр",
    "продолжение следует",
    "субтитры сделал dimatorzok",
    "редактор субтитров",
    "субтитры создавал dimatorzok",
    "thank you",
    "thank you for watching",
    "thanks for watching",
    "you",
    "bye",
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioSettings(_Section):
    """Microphone and speaker."""

    input_device: str | int | None = Field(None, description="Input device name (substring) or index; unset = the system default.")
    output_device: str | int | None = Field(None, description="Output device name (substring) or index; unset = the system default.")
    block_ms: int = Field(30, ge=5, le=200, description="Capture block length in milliseconds (PortAudio callback size).")
    device_timeout_s: float = Field(2.0, gt=0, description="No input for this long means the microphone was lost.")
    turn_taking: Literal["hands_free", "push_to_talk"] = Field("hands_free", description="hands_free: the VAD decides when you speak; push_to_talk: a key does.")
    barge_in: bool = Field(False, description="Let speech during playback stop the reply (use with headphones); off = half-duplex, the mic is ignored while the agent speaks.")


class VadSettings(_Section):
    """Voice activity detection."""

    aggressiveness: int = Field(2, ge=0, le=3, description="webrtcvad aggressiveness, 0 (lenient) to 3 (strict).")
    frame_ms: Literal[10, 20, 30] = Field(30, description="webrtcvad frame length in milliseconds (10, 20 or 30).")
    start_ms: int = Field(150, ge=10, description="Window over which speech must dominate to start an utterance.")
    start_ratio: float = Field(0.6, gt=0, le=1, description="Share of voiced frames in the start window that starts an utterance.")
    pre_roll_ms: int = Field(300, ge=0, description="Audio kept from before the start so the first syllable is never clipped.")
    end_silence_ms: int = Field(700, ge=60, description="Silence that ends an utterance.")
    min_speech_ms: int = Field(250, ge=0, description="Utterances with less voiced audio than this are dropped as noise.")
    max_utterance_s: float = Field(30.0, gt=1, description="An utterance longer than this is cut and sent on.")
    silero_check: bool = Field(True, description="Ask Silero VAD for a second opinion on each utterance to cut false triggers.")
    silero_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability threshold.")
    silero_min_speech_ms: int = Field(150, ge=0, description="Silero must hear at least this much speech or the utterance is dropped.")
    end_of_turn: Literal["silence", "model", "both"] = Field("both", description="What ends a turn: silence (end_silence_ms of it), model (Smart Turn decides at each pause, up to turn_max_silence_ms) or both (the model at the first pause, the silence timer otherwise).")
    turn_check_ms: int = Field(210, ge=30, description="Silence after which the turn-end model is asked whether the user has finished.")
    turn_threshold: float = Field(0.5, gt=0, lt=1, description="Turn-end model probability at or above which the turn counts as finished.")
    turn_max_silence_ms: int = Field(2000, ge=60, description="end_of_turn = model: silence that ends a turn the model still calls unfinished.")
    early_start: bool = Field(True, description="Start transcribing and answering at a pause the model calls final, before the turn ends; kept if the final transcript matches, else discarded.")


class SttSettings(_Section):
    """Speech-to-text."""

    model: str = Field("", description="faster-whisper model: a folder path or a name; empty = the starter Whisper base.")
    language: str = Field("auto", description="Language code (ru, en) or auto.")
    device: str = Field("cpu", description="Where Whisper runs: cpu, cuda or auto.")
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8 on CPU; float16 / int8_float16 on GPU).")
    threads: int = Field(0, ge=0, description="CPU threads for Whisper; 0 = all cores.")
    beam_size: int = Field(1, ge=1, description="Beam size of the final transcript of a spoken utterance (1 = greedy, fastest).")
    file_beam_size: int = Field(5, ge=1, description="Beam size for audio files and voice messages (5 = faster-whisper's default; greedy loses words).")
    initial_prompt: str = Field("", description="Text that primes Whisper's vocabulary and style (names, terms).")
    hotwords: str = Field("", description="Words Whisper should prefer (space-separated); empty = none.")
    partials: bool = Field(True, description="Show partial transcripts while the user is still speaking.")
    partial_interval_ms: int = Field(800, ge=100, description="How often the growing utterance is re-transcribed for the partial line.")
    no_speech_threshold: float = Field(0.6, ge=0, le=1, description="No-speech probability above which a segment is suspect (Whisper's own threshold too).")
    logprob_threshold: float = Field(-1.0, description="Whisper's log-prob threshold: lower retries at a higher temperature, and with high no-speech skips the window.")
    guard_logprob: float = Field(-0.8, description="A suspect segment (no-speech above no_speech_threshold) with average log-prob below this is dropped.")
    silence_dbfs: float = Field(-55.0, description="Audio whose loudest 100 ms is quieter than this (dBFS) is not transcribed at all.")
    hard_no_speech_threshold: float = Field(0.8, ge=0, le=1, description="A segment with no-speech probability above this is dropped whatever its log-prob.")
    compression_ratio_threshold: float = Field(2.4, gt=0, description="Segments more repetitive than this (gzip ratio) are dropped as hallucination.")
    phantoms: tuple[str, ...] = Field(DEFAULT_PHANTOMS, description="Known phantom phrases (lower case, no punctuation) dropped when the audio is near-silent or doubtful.")
    phantom_silence_dbfs: float = Field(-45.0, description="Audio whose loudest 100 ms is quieter than this (dBFS) counts as near-silent for the phantom guard.")
    phantom_no_speech: float = Field(0.3, ge=0, le=1, description="A known phantom with no-speech probability above this is dropped.")
    file_vad_filter: bool = Field(True, description="When transcribing files, let Silero skip files without speech and stretches of 30 s or more without it (no phantoms, no wasted time on noise).")


class TtsSettings(_Section):
    """Text-to-speech."""

    voice: str = Field("", description="Piper voice .onnx path; empty = the starter English voice.")
    speaker_id: int | None = Field(None, description="Speaker of a multi-speaker voice; unset = the voice's default.")
    length_scale: float | None = Field(None, gt=0, description="Speech tempo (< 1 faster, > 1 slower); unset = the voice's default.")
    noise_scale: float | None = Field(None, ge=0, description="Generator noise; unset = the voice's default.")
    noise_w_scale: float | None = Field(None, ge=0, description="Phoneme-length noise; unset = the voice's default.")
    volume: float = Field(1.0, gt=0, le=4, description="Loudness multiplier of synthesized speech.")
    normalize: bool = Field(True, description="Spell out numbers, dates and units before synthesis (Russian and English).")
    language: str = Field("auto", description="Language of normalisation (ru, en) or auto (from the text's script).")
