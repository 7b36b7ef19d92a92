"""Normalisation of numbers, dates and units, and what is (not) read aloud."""

from __future__ import annotations

import pytest

from audio.normalize import detect_language, normalize, plural_ru
from audio.textprep import speakable, strip_markup, strip_reasoning
from tests.audio.wer import wer


@pytest.mark.parametrize(("written", "spoken"), [
    ("Встреча 12.03.2024.", "Встреча двенадцатое марта две тысячи двадцать четвёртого года."),
    ("Начало в 14:30.", "Начало в четырнадцать тридцать."),
    ("Ехать 5 км со скоростью 60 км/ч.", "Ехать пять километров со скоростью шестьдесят километров в час."),
    ("Скидка 21% на 2 кг.", "Скидка двадцать один процент на два килограмма."),
    ("Осталось 21 минута и 2 секунды.", "Осталось двадцать одна минута и две секунды."),
    ("Пи примерно 3,14.", "Пи примерно три целых четырнадцать сотых."),
    ("На улице -5 °C.", "На улице минус пять градусов Цельсия."),
    ("В 2024 году было 1-е место.", "В две тысячи двадцать четвёртом году было первое место."),
    ("Это было 9 мая 1945 г. Дом №7.", "Это было девятое мая тысяча девятьсот сорок пятого года. Дом номер семь."),
    ("Стоит 100 руб. в день или 11 $.", "Стоит сто рублей в день или одиннадцать долларов."),
    ("Весит 1,5 кг.", "Весит одна целая пять десятых килограмма."),
])
def test_russian_normalisation(written: str, spoken: str) -> None:
    assert normalize(written, "ru") == spoken


@pytest.mark.parametrize(("written", "spoken"), [
    ("It costs $5.", "It costs five dollars."),
    ("Pi is 3.14 and 50% of 12,345.", "Pi is three point one four and fifty percent of twelve thousand, three hundred and forty-five."),
    ("It was -3 today.", "It was minus three today."),
])
def test_english_normalisation(written: str, spoken: str) -> None:
    assert normalize(written, "en") == spoken


def test_language_is_detected_from_the_script() -> None:
    assert detect_language("Привет, это тест на 5 км") == "ru"
    assert detect_language("Hello, this is 5 km") == "en"
    assert normalize("Через 3 дня", "auto") == "Через три дня"


@pytest.mark.parametrize(("n", "form"), [(1, "рубль"), (2, "рубля"), (4, "рубля"), (5, "рублей"), (11, "рублей"),
                                         (12, "рублей"), (21, "рубль"), (22, "рубля"), (111, "рублей"), (0, "рублей")])
def test_russian_plural_agreement(n: int, form: str) -> None:
    assert plural_ru(n, "рубль", "рубля", "рублей") == form


def test_reasoning_is_never_spoken() -> None:
    assert strip_reasoning("<think>secret plan</think>Hello.").strip() == "Hello."
    assert strip_reasoning("Answer first. <think>unfinished").strip() == "Answer first."
    assert strip_reasoning("inner thoughts</think>Visible.").strip() == "Visible."


def test_markdown_code_links_and_emoji_are_not_read() -> None:
    text = ("# Итог 🎉\n**Важно**: запустите `pip` и откройте [сайт](https://example.org/x).\n"
            "```python\nprint('код')\n```\n- пункт один 😀\n- пункт *два*\n> цитата\n![img](a.png) <b>жирно</b>")
    out = strip_markup(text)
    assert out == "Итог. Важно: запустите pip и откройте сайт. пункт один. пункт два. цитата. жирно."
    for gone in ("#", "*", "`", "print", "http", "🎉", "😀", "[", "<b>", ">"):
        assert gone not in out


def test_speakable_keeps_written_and_spoken() -> None:
    said = speakable("<think>x</think>**Цена**: 5 руб. 👍", "auto")
    assert said.written == "<think>x</think>**Цена**: 5 руб. 👍"
    assert said.spoken == "Цена: пять рублей."
    assert speakable("```\ncode only\n```").spoken == ""


def test_wer_helper() -> None:
    assert wer("Привет, мир!", "привет мир") == 0.0
    assert wer("one two three four", "one too three") == 0.5
