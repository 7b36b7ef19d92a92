"""Spell out numbers, dates, times, percentages and units so a voice reads them right.

Russian uses num2words (lang="ru") with a thin layer on top for agreement
(«5 км» -> «пять километров», «21 минута» -> «двадцать одна минута») and dates
(«12.03.2024» -> «двенадцатое марта две тысячи двадцать четвёртого года»). English gets numbers,
decimals, percentages and currency.
"""

from __future__ import annotations

import re

from num2words import num2words

_MONTHS_GEN = ("января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа",
               "сентября", "октября", "ноября", "декабря")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")

# unit -> (one, few, many, gender); few = 2..4, many = 5..20 and 0
_RU_UNITS: dict[str, tuple[str, str, str, str]] = {
    "км/ч": ("километр в час", "километра в час", "километров в час", "m"),
    "км": ("километр", "километра", "километров", "m"),
    "м": ("метр", "метра", "метров", "m"),
    "см": ("сантиметр", "сантиметра", "сантиметров", "m"),
    "мм": ("миллиметр", "миллиметра", "миллиметров", "m"),
    "кг": ("килограмм", "килограмма", "килограммов", "m"),
    "г": ("грамм", "грамма", "граммов", "m"),
    "т": ("тонна", "тонны", "тонн", "f"),
    "л": ("литр", "литра", "литров", "m"),
    "мл": ("миллилитр", "миллилитра", "миллилитров", "m"),
    "ч": ("час", "часа", "часов", "m"),
    "мин": ("минута", "минуты", "минут", "f"),
    "сек": ("секунда", "секунды", "секунд", "f"),
    "с": ("секунда", "секунды", "секунд", "f"),
    "°C": ("градус Цельсия", "градуса Цельсия", "градусов Цельсия", "m"),
    "°С": ("градус Цельсия", "градуса Цельсия", "градусов Цельсия", "m"),
    "°": ("градус", "градуса", "градусов", "m"),
    "%": ("процент", "процента", "процентов", "m"),
    "руб": ("рубль", "рубля", "рублей", "m"),
    "₽": ("рубль", "рубля", "рублей", "m"),
    "коп": ("копейка", "копейки", "копеек", "f"),
    "$": ("доллар", "доллара", "долларов", "m"),
    "€": ("евро", "евро", "евро", "m"),
    "ГБ": ("гигабайт", "гигабайта", "гигабайт", "m"),
    "МБ": ("мегабайт", "мегабайта", "мегабайт", "m"),
}
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(_RU_UNITS, key=len, reverse=True))
_NUM = r"-?\d+(?:[.,]\d+)?"
_RU_UNIT_RE = re.compile(rf"(?<![\w.,])({_NUM})\s?({_UNIT_ALT})(\.?)(?![А-Яа-яЁёA-Za-z])")
_CONTINUES = re.compile(r"\s*[а-яёa-z,;:)]")
_FEMININE_STEMS = ("минут", "секунд", "тонн", "недел", "страниц", "строк", "задач", "ошибк", "копе",
                   "штук", "тысяч", "верси", "глав", "попытк", "причин", "част", "книг", "чашк")
_RU_CURRENCY_PREFIX = re.compile(r"([$€₽])\s?(\d+(?:[.,]\d+)?)")
_DATE_RE = re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b")
_DAY_MONTH_RE = re.compile(r"\b(\d{1,2})\s+(" + "|".join(_MONTHS_GEN) + r")\b")
_YEAR_RE = re.compile(r"\b(\d{3,4})\s*(?:г(\.?)|(год[уа]?|годом))(?![А-Яа-яЁё])")
_TIME_RE = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_ORDINAL_RE = re.compile(r"\b(\d+)-(й|я|е|го|му|м|ю|х|ми)\b")
_ORDINAL_CASE = {"й": ("nominative", "m"), "я": ("nominative", "f"), "е": ("nominative", "n"),
                 "го": ("genitive", "m"), "му": ("dative", "m"), "м": ("prepositional", "m"),
                 "ю": ("accusative", "f"), "х": ("genitive", "m"), "ми": ("instrumental", "m")}
_YEAR_CASE = {None: "genitive", "год": "nominative", "года": "genitive", "году": "prepositional", "годом": "instrumental"}
_NUMBER_RE = re.compile(r"(?<![\w.,])(-?)(\d+)(?:[.,](\d+))?(?![\w])")
_RU_SYMBOLS = {"№": " номер ", "&": " и ", "+": " плюс ", "=": " равно ", "×": " на "}
_EN_SYMBOLS = {"&": " and ", "+": " plus ", "=": " equals ", "%": " percent"}


def detect_language(text: str) -> str:
    """"ru" when the text has more Cyrillic than Latin letters, else "en"."""
    return "ru" if len(_CYRILLIC.findall(text)) >= max(1, len(_LATIN.findall(text))) else "en"


def normalize(text: str, language: str = "auto") -> str:
    """Text with numbers, dates and units spelled out for ``language`` (ru, en or auto)."""
    lang = detect_language(text) if language in ("", "auto") else language
    return normalize_ru(text) if lang == "ru" else normalize_en(text)


