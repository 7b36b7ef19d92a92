"""Words for the lexical index: lower case, ё as е, Russian and English Snowball stems.

SQLite FTS5's tokenizers don't stem Russian, so the store indexes the stemmed words produced
here and queries with the same function: "книги", "книгу" and "книгой" all meet at "книг".
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from agent.knowledge.errors import require

WORD = re.compile(r"[^\W_]+", re.UNICODE)
CYRILLIC = re.compile(r"[а-я]")
STOP_WORDS = frozenset(
    "a an and are as at be by do does for from how in is it of on or the to was were what when where "
    "which who why with you your i me my we our can did about into this that these those there "
    "и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее мне "
    "было вот от меня еще нет о из ему теперь когда даже ну ли если уже или ни быть был него до вас "
    "нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их "
    "чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой "
    "какая какие каков какое сколько зачем почему ли это эта эти мой моя".split()
)
_lock = threading.Lock()


@lru_cache(maxsize=2)
def _stemmer(language: str) -> Any:
    snowball = require("snowballstemmer", "stemming")
    return snowball.stemmer(language)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The Snowball stem of one lower-case word (Russian for Cyrillic, English otherwise)."""
    language = "russian" if CYRILLIC.search(word) else "english"
    with _lock:  # Snowball stemmer objects keep state between calls
        return str(_stemmer(language).stemWord(word))


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (ё folded into е), stop words kept."""
    return WORD.findall(text.lower().replace("ё", "е"))


def index_terms(text: str) -> str:
    """The stems of every word of ``text``, space separated: what the FTS5 table stores."""
    return " ".join(stem(w) for w in words(text))


def query_stems(text: str) -> list[str]:
    """The distinct stems of the query's content words (stop words left out), in order."""
    return list(dict.fromkeys(stem(w) for w in words(text) if w not in STOP_WORDS))


def match_expression(stems: list[str]) -> str | None:
    """An FTS5 MATCH expression for any of ``stems``; None if there are none."""
    return " OR ".join(f'"{s}"' for s in stems) if stems else None


def query_terms(text: str) -> str | None:
    """The FTS5 MATCH expression of a query: any of its stemmed content words."""
    return match_expression(query_stems(text))
