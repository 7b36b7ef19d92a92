"""Where the program keeps its files: the one home of the app name and the cache folder.

``audio`` is the bottom of the dependency chain (tui -> agent -> audio), so the other packages
import these from here rather than defining their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "epistemic-engine"
CACHE_ENV = "EPISTEMIC_CACHE_DIR"


def cache_dir() -> Path:
    """Folder for caches (joined starter models, file hashes): ``$EPISTEMIC_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
