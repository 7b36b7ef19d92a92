"""A command module that needs an optional extra at import time (for tests/test_cli_imports.py)."""

from __future__ import annotations

import click
import torch  # noqa: F401  (the [gpu]/[train] extras install it)


@click.command()
@click.option("--epochs", type=int, default=1)
def train(epochs: int) -> None:
    """Train something with torch."""
