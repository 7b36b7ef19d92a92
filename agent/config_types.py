"""What the configuration models accept, checked before and after pydantic validates them.

pydantic's lax mode converts ``"4096"`` to 4096 and ``1`` to True; in a TOML file those are type
mistakes, so :func:`type_problems` holds file values to their TOML types. Environment variables are
always text, so they are converted by pydantic (see :mod:`agent.config_load`). After validation
:func:`value_problems` refuses what no setting can use: NaN and infinities, integers beyond 64
bits, text with a NUL character.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator, Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from agent.config import PersonaSettings, Settings
from agent.llm.sampler import SamplerSettings

Problem = tuple[str, Any, str]  # (dotted key, value, what is wrong)
INT64 = 1 << 63
TEXT_TYPES = (str, str | None)  # settings whose environment value is taken as plain text
# free-form tables whose keys are still settings of a model (a persona's sampler overrides)
_TABLE_MODELS: dict[tuple[type[BaseModel], str], type[BaseModel]] = {(PersonaSettings, "sampler"): SamplerSettings}
_SCALARS: dict[Any, str] = {bool: "a boolean (true/false)", int: "an integer", float: "a number", str: "a string"}


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _alternatives(annotation: Any) -> tuple[Any, ...] | None:
    """The members of a union (``X | None``), without None; None when not a union."""
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(a for a in get_args(annotation) if a is not type(None))
    return None


def field_annotation(keys: list[str], model: type[BaseModel] = Settings) -> Any | None:
    """The annotation of the setting at ``keys`` (e.g. ``["llm", "threads"]``); None if unknown."""
    annotation: Any = model
    for key in keys:
        if _is_model(annotation):
            field = annotation.model_fields.get(key)
            if field is None:
                return None
            annotation = _TABLE_MODELS.get((annotation, key), field.annotation)
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return None
    return annotation


def _scalar_ok(annotation: Any, value: Any) -> bool | None:
    """Whether a TOML value has the type of a scalar field; None: not a scalar (pydantic decides)."""
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return None


def _expected(annotation: Any) -> str:
    alternatives = _alternatives(annotation) or (annotation,)
    return " or ".join(_SCALARS.get(a, "a list" if get_origin(a) is tuple else str(a)) for a in alternatives)


def _problems(annotation: Any, value: Any, dotted: str) -> Iterator[Problem]:
    if _is_model(annotation):
        if isinstance(value, Mapping):
            for key, item in value.items():
                field = annotation.model_fields.get(key)
                if field is not None:  # unknown keys are pydantic's to report
                    inner = _TABLE_MODELS.get((annotation, key), field.annotation)
                    yield from _problems(inner, item, f"{dotted}{key}.")
        return
    dotted = dotted.rstrip(".")
    alternatives = _alternatives(annotation)
    if alternatives is not None:
        if all(list(_problems(a, value, dotted)) for a in alternatives):
            yield (dotted, value, f"wrong type: expected {_expected(annotation)}, got {_toml_type(value)}")
        return
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and isinstance(value, Mapping):
        for key, item in value.items():
            yield from _problems(args[1], item, f"{dotted}.{key}.")
    elif origin is tuple and isinstance(value, list) and args:
        for index, item in enumerate(value):
            yield from _problems(args[0] if args[-1] is Ellipsis else args[min(index, len(args) - 1)],
                                 item, f"{dotted}.{index}.")
    elif _scalar_ok(annotation, value) is False:
        yield (dotted, value, f"wrong type: expected {_expected(annotation)}, got {_toml_type(value)}")


def _toml_type(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def type_problems(model: type[BaseModel], tree: Mapping[str, Any]) -> list[Problem]:
    """Values in a parsed TOML tree whose TOML type does not match their setting's type."""
    return list(_problems(model, tree, ""))


KEY = object()  # the "value" of a problem with a key itself


def value_problems(dumped: Any, dotted: str = "", *, keys: bool = True) -> list[Problem]:
    """Values no setting can use (in a parsed file or ``model_dump()`` output): NaN, infinities,
    integers beyond 64 bits, text with a NUL character (in values, and in keys if ``keys``)."""
    found: list[Problem] = []
    if isinstance(dumped, Mapping):
        for key, item in dumped.items():
            if keys and isinstance(key, str) and "\0" in key:
                found.append((f"{dotted}{key}", KEY, "a key with a NUL character"))
            found += value_problems(item, f"{dotted}{key}.", keys=keys)
    elif isinstance(dumped, list | tuple):
        for index, item in enumerate(dumped):
            found += value_problems(item, f"{dotted}{index}.", keys=keys)
    elif isinstance(dumped, float) and not math.isfinite(dumped):
        found.append((dotted.rstrip("."), dumped, "not a finite number"))
    elif isinstance(dumped, int) and not isinstance(dumped, bool) and not -INT64 <= dumped < INT64:
        found.append((dotted.rstrip("."), dumped, "integer out of range (64 bits)"))
    elif isinstance(dumped, str) and "\0" in dumped:
        found.append((dotted.rstrip("."), dumped, "text with a NUL character"))
    return found
