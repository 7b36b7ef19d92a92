"""Build the voice components from a configuration (one factory for the CLI, the TUI and tests).

Speech models load slowly: load them once (:func:`load_stt`, :func:`load_tts`) and pass them to
:func:`build_voice_loop`. The persona decides the voice and, unless ``[stt] language`` or the
caller fixes one, the language Whisper listens for.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agent.voice.listener import TurnPolicy
from agent.voice.loop import VoiceLoop
from agent.voice.turns import TurnRecorder

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig
    from agent.events import EventSink
    from agent.personas import Persona
    from agent.runtime import Runtime
    from audio.protocols import SpeechToText, TextToSpeech, VoiceActivityDetector
    from audio.settings import AudioSettings
    from audio.stt import WhisperStt
    from audio.tts import PiperTts
    from audio.vad import VadSegmenter

log = logging.getLogger(__name__)


def listen_language(config: LoadedConfig, persona: Persona, override: str | None = None) -> str:
    """The language to transcribe: the override, else a fixed ``[stt] language``, else the persona's."""
    if override:
        return override
    fixed = config.settings.stt.language
    if fixed and fixed.lower() != "auto":
        return fixed
    return persona.language or "auto"


def load_stt(config: LoadedConfig) -> WhisperStt:
    """The Whisper model of ``[stt]`` (default: the starter Whisper base)."""
    from audio.stt import WhisperStt

    settings = config.settings.stt
    return WhisperStt.load(settings, model=config.resolve_model(settings.model))


def load_tts(config: LoadedConfig, persona: Persona) -> PiperTts:
    """The persona's Piper voice, else ``[tts] voice``, else the starter English voice."""
    from audio.tts import PiperTts

    settings = config.settings.tts
    spec = persona.settings.voice or settings.voice
    return PiperTts.load(settings, voice=config.resolve_model(spec) or None)


def load_vad(config: LoadedConfig) -> VadSegmenter:
    """The VAD segmenter of ``[vad]`` (with the Silero second opinion when configured)."""
    from audio.vad import VadSegmenter

    return VadSegmenter.from_settings(config.settings.vad)


def load_turn_policy(config: LoadedConfig) -> TurnPolicy:
    """``[vad] end_of_turn`` / ``early_start`` with the Smart Turn model they need.

    Model or both without the model: AudioModelError (one line naming the install command and
    the silence setting). Silence mode keeps working without it: only the early start goes."""
    from audio.errors import AudioModelError
    from audio.turn_end import SmartTurnDetector

    vad = config.settings.vad
    if vad.end_of_turn == "silence" and not vad.early_start:
        return TurnPolicy("silence", vad.turn_threshold, False, None)
    try:
        detector = SmartTurnDetector.load()
    except AudioModelError as exc:
        if vad.end_of_turn != "silence":
            raise AudioModelError(f'{exc}; or set [vad] end_of_turn = "silence"') from None
        log.warning("early start is off: %s", exc)
        return TurnPolicy("silence", vad.turn_threshold, False, None)
    return TurnPolicy(vad.end_of_turn, vad.turn_threshold, vad.early_start, detector)


def recorder_for(runtime: Runtime, emit: EventSink | None = None) -> TurnRecorder:
    """Keeps user audio and spoken replies in the runtime's dialogue log."""
    config = runtime.config
    return TurnRecorder(log=runtime.log, data_dir=config.data_dir(), keep_audio=config.settings.log.keep_audio, emit=emit)


def build_voice_loop(runtime: Runtime, *, stt: SpeechToText, tts: TextToSpeech, on_event: EventSink | None = None,
                     language: str | None = None, audio: AudioSettings | None = None,
                     vad: VoiceActivityDetector | None = None, policy: TurnPolicy | None = None) -> VoiceLoop:
    """A voice loop on ``runtime``'s engine; ``audio`` overrides ``[audio]`` (AudioSettings);
    ``policy`` the end of turn of ``[vad]`` (default: :func:`load_turn_policy`)."""
    config = runtime.config
    return VoiceLoop(
        runtime.engine,
        settings=audio or config.settings.audio,
        vad=vad or load_vad(config),
        stt=stt,
        tts=tts,
        recorder=recorder_for(runtime, on_event),
        on_event=on_event,
        language=listen_language(config, runtime.engine.persona, language),
        policy=policy or load_turn_policy(config),
    )
