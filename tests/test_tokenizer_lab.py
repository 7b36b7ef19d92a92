"""The tokenizer lab on real SQLite logs: the starter SmolLM2 GGUF vocabulary (llama.cpp) beside
small tokenizers trained here (``tokenizers``), counts checked against the libraries themselves."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agent.cli.tokenize_cmd import tokenize
from agent.config_load import LoadedConfig
from agent.errors import UserError
from agent.instruments.tokenizer_corpus import CorpusFilters, script_language
from agent.instruments.tokenizer_lab import LabCancelled, measure
from agent.instruments.tokenizer_models import (
    TokenizerSource,
    find_tokenizers,
    load_vocabulary,
    scan_tokenizers,
)
from agent.llm.starter import STARTER_LLM, starter_llm_path
from agent.log import DialogueLog
from agent.records import UserTurnRecord
from tests.harvest_fixtures import reply

REPO = Path(__file__).resolve().parents[1]
DAY = 86_400.0
T0 = 1_790_000_000.0  # 2026-09-21
RUSSIAN = [
    "Я думаю, что бессознательное влияет на поведение.",
    "Бессознательное — это часть психики, которая не осознаётся.",
    "Почему сновидения так странно устроены?",
    "Сновидения показывают бессознательное желание.",
]
ENGLISH = [
    "I think the unconscious shapes behaviour.",
    "Dreams show an unconscious wish, don't they?",
    "Why are dreams so strange?\n\nTell me  more.",
    "The unconscious is a part of the mind: 42 pages.",
]


def train(folder: Path, name: str, *, metaspace: bool = False) -> Path:
    """A small BPE tokenizer (byte-level, or SentencePiece-style Metaspace) saved as folder/name/tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None if not metaspace else "<unk>", byte_fallback=metaspace))
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=False)
        tok.decoder = decoders.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], show_progress=False,
                                      initial_alphabet=[f"<0x{b:02X}>" for b in range(256)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator((RUSSIAN + ENGLISH) * 5, trainer)
    target = folder / name
    target.mkdir(parents=True)
    tok.save(str(target / "tokenizer.json"))
    return target


def write_log(path: Path) -> None:
    """Two conversations: typed Russian exchanges (persona 'психолог', day 0) and English ones
    (persona 'assistant', day 1), plus a voice turn in Latin letters that STT heard as Russian."""
    log = DialogueLog(path)
    ru = log.new_conversation(persona="психолог")
    for i in range(0, len(RUSSIAN), 2):
        user = log.add_user_turn(UserTurnRecord(ru, RUSSIAN[i], created_at=T0 + i))
        log.add_assistant_turn(reply(ru, user, RUSSIAN[i + 1], persona="психолог", created_at=T0 + i + 1))
    en = log.new_conversation(persona="assistant")
    for i in range(0, len(ENGLISH), 2):
        user = log.add_user_turn(UserTurnRecord(en, ENGLISH[i], created_at=T0 + DAY + i))
        log.add_assistant_turn(reply(en, user, ENGLISH[i + 1], created_at=T0 + DAY + i + 1))
    log.add_user_turn(UserTurnRecord(en, "Privet, kak dela?", source="voice", created_at=T0 + DAY + 10,
                                     stt={"language": "ru", "confidence": 0.8}))
    log.close()


@pytest.fixture
def lab(tmp_path: Path, make_config: Callable[..., LoadedConfig]) -> LoadedConfig:
    """A config whose log holds the turns above and whose models dir holds a byte-level BPE tokenizer."""
    write_log(tmp_path / "log.db")
    train(tmp_path / "models", "tiny-bpe")
    return make_config(f'models_dir = "{tmp_path / "models"}"\n[log]\npath = "{tmp_path / "log.db"}"\n')


def run(config: LoadedConfig, *args: str) -> Result:
    return CliRunner().invoke(tokenize, list(args), obj={"config": config}, catch_exceptions=True)


def exit_code(result: Result) -> int:
    """The exit status ``epistemic`` gives: a UserError's own code (the group's main turns it into one line)."""
    return result.exception.exit_code if isinstance(result.exception, UserError) else result.exit_code


def lab_json(config: LoadedConfig, *args: str) -> dict:
    result = run(config, "--corpus", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def exact_tokens(source: TokenizerSource, texts: list[str]) -> int:
    """Tokens of ``texts`` counted by the library itself, one whole text at a time."""
    if source.kind == "hf":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(source.path / "tokenizer.json"))
        return sum(len(tok.encode(text, add_special_tokens=False).ids) for text in texts)
    from llama_cpp import Llama

    llm = Llama(model_path=str(source.path), vocab_only=True, verbose=False)
    try:
        return sum(len(llm.tokenize(text.encode(), add_bos=False, special=False)) for text in texts)
    finally:
        llm.close()


def test_every_model_side_by_side_with_exact_counts(lab: LoadedConfig, tmp_path: Path) -> None:
    out = lab_json(lab)
    names = [m["name"] for m in out["models"]]
    assert names == [STARTER_LLM, "tiny-bpe"]
    ru, en = out["languages"]["ru"], out["languages"]["en"]
    assert (ru["turns"], en["turns"]) == (5, 4)  # the voice turn in Latin letters counts as Russian (STT said so)
    ru_texts = [*RUSSIAN, "Privet, kak dela?"]
    sources = [TokenizerSource(STARTER_LLM, "gguf", starter_llm_path(STARTER_LLM)),
               *scan_tokenizers(tmp_path / "models")]
    for source in sources:  # the lab's cached chunk sums equal the libraries' own whole-text counts
        assert ru["models"][source.name]["tokens"] == exact_tokens(source, ru_texts)
        assert en["models"][source.name]["tokens"] == exact_tokens(source, ENGLISH)
    words = sum(len(t.replace("—", "").replace(",", "").replace(".", "").replace("?", "").split()) for t in ru_texts)
    assert ru["words"] == words
    smol = ru["models"][STARTER_LLM]
    assert smol["tokens_per_word"] == pytest.approx(smol["tokens"] / words)
    assert smol["chars_per_token"] == pytest.approx(sum(map(len, ru_texts)) / smol["tokens"])
    # SmolLM2's English-centred vocabulary splits Russian into far more pieces than English
    assert smol["tokens_per_word"] > 2 * en["models"][STARTER_LLM]["tokens_per_word"]
    assert all(m["method"] == "chunks" and m["deviation"] == 0 for m in out["models"])


def test_worst_split_words_with_pieces_as_the_text_command_shows_them(lab: LoadedConfig) -> None:
    out = lab_json(lab, "--model", STARTER_LLM, "--top", "3")
    worst = out["worst"]["ru"]
    assert [w["word"] for w in worst][0] == "бессознательное"  # seen 3 times, 12+ tokens
    top = worst[0]
    assert top["count"] == 3 and all(w["count"] >= 2 for w in worst)
    pieces = top["models"][STARTER_LLM]["pieces"]
    assert len(pieces) == top["models"][STARTER_LLM]["tokens"]
    assert any("<0x" in p for p in pieces)  # a Cyrillic letter cut across two tokens
    shown = run(lab, "бессознательное", "--json")  # the existing command on the real model
    assert shown.exit_code == 0, shown.output
    assert [p["piece"] for p in json.loads(shown.stdout)] == pieces
    assert len(worst) <= 3 and "психики" not in [w["word"] for w in worst]  # seen once: not a candidate
    once = lab_json(lab, "--model", STARTER_LLM, "--min-count", "1", "--top", "100")
    assert once["min_count"] == 1 and "психики" in [w["word"] for w in once["worst"]["ru"]]
    assert "бессознательное" not in [w["word"] for w in lab_json(lab, "--model", "tiny-bpe", "--min-count", "4")["worst"]["ru"]]


def test_text_table_aligns_models_as_columns(lab: LoadedConfig) -> None:
    result = run(lab, "--corpus", "-q")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if STARTER_LLM in line and "tiny-bpe" in line and not line.startswith("#"))
    row = next(line for line in lines if line.strip().startswith("tokens/word"))
    assert len(row) == len(header) and row.rstrip()[-1].isdigit()
    assert header.index("tiny-bpe") + len("tiny-bpe") == len(header)
    assert any("words split worst" in line for line in lines)
    assert any("бессознательное (×3)" in line for line in lines)


