"""Personas: who the model is in a conversation (system prompt, language, sampler, LoRA, voice).

Three sources, later ones overriding earlier ones by name: the built-in personas shipped with
the package, the TOML files of ``[chat] personas_dir``, and ``[personas.NAME]`` tables in the
config file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config import PersonaSettings
from agent.config_load import LoadedConfig
from agent.config_types import type_problems
from agent.errors import ConfigError
from agent.llm.sampler import SamplerSettings


@dataclass(frozen=True)
class Persona:
    """A resolved persona with its effective sampler settings."""

    name: str
    settings: PersonaSettings
    source: str

    @property
    def description(self) -> str:
        return self.settings.description

    @property
    def system_prompt(self) -> str:
        return self.settings.system_prompt

    @property
    def language(self) -> str:
        return self.settings.language

    @property
    def retrieve(self) -> str:
        """What each turn retrieves: none, knowledge, memory or both."""
        return self.settings.retrieve

    def sampler(self, base: SamplerSettings) -> SamplerSettings:
        """``base`` with this persona's overrides applied."""
        try:
            return base.merged(self.settings.sampler)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{self.source}: persona {self.name!r} sampler.{key}: {err['msg']}") from None


def _from_table(name: str, table: dict[str, Any], source: str) -> Persona:
    table = {k: v for k, v in table.items() if k != "name"}
    sampler = table.get("sampler")
    problems = type_problems(SamplerSettings, sampler) if isinstance(sampler, dict) else []
    if problems:
        key, _, reason = problems[0]
        raise ConfigError(f"{source}: persona {name!r}: sampler.{key.strip('.')}: {reason}")
    try:
        settings = PersonaSettings.model_validate(table)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ConfigError(f"{source}: persona {name!r}: {key}: {reason}") from None
    persona = Persona(name=name, settings=settings, source=source)
    persona.sampler(SamplerSettings())  # validate overrides now, not mid-conversation
    return persona


def _read_file(path: Path) -> Persona:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read persona file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _from_table(str(table.get("name") or path.stem), table, str(path))


def _builtin() -> list[Persona]:
    folder = resources.files("agent") / "personas_builtin"
    personas = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            table = tomllib.loads(entry.read_text(encoding="utf-8"))
            personas.append(_from_table(str(table.get("name") or entry.name[:-5]), table, "built-in"))
    return personas


class PersonaBook:
    """All personas available under a configuration, by name."""

    def __init__(self, config: LoadedConfig) -> None:
        self._personas: dict[str, Persona] = {p.name: p for p in _builtin()}
        folder = config.resolve(config.settings.chat.personas_dir)
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                persona = _read_file(path)
                self._personas[persona.name] = persona
        source = str(config.file) if config.file else "config"
        for name, settings in config.settings.personas.items():
            self._personas[name] = Persona(name=name, settings=settings, source=source)
            self._personas[name].sampler(SamplerSettings())
        self.default_name = config.settings.chat.persona
        if self.default_name not in self._personas:
            raise ConfigError(f"{source}: chat.persona = {self.default_name!r}: no such persona; known: {', '.join(self.names())}")

    def names(self) -> list[str]:
        return sorted(self._personas)

    def all(self) -> list[Persona]:
        return [self._personas[n] for n in self.names()]

    def get(self, name: str | None = None) -> Persona:
        """The persona called ``name`` (the configured default when None)."""
        name = name or self.default_name
        try:
            return self._personas[name]
        except KeyError:
            raise ConfigError(f"unknown persona {name!r}; known: {', '.join(self.names())}") from None
