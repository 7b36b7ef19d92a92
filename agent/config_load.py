"""Find, parse, override and validate the configuration, remembering where each value came from.

Order (later wins): built-in defaults, the config file, ``EPISTEMIC_<SECTION>__<KEY>`` environment
variables. The file is ``--config PATH``, else ``$EPISTEMIC_CONFIG``, else ``./config.toml``,
else ``<user config dir>/config.toml``; none at all is fine (defaults).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import ValidationError

from agent.config import Settings
from agent.errors import ConfigError

APP_NAME = "epistemic-engine"
ENV_PREFIX = "EPISTEMIC_"
_ENV_KEY = re.compile(r"^EPISTEMIC_([A-Z0-9_]+?)__([A-Z0-9_]+(?:__[A-Z0-9_]+)*)$")


@dataclass(frozen=True)
class LoadedConfig:
    """Validated settings plus provenance: ``sources["llm.backend"]`` says where a value came from."""

    settings: Settings
    file: Path | None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """Folder that relative paths in the config are resolved against."""
        return self.file.parent if self.file else Path.cwd()

    def resolve(self, path: str) -> Path:
        """A config path made absolute (``~`` expanded, relative to the config file)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def with_values(self, section: str, source: str, **values: Any) -> LoadedConfig:
        """A copy with ``values`` set in ``section`` (validated), their source recorded as ``source``."""
        current = getattr(self.settings, section)
        updated = type(current).model_validate({**current.model_dump(), **values})
        settings = self.settings.model_copy(update={section: updated})
        sources = {**self.sources, **{f"{section}.{key}": source for key in values}}
        return LoadedConfig(settings=settings, file=self.file, sources=sources)

    def data_dir(self) -> Path:
        """The user data folder (dialogue log, recorded audio, exports)."""
        if self.settings.paths.data_dir:
            return self.resolve(self.settings.paths.data_dir)
        return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))

    def log_path(self) -> Path:
        """The dialogue database file."""
        if self.settings.log.path:
            return self.resolve(self.settings.log.path)
        return self.data_dir() / "dialogues.sqlite3"


def find_config_file(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None when there is none (defaults only)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (given with --config)")
        return path.resolve()
    if env.get("EPISTEMIC_CONFIG"):
        path = Path(env["EPISTEMIC_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (named by EPISTEMIC_CONFIG)")
        return path.resolve()
    for candidate in (Path.cwd() / "config.toml", Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def _parse_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _env_value(raw: str) -> Any:
    """Parse an env value as a TOML value (numbers, booleans, arrays) or keep it as a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[list[str], Any]]:
    out: dict[str, tuple[list[str], Any]] = {}
    for name, raw in env.items():
        match = _ENV_KEY.match(name)
        if match:
            keys = [match.group(1).lower(), *match.group(2).lower().split("__")]
            out[name] = (keys, _env_value(raw))
    return out


def _set_path(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _walk(tree: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value and not dotted.endswith((".sampler", "token_bias")):
            items.extend(_walk(value, dotted + "."))
        else:
            items.append((dotted, value))
    return items


def _line_of(path: Path, dotted: str) -> int | None:
    """Best-effort line number of ``dotted`` (section.key) in a TOML file."""
    section, _, key = dotted.rpartition(".")
    current = ""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[]").strip()
        elif current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return None


def _describe_error(err: dict[str, Any], sources: dict[str, str], file: Path | None) -> str:
    loc = [str(p) for p in err["loc"]]
    dotted = ".".join(loc)
    source = sources.get(dotted)
    if source is None:  # error on a section or a nested value: find the closest known key
        source = next((s for k, s in sources.items() if k.startswith(dotted + ".") or dotted.startswith(k + ".")), None)
    reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    value = err.get("input")
    shown = "" if err["type"] in ("extra_forbidden", "missing") or isinstance(value, dict) else f" = {value!r}"
    if source and source.startswith("env "):
        return f"{source}: {dotted}{shown}: {reason}"
    where = str(file) if file else "config"
    line = _line_of(file, dotted) if file else None
    return f"{where}{f':{line}' if line else ''}: {dotted}{shown}: {reason}"


def load_config(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load and validate the configuration; raise ConfigError (exit 2) with file, key and reason."""
    env = os.environ if env is None else env
    file = find_config_file(explicit, env)
    tree: dict[str, Any] = _parse_file(file) if file else {}
    sources = {dotted: str(file) for dotted, _ in _walk(tree)} if file else {}
    for name, (keys, value) in _env_overrides(env).items():
        _set_path(tree, keys, value)
        sources[".".join(keys)] = f"env {name}"
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = _describe_error(first, sources, file)
        more = len(exc.errors()) - 1
        raise ConfigError(message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")) from None
    return LoadedConfig(settings=settings, file=file, sources=sources)


def effective_values(loaded: LoadedConfig) -> list[tuple[str, Any, str]]:
    """(key, value, source) for every setting, for ``epistemic config show``."""
    rows = []
    for dotted, value in _walk(loaded.settings.model_dump(mode="json")):
        rows.append((dotted, value, loaded.sources.get(dotted, "default")))
    return rows