def plural_ru(n: int, one: str, few: str, many: str) -> str:
    """The Russian noun form for count ``n`` (1 километр, 2 километра, 5 километров)."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def ru_number(raw: str, gender: str = "m") -> str:
    """A number written with digits ("3,14", "-5", "21") as Russian words."""
    raw = raw.replace(",", ".")
    if "." in raw:
        return num2words(float(raw), lang="ru")
    return num2words(int(raw), lang="ru", gender=gender)


def _ru_unit(m: re.Match[str]) -> str:
    raw, unit, dot = m.group(1), m.group(2), m.group(3)
    one, few, many, gender = _RU_UNITS[unit]
    # an abbreviation's dot is dropped inside a sentence, kept when it also ends the sentence
    tail = "." if dot and not _CONTINUES.match(m.string, m.end()) else ""
    if re.search(r"[.,]", raw):
        return f"{ru_number(raw, gender)} {few}{tail}"  # a fraction takes the genitive singular
    return f"{ru_number(raw, gender)} {plural_ru(int(raw), one, few, many)}{tail}"


def _ru_date(m: re.Match[str]) -> str:
    day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)
    day_words = num2words(day, lang="ru", to="ordinal", gender="n")
    year_words = num2words(year, lang="ru", to="ordinal", case="genitive")
    return f"{day_words} {_MONTHS_GEN[month - 1]} {year_words} года"


def _ru_day_month(m: re.Match[str]) -> str:
    day = int(m.group(1))
    if not 1 <= day <= 31:
        return m.group(0)
    return f"{num2words(day, lang='ru', to='ordinal', gender='n')} {m.group(2)}"


def _ru_year(m: re.Match[str]) -> str:
    word, dot = m.group(3), m.group(2)
    if word is None and re.search(r"(?:^|\s)[вВ]о?\s*$", m.string[:m.start()]):
        word = "году"  # «в 1990 г.» is «в ... году»
    case = _YEAR_CASE.get(word, "genitive")
    tail = word or "года"
    if dot and not _CONTINUES.match(m.string, m.end()):
        tail += "."
    return f"{num2words(int(m.group(1)), lang='ru', to='ordinal', case=case)} {tail}"


def _ru_time(m: re.Match[str]) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    hours_w = num2words(hours, lang="ru")
    if minutes == 0:
        return f"{hours_w} {plural_ru(hours, 'час', 'часа', 'часов')} ровно"
    minutes_w = num2words(minutes, lang="ru", gender="f") if minutes >= 10 else f"ноль {num2words(minutes, lang='ru', gender='f')}"
    return f"{hours_w} {minutes_w}"


def _ru_ordinal(m: re.Match[str]) -> str:
    case, gender = _ORDINAL_CASE[m.group(2)]
    return num2words(int(m.group(1)), lang="ru", to="ordinal", case=case, gender=gender)


def _next_word_gender(text: str, pos: int) -> str:
    following = text[pos:pos + 20].lstrip().casefold()
    return "f" if following.startswith(_FEMININE_STEMS) else "m"


def _ru_plain(m: re.Match[str]) -> str:
    sign, whole, frac = m.group(1), m.group(2), m.group(3)
    words = ru_number(f"{whole}.{frac}" if frac else whole, _next_word_gender(m.string, m.end()))
    return f"минус {words}" if sign else words


def normalize_ru(text: str) -> str:
    """Russian text with dates, times, units, ordinals and numbers spelled out."""
    text = _DATE_RE.sub(_ru_date, text)
    text = _YEAR_RE.sub(_ru_year, text)
    text = _DAY_MONTH_RE.sub(_ru_day_month, text)
    text = _TIME_RE.sub(_ru_time, text)
    text = _RU_CURRENCY_PREFIX.sub(lambda m: f"{m.group(2)} {m.group(1)}", text)
    text = _RU_UNIT_RE.sub(_ru_unit, text)
    text = _ORDINAL_RE.sub(_ru_ordinal, text)
    text = _NUMBER_RE.sub(_ru_plain, text)
    for symbol, words in _RU_SYMBOLS.items():
        text = text.replace(symbol, words)
    return " ".join(text.split())


def _en_plain(m: re.Match[str]) -> str:
    sign, whole, frac = m.group(1), m.group(2), m.group(3)
    words = num2words(float(f"{whole}.{frac}") if frac else int(whole), lang="en")
    return f"minus {words}" if sign else words


def normalize_en(text: str) -> str:
    """English text with currency, percentages and numbers spelled out."""
    text = re.sub(r"\$(\d+(?:\.\d+)?)", lambda m: f"{m.group(1)} dollars", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 12,345 -> 12345
    text = re.sub(r"(?<![\w.,])(-?)(\d+)(?:\.(\d+))?(?!\w)", _en_plain, text)
    for symbol, words in _EN_SYMBOLS.items():
        text = text.replace(symbol, words)
    return " ".join(text.split())
