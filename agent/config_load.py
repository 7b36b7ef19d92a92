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
from agent.config_types import KEY, TEXT_TYPES, field_annotation, type_problems, value_problems
from agent.errors import ConfigError, one_line
from audio.paths import APP_NAME

ENV_PREFIX = "EPISTEMIC_"
MAX_SHOWN = 60  # characters of a bad value shown in a message
MODEL_SUFFIXES = (".onnx", ".bin")  # a model value ending so is a path even when the file is missing
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

    def resolve_model(self, value: str) -> str:
        """A model or voice value from the config: a path made absolute (relative to the config
        file), a name (``whisper-base``, ``base``) kept as it is; empty stays empty."""
        if not value:
            return value
        path = self.resolve(value)
        looks_like_path = value.startswith((".", "~", "/")) or Path(value).suffix in MODEL_SUFFIXES
        return str(path) if looks_like_path or path.exists() else value

    def with_values(self, section: str, source: str, **values: Any) -> LoadedConfig:
        """A copy with ``values`` set in ``section`` (validated), their source recorded as ``source``."""
        current = getattr(self.settings, section)
        try:
            updated = type(current).model_validate({**current.model_dump(), **values})
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join([section, *(str(p) for p in err["loc"])])
            raise ConfigError(one_line(f"{source}: {key} = {_shown(err.get('input'))}: {err['msg']}")) from None
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
        raise ConfigError(one_line(f"{path}: cannot read config file: {exc}")) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(one_line(f"{path}: not valid TOML: {exc}")) from None


NONE_WORDS = ("", "none", "null")


def parse_literal(raw: str) -> Any:
    """A value typed by a person (env override, ``/set``, the sampler panel) as Python: a one-line
    TOML value (number, boolean, string, array, inline table); '', 'none' or 'null' -> None;
    anything else is kept as the text itself."""
    text = raw.strip()
    if text.lower() in NONE_WORDS:
        return None
    if "\n" in text or "\r" in text:
        return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _env_overrides(env: Mapping[str, str]) -> dict[str, tuple[list[str], Any]]:
    """``EPISTEMIC_<SECTION>__<KEY>`` variables as (key path, value); a malformed name is an error."""
    out: dict[str, tuple[list[str], Any]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue  # EPISTEMIC_CONFIG, EPISTEMIC_CACHE_DIR ... are not config keys
        match = _ENV_KEY.match(name)
        if not match:
            raise ConfigError(one_line(
                f"env {name}: not a config key: write EPISTEMIC_<SECTION>__<KEY> in capitals, "
                "e.g. EPISTEMIC_LLM__BACKEND"))
        keys = [match.group(1).lower(), *match.group(2).lower().split("__")]
        out[name] = (keys, _env_value(raw, field_annotation(keys)))
    return out


def _env_value(raw: str, annotation: Any) -> Any:
    """A text setting gets the variable's text as it is (a model named '123', a persona named
    'true'); any other is read as a TOML value ('7', '0.5', '["END"]', 'none'), which pydantic
    then checks ('yes' is a boolean to it)."""
    if annotation in TEXT_TYPES:
        return raw
    return parse_literal(raw)


def _set_path(tree: dict[str, Any], keys: list[str], value: Any, name: str, file: Path | None) -> None:
    node = tree
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = f"{file}: " if file else ""
            raise ConfigError(one_line(
                f"env {name}: cannot set {'.'.join(keys)}: {where}{'.'.join(keys[:depth + 1])} = "
                f"{_shown(child)} is not a table"))
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
    except (OSError, UnicodeDecodeError):
        return None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[]").strip()
        elif current == section and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return number
    return None


def _source_of(dotted: str, sources: dict[str, str]) -> str | None:
    """Where ``dotted`` (or the closest key above or below it) was set: a file or ``env NAME``."""
    if dotted in sources:
        return sources[dotted]
    return next((s for k, s in sources.items() if k.startswith(dotted + ".") or dotted.startswith(k + ".")), None)


def _problem(dotted: str, shown: str, reason: str, sources: dict[str, str], file: Path | None) -> str:
    """One line: ``FILE:LINE: key = value: reason`` or ``env NAME: key = value: reason``."""
    source = _source_of(dotted, sources)
    if source and source.startswith("env "):
        return one_line(f"{source}: {dotted}{shown}: {reason}")
    where = str(file) if file else "config"
    line = _line_of(file, dotted) if file else None
    return one_line(f"{where}{f':{line}' if line else ''}: {dotted}{shown}: {reason}")


def _shown(value: Any) -> str:
    """A value as the message shows it: its repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _equals(value: Any) -> str:
    return "" if value is KEY else f" = {_shown(value)}"


def _describe_error(err: Mapping[str, Any], sources: dict[str, str], file: Path | None) -> str:
    dotted = ".".join(str(p) for p in err["loc"])
    reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
    value = err.get("input")
    hidden = err["type"] in ("extra_forbidden", "missing") or isinstance(value, dict)
    return _problem(dotted, "" if hidden else f" = {_shown(value)}", reason, sources, file)


def _raise_first(problems: list[str]) -> None:
    if problems:
        more = len(problems) - 1
        raise ConfigError(problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""))


def load_config(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Load and validate the configuration; raise ConfigError (exit 2) with file, key and reason."""
    env = os.environ if env is None else env
    file = find_config_file(explicit, env)
    tree: dict[str, Any] = _parse_file(file) if file else {}
    sources = {dotted: str(file) for dotted, _ in _walk(tree)} if file else {}
    # unknown keys are pydantic's to name; TOML integers are 64-bit by the TOML spec
    file_problems = value_problems(tree, keys=False) + type_problems(Settings, tree)
    _raise_first([_problem(d, _equals(v), why, sources, file) for d, v, why in file_problems])
    for name, (keys, value) in _env_overrides(env).items():
        _set_path(tree, keys, value, name, file)
        sources[".".join(keys)] = f"env {name}"
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        _raise_first([_describe_error(err, sources, file) for err in exc.errors()])
        raise  # not reached: a ValidationError has at least one error
    _raise_first([_problem(d, _equals(v), why, sources, file) for d, v, why in value_problems(settings.model_dump())])
    return LoadedConfig(settings=settings, file=file, sources=sources)


def effective_values(loaded: LoadedConfig) -> list[tuple[str, Any, str]]:
    """(key, value, source) for every setting, for ``epistemic config show``."""
    rows = []
    for dotted, value in _walk(loaded.settings.model_dump(mode="json")):
        rows.append((dotted, value, loaded.sources.get(dotted, "default")))
    return rows