def test_filters_select_turns(lab: LoadedConfig) -> None:
    hf = ("--model", "tiny-bpe")
    assert set(lab_json(lab, *hf, "--language", "en")["languages"]) == {"en"}
    users = lab_json(lab, *hf, "--role", "user")["languages"]
    assert (users["ru"]["turns"], users["en"]["turns"]) == (3, 2)
    assert lab_json(lab, *hf, "--source", "voice")["languages"]["ru"]["turns"] == 1
    assert lab_json(lab, *hf, "--persona", "психолог")["turns"] == 4
    assert lab_json(lab, *hf, "--since", _iso(T0 + DAY - 1))["turns"] == 5
    assert lab_json(lab, *hf, "--until", _iso(T0 + DAY - 1))["turns"] == 4


def _iso(when: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(when).isoformat()


def test_errors_are_one_line(lab: LoadedConfig, tmp_path: Path) -> None:
    for args, needle in [
        (("--corpus", "--log", str(tmp_path / "none.db")), "no dialogue log here"),
        (("--corpus", "--language", "de", "--model", "tiny-bpe"), "no logged turns in the language"),
        (("--corpus", "--persona", "nobody"), "no logged turns match"),
        (("--corpus", "--source", "radio"), "unknown --source 'radio'"),
        (("--corpus", "--since", "yesterday"), "--since 'yesterday'"),
        (("--corpus", "--role", "everyone"), "unknown --role"),
        (("--corpus", "--model", "missing"), "--model 'missing': no such tokenizer"),
        (("бессознательное", "--corpus"), "exactly one of them"),
        ((), "exactly one of them"),
        (("слово", "--persona", "x"), "--persona is a --corpus option"),
    ]:
        result = run(lab, *args)
        assert exit_code(result) == 2, (args, result.output)
        assert isinstance(result.exception, UserError) and needle in str(result.exception), args


def test_one_line_through_the_real_cli(lab: LoadedConfig, tmp_path: Path) -> None:
    env = os.environ | {"EPISTEMIC_CONFIG": str(tmp_path / "config.toml")}
    code = "from agent.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "tokenize", "--corpus", "--source", "radio"],
                          capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["epistemic: unknown --source 'radio'; choose one of voice, typed, file"]


def test_a_broken_model_is_reported_and_skipped(lab: LoadedConfig, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 5)  # header cut short
    (models / "bad-hf").mkdir()
    (models / "bad-hf" / "tokenizer.json").write_text("{not json", encoding="utf-8")
    result = run(lab, "--corpus", "--json", "--model", "broken.gguf", "--model", "bad-hf", "--model", "tiny-bpe")
    assert result.exit_code == 3
    out = json.loads(result.stdout)
    assert [m["name"] for m in out["models"]] == ["tiny-bpe"] and out["languages"]["ru"]["turns"] == 5
    assert {s["name"] for s in out["skipped"]} == {"broken.gguf", "bad-hf"}
    assert "file is truncated" in result.stderr and "not a readable Hugging Face tokenizer" in result.stderr
    only_broken = run(lab, "--corpus", "--model", "broken.gguf")
    assert exit_code(only_broken) == 3 and "no tokenizer could be loaded" in str(only_broken.exception)


def test_a_tokenizer_whose_chunks_do_not_add_up_is_measured_on_whole_turns(tmp_path: Path) -> None:
    write_log(tmp_path / "log.db")
    folder = train(tmp_path / "models", "spm-like", metaspace=True)  # "▁" before every chunk: sums overcount
    source = TokenizerSource("spm-like", "hf", folder)
    report = measure(tmp_path / "log.db", [source])
    (model,) = report.models
    assert model.method == "whole turns" and model.deviation > 0.01
    assert report.languages["en"].tokens["spm-like"] == exact_tokens(source, ENGLISH)
    word = next(w for w in report.worst["ru"] if w.word == "бессознательное")
    assert "".join(word.pieces["spm-like"]).strip() == "бессознательное"  # ▁ shown as a space


def test_reads_one_snapshot_while_the_log_is_written(tmp_path: Path) -> None:
    write_log(tmp_path / "log.db")
    folder = train(tmp_path / "models", "tiny-bpe")
    writer = DialogueLog(tmp_path / "log.db")
    conv = writer.new_conversation(persona="assistant")
    added: list[int] = []

    def progress(done: int, total: int) -> None:  # mid-run: the writer is not blocked
        added.append(writer.add_user_turn(UserTurnRecord(conv, "A new turn while the lab reads.")))

    report = measure(tmp_path / "log.db", [TokenizerSource("tiny-bpe", "hf", folder)], progress=progress)
    writer.close()
    assert added and report.turns_read == 9  # the turn written meanwhile is not in this snapshot
    again = measure(tmp_path / "log.db", [TokenizerSource("tiny-bpe", "hf", folder)])
    assert again.turns_read == 10


def test_unreadable_stt_json_falls_back_to_the_script(tmp_path: Path) -> None:
    write_log(tmp_path / "log.db")
    folder = train(tmp_path / "models", "tiny-bpe")
    with sqlite3.connect(tmp_path / "log.db") as raw:  # a row written by something else, half broken
        raw.execute("INSERT INTO turns (conversation_id, role, text, created_at, source, stt) "
                    "VALUES (1, 'user', 'Сломанная запись', 1.0, 'voice', '{not json')")
    report = measure(tmp_path / "log.db", [TokenizerSource("tiny-bpe", "hf", folder)], CorpusFilters(role="user"))
    assert report.languages["ru"].turns == 4 and report.turns == 6  # 3 typed + the voice one + this one


def test_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_bytes(b"just some bytes, not SQLite" * 100)
    folder = train(tmp_path / "models", "tiny-bpe")
    with pytest.raises(UserError, match="not a readable dialogue log"):
        measure(tmp_path / "notes.db", [TokenizerSource("tiny-bpe", "hf", folder)])


def test_finds_every_tokenizer_and_refuses_an_adapter(make_config: Callable[..., LoadedConfig], tmp_path: Path) -> None:
    import gguf

    models = tmp_path / "models"
    train(models, "tiny-bpe")
    (models / "smol").mkdir()
    (models / "smol" / "SmolLM2.gguf").symlink_to(starter_llm_path(STARTER_LLM))
    (models / "smol" / "mmproj-vision.gguf").write_bytes(b"GGUF")  # a vision projector: no vocabulary
    writer = gguf.GGUFWriter(str(models / "calm-lora.gguf"), "llama")
    writer.add_string("general.type", "adapter")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    found = find_tokenizers(make_config(f'models_dir = "{models}"\n'))
    assert [(s.name, s.kind) for s in found] == [(STARTER_LLM, "gguf"), ("smol/SmolLM2.gguf", "gguf"),
                                                  ("tiny-bpe", "hf")]
    with pytest.raises(UserError, match="a LoRA adapter, not a model"):  # asked for by path
        load_vocabulary(TokenizerSource("calm-lora.gguf", "gguf", models / "calm-lora.gguf"))
    vocab = load_vocabulary(found[1])
    try:
        assert vocab.count_batch(["Привет", "hello world"])[1] == 2
    finally:
        vocab.close()


def test_cancel_stops_between_batches(tmp_path: Path) -> None:
    write_log(tmp_path / "log.db")
    folder = train(tmp_path / "models", "tiny-bpe")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(LabCancelled):
        measure(tmp_path / "log.db", [TokenizerSource("tiny-bpe", "hf", folder)], CorpusFilters(), cancel=cancel)


def test_script_language() -> None:
    assert script_language("Привет, world") == "ru"
    assert script_language("Hello, мир") == "en"
    assert script_language("1234 !!") == "other"
