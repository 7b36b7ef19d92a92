"""Render a model's own Jinja chat template exactly as transformers' ``apply_chat_template`` does.

Same environment (sandboxed, ``trim_blocks``, ``lstrip_blocks``, loop controls), the same
``tojson`` filter and ``raise_exception`` / ``strftime_now`` globals, and the ``{% generation %}``
block tag (rendered as its body). Used by every backend that has no template support of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from agent.errors import ModelError


class _GenerationTag(Extension):
    """``{% generation %}…{% endgeneration %}``: marks assistant text for training; renders its body."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller: Any) -> str:
        return caller()


def _raise(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=16)
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(template)


def render_chat_template(
    template: str,
    messages: Sequence[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    special_tokens: dict[str, str] | None = None,
    **extra: Any,
) -> str:
    """Render ``messages`` (``{"role", "content"}`` dicts) with ``template``.

    ``special_tokens`` supplies ``bos_token``, ``eos_token`` and the like, as transformers passes
    its tokenizer's special tokens map. Raises ModelError with the template's own message when the
    template refuses the conversation (e.g. roles that do not alternate).
    """
    try:
        compiled = _compile(template)
    except jinja2.TemplateSyntaxError as exc:
        raise ModelError(f"the model's chat template is not valid Jinja (line {exc.lineno}): {exc.message}") from None
    try:
        return compiled.render(
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            **(special_tokens or {}),
            **extra,
        )
    except jinja2.TemplateError as exc:
        raise ModelError(f"the model's chat template refused the conversation: {exc}") from None
