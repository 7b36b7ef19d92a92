"""GPU tests: collected everywhere, run only where torch sees CUDA (marker ``gpu``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    cuda = _cuda()
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gpu)
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False)"))


@pytest.fixture(scope="session")
def record():
    """Append a measured number to $GPU_RESULTS (JSON lines) for the check's closing table."""
    path = os.environ.get("GPU_RESULTS")

    def write(name: str, value: float | str, target: str = "") -> None:
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"name": name, "value": value, "target": target}) + "\n")

    return write
