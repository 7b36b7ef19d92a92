"""Tokenizer lab speed on a synthetic dialogue log (half Russian, half English).

Builds a log of N turns (default 100,000; Zipf-distributed word forms: Russian stems with
endings, English words with suffixes, numbers and punctuation, so the log has tens of thousands
of distinct words like a real one), a models folder with a byte-level BPE tokenizer trained here
(tokenizer.json), and measures, for the starter SmolLM2 GGUF vocabulary (llama.cpp) and that
tokenizer:

- the lab (``agent.instruments.tokenizer_lab.measure``, both models, worst-split list included),
  end to end, and each model's own tokenizer time inside it;
- the raw library on the same turn texts: a loop calling it once per turn, and for the
  ``tokenizers`` model also its own batch call (``encode_batch_fast``, parallel Rust).

Prints turns/s per model and the ratio lab/bare, the total against the target, and how far the
lab's token totals are from the bare loop's (it counts cached pre-tokenizer chunks).

    .venv/bin/python bench/bench_tokenize.py [--turns 100000] [--keep DIR]

Target: 100,000 turns in under 60 s in total.
"""

from __future__ import annotations

import argparse
import logging
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_S = 60.0
RU_STEMS = ("бессознательн сознан мысл чувств разговор вопрос ответ памят внимани понимани представлени "
            "отношени рассуждени объяснени переживани ощущени восприяти воспоминани сновидени желани "
            "интерес решени задач работ модел язык слов голос человек психик поведени смысл знани "
            "опыт образ случа причин следстви развити движени измерени значени существовани").split()
RU_ENDINGS = ("", "а", "у", "ом", "е", "ы", "ов", "ам", "ами", "ах", "ое", "ого", "ому", "ым", "ие", "ия", "ий", "ях")
RU_SMALL = "я ты он она мы вы они и в на не что это как но да нет так уже ещё очень когда потому почему".split()
EN_WORDS = ("think mind thought feel talk question answer memory attention understand model language word "
            "voice person behaviour meaning knowledge experience image reason develop measure value exist "
            "unconscious conscious perception dream wish interest decide task work").split()
EN_SUFFIXES = ("", "s", "ing", "ed", "ly", "ness", "ful", "less", "ation", "er")
EN_SMALL = "i you he she we they and in on not that this how but yes no so already very when because why".split()


def _forms() -> tuple[list[str], list[str]]:
    ru = [s + e for s in RU_STEMS for e in RU_ENDINGS]
    en = [w + s for w in EN_WORDS for s in EN_SUFFIXES]
    return ru, en


def _sentence(rng: random.Random, forms: list[str], small: list[str], weights: list[float]) -> str:
    words = []
    for _ in range(rng.randint(5, 25)):
        if rng.random() < 0.35:
            words.append(rng.choice(small))
        elif rng.random() < 0.04:
            words.append(str(rng.randint(0, 9999)))
        else:
            words.append(rng.choices(forms, weights)[0])
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice((".", "?", "!", "...", ", правда?" if forms[0][0] > "z" else ", right?"))


def texts(turns: int, seed: int = 7) -> Iterator[str]:
    """``turns`` texts: odd ones Russian, even ones English."""
    rng = random.Random(seed)
    ru, en = _forms()
    ru_w = [1 / (i + 1) for i in range(len(ru))]
    en_w = [1 / (i + 1) for i in range(len(en))]
    rng.shuffle(ru)
    rng.shuffle(en)
    for i in range(turns):
        yield _sentence(rng, ru, RU_SMALL, ru_w) if i % 2 else _sentence(rng, en, EN_SMALL, en_w)


def build_log(path: Path, turns: int) -> None:
    """A log of ``turns`` turns (user turns typed, replies by one persona), written in one transaction."""
    from agent.log import DialogueLog

    DialogueLog(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conversations = max(1, turns // 10)
    conn.executemany("INSERT INTO conversations (id, persona, started_at, updated_at) VALUES (?, 'assistant', ?, ?)",
                     ((c, 1.7e9 + c, 1.7e9 + c) for c in range(1, conversations + 1)))
    conn.executemany(
        "INSERT INTO turns (id, conversation_id, role, text, created_at, parent_id, source, persona) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ((i, (i - 1) // 10 + 1, "user" if i % 4 in (1, 2) else "assistant", text, 1.7e9 + i, None,
          "typed" if i % 4 in (1, 2) else None, None if i % 4 in (1, 2) else "assistant")
         for i, text in enumerate(texts(turns), start=1)))
    conn.execute("COMMIT")
    conn.close()


