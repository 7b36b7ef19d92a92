"""Semantic end of turn: has the user finished speaking, or only paused?

:class:`SmartTurnDetector` runs pipecat's Smart Turn v3 (a Whisper-encoder classifier, ONNX,
multilingual, Russian included) on the last 8 s of an utterance and returns the probability that
the turn is complete. The model and its numpy feature extraction ship inside the ``pipecat-ai``
wheel; they are used as a starter asset, like the Whisper and Piper packages: found with
``importlib.util.find_spec`` (which does not run pipecat's ``__init__``) and the feature module
loaded by its file path, so none of pipecat's runtime dependencies is needed.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from audio.errors import AudioModelError
from audio.pcm import STT_RATE, to_float32

log = logging.getLogger(__name__)

PIPECAT_PACKAGE = "pipecat"
SMART_TURN_DIR = ("audio", "turn", "smart_turn")
SMART_TURN_ONNX = "smart-turn-v3.2-cpu.onnx"
FEATURES_FILE = "_whisper_features.py"
WINDOW_S = 8  # the model sees the last 8 s, zero-padded at the start
INSTALL_HINT = "pip install --no-deps pipecat-ai"


class TurnEndDetector(Protocol):
    """Tells how likely it is that an utterance (16 kHz mono) is a finished turn."""

    def probability(self, pcm16k: np.ndarray) -> float:
        """Probability (0..1) that the speaker has finished; blocking, call it off the UI thread."""
        ...


def smart_turn_dir(package: str = PIPECAT_PACKAGE) -> Path:
    """The folder of Smart Turn inside the installed pipecat-ai wheel, or AudioModelError."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AudioModelError(f"the Smart Turn model comes with the pipecat-ai wheel, which is not installed ({INSTALL_HINT})")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*SMART_TURN_DIR)


def smart_turn_model_path(package: str = PIPECAT_PACKAGE) -> Path:
    """The bundled ``smart-turn-v3.2-cpu.onnx``."""
    path = smart_turn_dir(package) / "data" / SMART_TURN_ONNX
    if not path.is_file():
        raise AudioModelError(f"{path}: Smart Turn model missing; reinstall it ({INSTALL_HINT})")
    return path


def load_features_module(folder: Path) -> ModuleType:
    """pipecat's numpy Whisper log-mel extraction, loaded by file path (no pipecat import)."""
    path = folder / FEATURES_FILE
    spec = importlib.util.spec_from_file_location("epistemic_smart_turn_features", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise AudioModelError(f"{path}: Smart Turn feature extraction missing; reinstall it ({INSTALL_HINT})")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "compute_whisper_log_mel_features"):
        raise AudioModelError(f"{path}: not the Smart Turn feature extraction this version expects")
    return module


def last_window(pcm16k: np.ndarray, seconds: int = WINDOW_S) -> np.ndarray:
    """The last ``seconds`` of audio, zero-padded at the start to exactly that length (float32)."""
    audio = to_float32(pcm16k)
    size = seconds * STT_RATE
    if len(audio) >= size:
        return audio[-size:]
    return np.pad(audio, (size - len(audio), 0))


class SmartTurnDetector:
    """Smart Turn v3 behind :class:`TurnEndDetector`.

    Any thread may call :meth:`probability` (the listener calls it from the capture thread);
    ``_lock`` serialises calls into the ONNX session, which is not documented as re-entrant.
    """

    def __init__(self, session: object, features: ModuleType, model_path: Path) -> None:
        self._session = session
        self._features = features
        self.model_path = model_path
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_path: Path | None = None, *, threads: int = 2, package: str = PIPECAT_PACKAGE) -> SmartTurnDetector:
        """Load the bundled model (or ``model_path``); AudioModelError with one line on failure."""
        import onnxruntime as ort  # type: ignore[import-untyped]

        folder = smart_turn_dir(package)
        path = model_path or smart_turn_model_path(package)
        if not path.is_file():
            raise AudioModelError(f"{path}: Smart Turn model file not found")
        features = load_features_module(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AudioModelError(f"{path}: cannot load the Smart Turn model: {first}") from None
        log.info("Smart Turn model %s loaded", path.name)
        return cls(session, features, path)

    def probability(self, pcm16k: np.ndarray) -> float:
        """Probability that the turn is complete, from the last 8 s of ``pcm16k``."""
        window = last_window(pcm16k)
        mel = self._features.compute_whisper_log_mel_features(window, do_normalize=True)
        with self._lock:
            outputs = self._session.run(None, {"input_features": np.expand_dims(mel, 0)})  # type: ignore[attr-defined]
        return float(np.asarray(outputs[0]).ravel()[0])
