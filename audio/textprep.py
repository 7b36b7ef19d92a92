"""Turn a written reply into what a voice should say.

Reasoning (``<think>…</think>``), code blocks, Markdown markup, links, HTML and emoji are not read
aloud; numbers, dates and units are spelled out (:mod:`audio.normalize`). Both versions are kept
(:class:`SpokenText`) so the log records what was written and what was spoken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audio.normalize import normalize

_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_STRAY_THINK_END = re.compile(r"^.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCED = re.compile(r"(```|~~~).*?(?:\1|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]*)`")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+|www\.\S+")
_HTML = re.compile(r"</?[A-Za-z][^>]*>")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>+\s?", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}.*$", re.MULTILINE)
_SPACE_BEFORE_MARK = re.compile(r"\s+([.,!?…:;])")
_CITATION = re.compile(r"\s*\[\d+(?:\s*[,–-]\s*\d+)*\](?!\()")  # [1], [2, 3]: source numbers, never read aloud
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b00-\U00002bff"
    "\U0000fe0f\U0000200d\U000020e3\U0001f3fb-\U0001f3ff]+"
)


@dataclass(frozen=True)
class SpokenText:
    """A piece of a reply as written and as it will be spoken."""

    written: str
    spoken: str


def strip_reasoning(text: str) -> str:
    """Remove ``<think>`` blocks (an unclosed one runs to the end; a stray ``</think>`` ends one)."""
    text = _THINK.sub(" ", text)
    return _STRAY_THINK_END.sub(" ", text) if "</think>" in text.lower() else text


def _inline_code(m: re.Match[str]) -> str:
    body = m.group(1).strip()
    return body if re.fullmatch(r"[\w\s.-]{1,30}", body) and len(body.split()) <= 3 else " "


def strip_markup(text: str) -> str:
    """Remove Markdown, code, links, HTML and emoji, keeping the words a listener needs."""
    text = _FENCED.sub(" ", text)
    text = _INLINE_CODE.sub(_inline_code, text)
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _CITATION.sub("", text)
    text = _URL.sub(" ", text)
    text = _HTML.sub(" ", text)
    text = _TABLE_SEP.sub(" ", text)
    text = _RULE.sub(" ", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    for _ in range(2):  # nested emphasis (***bold italic***)
        text = _EMPHASIS.sub(r"\2", text)
    text = _EMOJI.sub(" ", text).replace("|", " ")
    return " ".join(_end_line(line) for line in text.splitlines() if line.strip())


def _end_line(line: str) -> str:
    """A line (heading, list item) as its own sentence, so the voice pauses after it."""
    line = _SPACE_BEFORE_MARK.sub(r"\1", " ".join(line.split()))
    return line if line[-1] in ".!?…:;," else line + "."


def speakable(text: str, language: str = "auto", normalise: bool = True) -> SpokenText:
    """The spoken form of ``text`` (empty when nothing in it should be read aloud)."""
    spoken = strip_markup(strip_reasoning(text))
    if normalise and spoken:
        spoken = normalize(spoken, language)
    return SpokenText(written=text, spoken=spoken)