def train_tokenizer(folder: Path) -> Path:
    """A 2,000-token byte-level BPE tokenizer trained on a sample of the same kind of text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts(5000, seed=99), trainer)
    target = folder / "tiny-bpe"
    target.mkdir(parents=True, exist_ok=True)
    tok.save(str(target / "tokenizer.json"))
    return target


def bare(log: Path, sources: list) -> dict[str, dict[str, tuple[float, int]]]:
    """Per model: seconds and tokens of the raw library on the same turn texts: a loop calling it once
    per text, and for a tokenizers model also its own batch call (``encode_batch_fast``)."""
    conn = sqlite3.connect(f"{log.resolve().as_uri()}?mode=ro", uri=True)
    all_texts = [row[0] for row in conn.execute("SELECT text FROM turns ORDER BY id")]
    conn.close()
    out: dict[str, dict[str, tuple[float, int]]] = {}
    for source in sources:
        if source.kind == "gguf":
            from llama_cpp import Llama

            from agent.llm.llamacpp.load import route_llama_logs, stderr_into_log

            route_llama_logs()
            with stderr_into_log():
                llm = Llama(model_path=str(source.path), vocab_only=True, n_ctx=64, verbose=False)
            started = time.perf_counter()
            tokens = sum(len(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)) for t in all_texts)
            out[source.name] = {"loop": (time.perf_counter() - started, tokens)}
            llm.close()
            continue
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(source.path / "tokenizer.json"))
        started = time.perf_counter()
        tokens = sum(len(tok.encode(t, add_special_tokens=False).ids) for t in all_texts)
        loop = (time.perf_counter() - started, tokens)
        started = time.perf_counter()
        tokens = sum(len(e.ids) for e in tok.encode_batch_fast(all_texts, add_special_tokens=False))
        out[source.name] = {"loop": loop, "batch": (time.perf_counter() - started, tokens)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Work folder to keep (default: a temporary one).")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # llama.cpp's warnings about a vocabulary-only context
    from agent.instruments.tokenizer_lab import measure
    from agent.instruments.tokenizer_models import TokenizerSource, scan_tokenizers
    from agent.llm.starter import STARTER_LLM, starter_llm_path

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-tokenize-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.db"
    if not log.exists():
        began = time.perf_counter()
        build_log(log, args.turns)
        print(f"built a log of {args.turns} turns in {time.perf_counter() - began:.1f}s")
    if not (work / "models").exists():
        train_tokenizer(work / "models")
    sources = [TokenizerSource(STARTER_LLM, "gguf", starter_llm_path(STARTER_LLM)), *scan_tokenizers(work / "models")]
    report = measure(log, sources)
    baseline = bare(log, sources)
    print(f"lab: {report.turns} turns, {len(sources)} models, {report.seconds:.1f}s in total "
          f"(target < {TARGET_S:.0f}s: {'met' if report.seconds < TARGET_S else 'MISSED'})")
    for result in report.models:
        lab_tokens = sum(row.tokens[result.name] for row in report.languages.values())
        line = (f"  {result.name:<24} lab {report.turns / result.seconds:>9,.0f} turns/s ({result.seconds:.1f}s, "
                f"{result.method})")
        for kind, (seconds, tokens) in baseline[result.name].items():
            line += (f"  bare {kind} {report.turns / seconds:>9,.0f} turns/s ({seconds:.1f}s), "
                     f"ratio {seconds / result.seconds:.1f}x, tokens lab/bare {lab_tokens / tokens:.4f}")
        print(line)
    for lang, row in sorted(report.languages.items()):
        cells = "  ".join(f"{m.name} {row.tokens_per_word(m.name) or 0:.2f} tok/word" for m in report.models)
        print(f"  {lang}: {row.turns} turns, {row.words} words; {cells}")


if __name__ == "__main__":
    main()
