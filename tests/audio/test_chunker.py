"""SentenceChunker: sentences come out as soon as they end, in Russian and English."""

from __future__ import annotations

import pytest

from audio.chunker import SentenceChunker, sentences


def pieces(text: str, size: int = 3) -> list[str]:
    """Split text the way a tokenizer might (fixed-size pieces cut words and tags apart)."""
    return [text[i:i + size] for i in range(0, len(text), size)]


@pytest.mark.parametrize("size", [1, 3, 7])
def test_russian_punctuation_abbreviations_and_numbers(size: int) -> None:
    text = ("Привет! Как дела? Число пи равно 3.14, а е — примерно 2,71. Это, т. е. пример. "
            "А. С. Пушкин жил в г. Москва. Цена 5 руб. в день. «Кто там?» — спросил он. Всё…")
    assert list(sentences(pieces(text, size))) == [
        "Привет!", "Как дела?", "Число пи равно 3.14, а е — примерно 2,71.", "Это, т. е. пример.",
        "А. С. Пушкин жил в г. Москва.", "Цена 5 руб. в день.", "«Кто там?» — спросил он.", "Всё…",
    ]


@pytest.mark.parametrize("size", [1, 4])
def test_english_abbreviations_decimals_and_mixed_marks(size: int) -> None:
    text = "Hello there. Dr. Smith paid $3.50, e.g. for tea. Really?! Yes. J. R. R. Tolkien wrote it."
    assert list(sentences(pieces(text, size))) == [
        "Hello there.", "Dr. Smith paid $3.50, e.g. for tea.", "Really?!", "Yes.", "J. R. R. Tolkien wrote it.",
    ]


def test_first_sentence_is_yielded_before_the_rest_arrives() -> None:
    chunker = SentenceChunker()
    out: list[str] = []
    for piece in ["Это первое ", "предложение. ", "А это вто"]:
        out += chunker.feed(piece)
    assert out == ["Это первое предложение."]
    assert chunker.feed("рое. И") == ["А это второе."]
    assert chunker.flush() == ["И"]


def test_lists_and_paragraphs_are_separate_sentences() -> None:
    text = "Список:\n1. Первый пункт\n2. Второй пункт\n\nConclusion"
    assert list(sentences(pieces(text))) == ["Список:", "1. Первый пункт", "2. Второй пункт", "Conclusion"]


@pytest.mark.parametrize("size", [1, 2, 5])
def test_reasoning_is_kept_apart_and_never_yielded(size: int) -> None:
    chunker = SentenceChunker()
    text = "<think>Пользователь спросил. Ответ: 42.</think>Ответ — сорок два. Вот так."
    out = [s for p in pieces(text, size) for s in chunker.feed(p)] + chunker.flush()
    assert out == ["Ответ — сорок два.", "Вот так."]
    assert chunker.reasoning == "Пользователь спросил. Ответ: 42."


def test_reply_that_starts_inside_reasoning() -> None:
    chunker = SentenceChunker(in_reasoning=True)
    assert chunker.feed("hmm, thinking. </think>Done. Next") == ["Done."]
    assert chunker.flush() == ["Next"]
    assert "thinking" in chunker.reasoning


def test_a_long_run_without_punctuation_is_cut_at_a_comma() -> None:
    text = "слово, " * 80
    out = list(sentences([text], max_chars=100))
    assert len(out) > 3 and all(len(s) <= 100 for s in out)
    assert " ".join(out).split() == text.split()


def test_markup_only_pieces_yield_nothing() -> None:
    assert list(sentences(["---\n", "```\n", "**", "\n"])) == []
