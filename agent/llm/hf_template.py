"""A model folder's own chat template and special tokens, read as transformers reads them.

Where the template comes from, first found wins: ``chat_template.jinja``, ``chat_template.json``
(``{"chat_template": ...}``), then ``tokenizer_config.json``'s ``chat_template`` (a string, or a list
of named templates of which ``default`` is used). Special tokens (``bos_token`` ...) come from
``tokenizer_config.json`` and ``special_tokens_map.json``; the tokens that end a reply from
``generation_config.json`` and ``config.json`` (``eos_token_id``, int or list) plus the EOS token.
Rendering goes through :func:`agent.llm.chat_template.render_chat_template`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import ModelError
from agent.llm.chat_template import render_chat_template

log = logging.getLogger(__name__)

SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


@dataclass(frozen=True)
class HfChatTemplate:
    """The chat template of one model folder, ready to render."""

    template: str
    source: str  # file name the template came from
    special_tokens: dict[str, Any] = field(default_factory=dict)
    stop_token_ids: tuple[int, ...] = ()

    def render(self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True, **extra: Any) -> str:
        """Render ``messages`` exactly as ``tokenizer.apply_chat_template(..., tokenize=False)`` would."""
        return render_chat_template(
            self.template, messages, add_generation_prompt=add_generation_prompt,
            special_tokens=self.special_tokens, **extra,
        )


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: not readable JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def _token_text(value: Any) -> str | None:
    """A special token as written in tokenizer_config.json: a string or an AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _pick_template(value: Any, where: Path) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        if "default" in named:
            return named["default"]
        raise ModelError(f"{where}: several chat templates ({', '.join(map(str, named))}) and none named 'default'")
    return None


def find_template(folder: Path) -> tuple[str, str]:
    """(template text, file name) of ``folder``; ModelError when the folder has none."""
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8"), jinja.name
    for name in ("chat_template.json", "tokenizer_config.json"):
        text = _pick_template(_read_json(folder / name).get("chat_template"), folder / name)
        if text:
            return text, name
    raise ModelError(
        f"{folder}: the model has no chat template (looked for chat_template.jinja, chat_template.json and "
        "tokenizer_config.json's chat_template); use an instruction-tuned model or add its template"
    )


def special_tokens(folder: Path) -> dict[str, Any]:
    """``bos_token``, ``eos_token`` ... as transformers passes them to the template."""
    found: dict[str, Any] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # later file wins, as in transformers
        data = _read_json(folder / name)
        for key in SPECIAL_KEYS:
            text = _token_text(data.get(key))
            if text is not None:
                found[key] = text
        extra = data.get("additional_special_tokens")
        if isinstance(extra, list):
            found["additional_special_tokens"] = [t for t in map(_token_text, extra) if t is not None]
    return found


def token_ids_by_text(folder: Path) -> dict[str, int]:
    """Added (special) tokens' text -> id, from tokenizer_config.json and tokenizer.json."""
    ids: dict[str, int] = {}
    tok = _read_json(folder / "tokenizer.json")
    for entry in tok.get("added_tokens") or ():
        if isinstance(entry, dict) and isinstance(entry.get("content"), str):
            ids[entry["content"]] = int(entry["id"])
    decoder = _read_json(folder / "tokenizer_config.json").get("added_tokens_decoder") or {}
    for key, entry in decoder.items():
        text = _token_text(entry)
        if text is not None and str(key).isdigit():
            ids[text] = int(key)
    return ids


def _as_ids(value: Any) -> list[int]:
    if isinstance(value, int):
        return [value]
    return [v for v in value if isinstance(v, int)] if isinstance(value, list) else []


def stop_token_ids(folder: Path, specials: dict[str, Any] | None = None) -> tuple[int, ...]:
    """Token ids that end a reply: generation_config/config ``eos_token_id`` and the EOS token."""
    ids: list[int] = []
    for name in ("generation_config.json", "config.json"):
        ids += _as_ids(_read_json(folder / name).get("eos_token_id"))
    eos = (specials if specials is not None else special_tokens(folder)).get("eos_token")
    if isinstance(eos, str):
        token = token_ids_by_text(folder).get(eos)
        if token is not None:
            ids.append(token)
    return tuple(dict.fromkeys(ids))


def load_chat_template(folder: str | Path) -> HfChatTemplate:
    """Read the chat template, special tokens and stop tokens of a model folder."""
    path = Path(folder)
    if not path.is_dir():
        raise ModelError(f"{path}: model folder not found")
    template, source = find_template(path)
    specials = special_tokens(path)
    stops = stop_token_ids(path, specials)
    log.debug("chat template of %s from %s; stop tokens %s", path, source, stops)
    return HfChatTemplate(template=template, source=source, special_tokens=specials, stop_token_ids=stops)
