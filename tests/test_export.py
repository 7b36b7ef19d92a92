"""Dataset export on real SQLite logs: formats load with ``datasets``, curation shapes the rows,
splits never share a conversation, duplicates and PII are removed, and the export reads one
snapshot while the app keeps writing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.harvest import curation
from agent.harvest.export.options import ExportOptions, Filters
from agent.harvest.export.run import export
from agent.log import DialogueLog
from tests.harvest_fixtures import conversation, exchange, varied_log, write_wav


def run_export(log_path: Path, out: Path, fmt: str = "sft", **options: object) -> object:
    filters = options.pop("filters", Filters())
    return export(ExportOptions(fmt, out, filters, **options), log_path)  # type: ignore[arg-type]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_rows(out: Path, ext: str = "jsonl") -> list[dict]:
    return [r for p in sorted((out / "data").glob(f"*.{ext}")) for r in rows(p)]


def test_sft_rows_curation_card_and_manifest(tmp_path: Path) -> None:
    log = DialogueLog(tmp_path / "log.db")
    conv = log.new_conversation(persona="assistant")
    _, first = exchange(log, conv, "What is 2+2?", "Five.", reasoning="Add them.")
    _, second = exchange(log, conv, "Sure?", "Yes, four.", reasoning="Check.")
    _, cut = exchange(log, conv, "Tell a story", "Once upon a time there", interrupted=True,
                      stop_reason="cancelled", heard_text="Once upon")
    _, failed = exchange(log, conv, "Again", "", stop_reason="error", error="boom")
    curation.edit(log, first, "Four.")
    log.close()

    report = run_export(tmp_path / "log.db", tmp_path / "out", seed=1, split=(1.0, 0.0, 0.0))
    (row,) = rows(tmp_path / "out" / "data" / "train.jsonl")
    contents = [(m["role"], m["content"]) for m in row["messages"]]
    assert contents == [("user", "What is 2+2?"), ("assistant", "Four."),  # the edit, its reasoning gone
                        ("user", "Sure?"), ("assistant", "<think>\nCheck.\n</think>\n\nYes, four.")]
    assert [p["turn_id"] for p in row["provenance"]] == [first, second]
    assert row["provenance"][0]["edited"] and row["provenance"][1]["model_hash"] == "abc123"
    assert json.loads(row["provenance"][1]["sampler_json"])["temperature"] == 0.7
    assert report.removed["interrupted reply"] == 1 and report.removed["reply failed"] == 1  # type: ignore[attr-defined]

    heard = run_export(tmp_path / "log.db", tmp_path / "heard", split=(1.0, 0.0, 0.0),
                       filters=Filters(interrupted="heard", reasoning=False))
    (row,) = rows(tmp_path / "heard" / "data" / "train.jsonl")
    assert [m["content"] for m in row["messages"] if m["role"] == "assistant"] == ["Four.", "Yes, four.", "Once upon"]
    assert heard.removed["reply failed"] == 1 and failed not in [p["turn_id"] for p in row["provenance"]]  # type: ignore[attr-defined]
    assert cut in [p["turn_id"] for p in row["provenance"]]

    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlanguage:") and "task_categories:\n- \"text-generation\"" in card
    assert "size_categories:\n- \"n<1K\"" in card and "path: \"data/train.jsonl\"" in card
    assert "| interrupted reply | 1 |" in card and "| tiny-model | 2 |" in card
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"] == {"data/train.jsonl": 1}
    assert set(manifest["files"]) == {"README.md", "data/train.jsonl"}
    assert manifest["log"]["turns"] == 8 and manifest["log"]["schema_version"] >= 4
    import hashlib
    assert manifest["files"]["data/train.jsonl"] == hashlib.sha256((tmp_path / "out" / "data" / "train.jsonl").read_bytes()).hexdigest()
    for path in [tmp_path / "out", *(tmp_path / "out").rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path


@pytest.mark.parametrize("fmt", ["sft", "sharegpt", "dpo", "kto", "parquet"])
def test_every_text_format_loads_with_datasets(tmp_path: Path, fmt: str) -> None:
    from datasets import load_dataset

    log = varied_log(tmp_path / "log.db", conversations=12)
    for conv in range(1, 13):
        replies = [t for t in log.conversation_turns(conv) if t.role == "assistant"]
        user = replies[0].parent_id
        again = log.add_assistant_turn(_alt(conv, user, replies[0].id, f"A better answer {conv}."))
        curation.rate(log, replies[0].id, "bad", "too terse")
        curation.rate(log, again, "good")
        curation.edit(log, replies[1].id, f"Because, friend, {conv} is what it is.")
    log.close()
    report = run_export(tmp_path / "log.db", tmp_path / "out", fmt, split=(0.5, 0.25, 0.25), seed=3)
    ext = "parquet" if fmt == "parquet" else "json"
    files = {split: str(tmp_path / "out" / path) for path in report.rows for split in [path.split("/")[1].split(".")[0]]}  # type: ignore[attr-defined]
    loaded = load_dataset(ext, data_files=files)
    total = sum(len(loaded[s]) for s in loaded)
    assert total == sum(report.rows.values()) > 0  # type: ignore[attr-defined]
    first = loaded[next(iter(loaded))][0]
    expected = {"sft": "messages", "sharegpt": "conversations", "dpo": "chosen", "kto": "label", "parquet": "turn_ids"}
    assert expected[fmt] in first
    if fmt == "dpo":
        kinds = {r["provenance"]["pair"] for s in loaded for r in loaded[s]}
        assert kinds == {"edit", "preferred", "rating"} - {"preferred"}
        assert total == 24  # 12 rating pairs + 12 edit pairs
    if fmt == "kto":
        assert sorted(r["label"] for s in loaded for r in loaded[s]) == [False] * 12 + [True] * 12
    if fmt == "sharegpt":
        info = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
        assert {e["formatting"] for e in info.values()} == {"sharegpt"}
        assert first["conversations"][0]["from"] == "human"


def _alt(conv: int, user: int | None, of: int, text: str):  # type: ignore[no-untyped-def]
    from tests.harvest_fixtures import reply

    return reply(conv, user, text, alternative_of=of)


def test_preferred_alternative_wins_and_makes_pairs(tmp_path: Path) -> None:
    log = DialogueLog(tmp_path / "log.db")
    conv = log.new_conversation(persona="assistant")
    user, first = exchange(log, conv, "Name a colour", "Blue.")
    second = log.add_assistant_turn(_alt(conv, user, first, "Red."))
    curation.prefer(log, first)
    log.close()
    run_export(tmp_path / "log.db", tmp_path / "sft", split=(1.0, 0.0, 0.0))
    (row,) = rows(tmp_path / "sft" / "data" / "train.jsonl")
    assert row["messages"][-1]["content"] == "Blue."
    run_export(tmp_path / "log.db", tmp_path / "dpo", "dpo", split=(1.0, 0.0, 0.0))
    (pair,) = rows(tmp_path / "dpo" / "data" / "train.jsonl")
    assert (pair["chosen"][0]["content"], pair["rejected"][0]["content"]) == ("Blue.", "Red.")
    assert pair["prompt"] == [{"role": "user", "content": "Name a colour"}]
    assert pair["provenance"]["rejected_turn_id"] == second


def test_split_is_by_conversation_and_deterministic(tmp_path: Path) -> None:
    varied_log(tmp_path / "log.db", conversations=60).close()
    run_export(tmp_path / "log.db", tmp_path / "a", seed=7, split=(0.6, 0.2, 0.2))
    run_export(tmp_path / "log.db", tmp_path / "b", seed=7, split=(0.6, 0.2, 0.2))
    run_export(tmp_path / "log.db", tmp_path / "c", seed=8, split=(0.6, 0.2, 0.2))
    splits = {s: {r["conversation_id"] for r in rows(tmp_path / "a" / "data" / f"{s}.jsonl")}
              for s in ("train", "validation", "test")}
    assert all(splits.values())
    assert not (splits["train"] & splits["validation"] or splits["train"] & splits["test"]
                or splits["validation"] & splits["test"])
    assert sum(len(s) for s in splits.values()) == 60
    assert (tmp_path / "a" / "data" / "test.jsonl").read_bytes() == (tmp_path / "b" / "data" / "test.jsonl").read_bytes()
    other = {r["conversation_id"] for r in rows(tmp_path / "c" / "data" / "test.jsonl")}
    assert other != splits["test"]


def test_exact_and_near_duplicates_removed(tmp_path: Path) -> None:
    log = DialogueLog(tmp_path / "log.db")
    base = "The quick brown fox jumps over the lazy dog near the quiet river bank today"
    conversation(log, [("Tell me about the fox", base)])
    conversation(log, [("Tell me about the fox", base)])  # exact copy
    conversation(log, [("tell me  about the FOX", base + ".")])  # case, spaces, one dot
    conversation(log, [("Tell me about the fox", base.replace("today", "yesterday"))])  # near copy
    conversation(log, [("Something else entirely", "A completely different reply about sailing boats.")])
    log.close()
    exact = run_export(tmp_path / "log.db", tmp_path / "exact", split=(1.0, 0.0, 0.0), dedupe="exact")
    assert exact.removed["exact duplicate"] == 1 and len(all_rows(tmp_path / "exact")) == 4  # type: ignore[attr-defined]
    near = run_export(tmp_path / "log.db", tmp_path / "near", split=(1.0, 0.0, 0.0), dedupe="near", near_threshold=0.7)
    assert near.removed["exact duplicate"] == 1 and near.removed["near duplicate"] == 2  # type: ignore[attr-defined]
    assert len(all_rows(tmp_path / "near")) == 2
    assert "| near duplicate | 2 |" in (tmp_path / "near" / "README.md").read_text()
    none = run_export(tmp_path / "log.db", tmp_path / "none", split=(1.0, 0.0, 0.0), dedupe="none")
    assert len(all_rows(tmp_path / "none")) == 5 and not none.removed  # type: ignore[attr-defined]


def test_pii_scrubbed_and_counted(tmp_path: Path) -> None:
    from agent.harvest.export.pii import Scrubber, luhn_ok

    log = DialogueLog(tmp_path / "log.db")
    conversation(log, [("Мой номер +7 (916) 123-45-67, почта ivan.petrov@mail.ru",
                        "Записал: 8 916 123 45 67 и карта 4111 1111 1111 1111; заказ 4111 1111 1111 1112.")])
    log.close()
    report = run_export(tmp_path / "log.db", tmp_path / "out", split=(1.0, 0.0, 0.0), scrub_pii=True)
    (row,) = all_rows(tmp_path / "out")
    user, answer = row["messages"][0]["content"], row["messages"][1]["content"]
    assert user == "Мой номер <PHONE>, почта <EMAIL>"
    assert answer == "Записал: <PHONE> и карта <CARD>; заказ 4111 1111 1111 1112."
    assert dict(report.facts.pii) == {"phone": 2, "email": 1, "card": 1}  # type: ignore[attr-defined]
    assert "- phone: 2 replaced" in (tmp_path / "out" / "README.md").read_text()
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert Scrubber()("8-916-123-45-67 или +1 415 555 0100") == "<PHONE> или <PHONE>"
    assert Scrubber()("в 2024 году, код 123456") == "в 2024 году, код 123456"


def test_filters_and_exclusions(tmp_path: Path) -> None:
    log = DialogueLog(tmp_path / "log.db")
    a, (ra,) = conversation(log, [("Привет", "Здравствуйте")])
    b = log.new_conversation(persona="pirate")
    exchange(log, b, "Ahoy", "Arr", persona="pirate", model_id="other",
             user={"source": "voice", "stt": {"language": "en"}})
    c, (rc,) = conversation(log, [("Skip me", "Skipped")])
    d, (rd,) = conversation(log, [("Bad one", "Rated bad")])
    curation.exclude(log, "conversation", c)
    curation.rate(log, rd, "bad")
    curation.tag(log, a, "keep")
    log.close()
    def ids(**f: object) -> set[int]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        run_export(tmp_path / "log.db", out, split=(1.0, 0.0, 0.0), filters=Filters(**f))  # type: ignore[arg-type]
        return {r["conversation_id"] for r in all_rows(out)}
    assert ids() == {a, b}
    assert ids(min_rating="bad") == {a, b, d}
    assert ids(min_rating="good") == set()
    assert ids(personas=("pirate",)) == {b} == ids(models=("other",)) == ids(sources=("voice",)) == ids(languages=("en",))
    assert ids(tags=("keep",)) == {a}
    assert ids(since=1e12) == set()


def test_snapshot_while_the_app_keeps_writing(tmp_path: Path) -> None:
    varied_log(tmp_path / "log.db", conversations=300).close()
    writer = DialogueLog(tmp_path / "log.db")
    stop, written = threading.Event(), []

    def keep_writing() -> None:
        while not stop.is_set():
            conv = writer.new_conversation(persona="assistant")
            written.append(exchange(writer, conv, f"late {conv}", f"late answer {conv}")[1])

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        while len(written) < 3:
            time.sleep(0.001)
        grew: list[bool] = []

        def progress(_: object) -> None:  # called inside the export, its read snapshot open
            if grew:
                return
            before, deadline = len(written), time.monotonic() + 30
            while len(written) < before + 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            grew.append(len(written) >= before + 3)

        report = export(ExportOptions("sft", tmp_path / "out", Filters(), split=(1.0, 0.0, 0.0)),
                        tmp_path / "log.db", progress=progress)
    finally:
        stop.set()
        thread.join()
        writer.close()
    snapshot = report.identity  # type: ignore[attr-defined]
    exported = all_rows(tmp_path / "out")
    assert grew == [True]  # the writer kept committing while the export held its snapshot
    # every conversation of the snapshot that had turns (the newest may have been created, turns not yet)
    assert snapshot.conversations - 1 <= len(exported) <= snapshot.conversations
    assert max(p["turn_id"] for r in exported for p in r["provenance"]) <= snapshot.max_turn_id
    # each exchange is two turns; the snapshot may end on a late user turn whose reply came after it
    assert snapshot.turns - 1 <= sum(len(r["provenance"]) for r in exported) * 2 <= snapshot.turns


def test_corrupt_row_skipped_and_counted(tmp_path: Path) -> None:
    import sqlite3

    varied_log(tmp_path / "log.db", conversations=3).close()
    with sqlite3.connect(tmp_path / "log.db") as conn:
        conn.execute("UPDATE turns SET sampler = '{broken' WHERE id = 2")
    report = run_export(tmp_path / "log.db", tmp_path / "out", split=(1.0, 0.0, 0.0))
    assert report.removed["corrupt row (unreadable JSON)"] == 1  # type: ignore[attr-defined]
    assert sum(len(r["provenance"]) for r in all_rows(tmp_path / "out")) == 5


def speech_export(tmp_path: Path) -> object:
    data = tmp_path / "data"
    log = DialogueLog(data / "log.db")
    for i, (lang, rate, channels) in enumerate([("ru", 16_000, 1), ("ru", 22_050, 2), ("en", 16_000, 1)]):
        conv = log.new_conversation(persona="assistant")
        write_wav(data / "audio" / f"u{i}.wav", 0.5 + i * 0.25, rate, channels)
        user, _ = exchange(log, conv, f"heard {i}", f"reply {i}",
                           user={"source": "voice", "audio_path": f"audio/u{i}.wav", "stt": {"language": lang}})
        if i == 1:
            curation.correct_transcript(log, user, "what was really said")
    conv = log.new_conversation(persona="assistant")
    exchange(log, conv, "gone", "x", user={"source": "voice", "audio_path": "audio/missing.wav"})
    exchange(log, conv, "typed", "y")
    log.close()
    return export(ExportOptions("speech", tmp_path / "out", split=(1.0, 0.0, 0.0), data_dir=data), data / "log.db")


def test_speech_export_audiofolder_layout(tmp_path: Path) -> None:
    import soundfile

    report = speech_export(tmp_path)
    assert report.removed["audio file missing"] == 1  # type: ignore[attr-defined]
    assert report.facts.extra["utterances per language"] == {"ru": 2, "en": 1}  # type: ignore[attr-defined]
    assert report.facts.extra["total duration (s)"] == pytest.approx(0.5 + 0.75 + 1.0, abs=0.01)  # type: ignore[attr-defined]
    folder = tmp_path / "out" / "data" / "train"
    meta = rows(folder / "metadata.jsonl")
    assert sorted(m["transcription"] for m in meta) == ["heard 0", "heard 2", "what was really said"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["metadata.jsonl", *(m["file_name"] for m in meta)])
    for m in meta:
        info = soundfile.info(str(folder / m["file_name"]))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert info.frames / 16_000 == pytest.approx(m["duration_s"], abs=0.002)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "- \"automatic-speech-recognition\"" in card and "language:\n- \"en\"\n- \"ru\"" in card


def test_speech_export_loads_as_audiofolder(tmp_path: Path) -> None:
    import soundfile
    from datasets import Audio, load_dataset

    speech_export(tmp_path)
    data = tmp_path / "out" / "data"
    loaded = load_dataset("audiofolder", data_dir=str(data), features=_audiofolder_features(data))["train"]
    loaded = loaded.cast_column("audio", Audio(decode=False))  # decoding needs torchcodec: soundfile reads them
    meta = {m["turn_id"]: m for m in rows(data / "train" / "metadata.jsonl")}
    assert len(loaded) == len(meta) == 3
    for row in loaded:
        expected = meta[row["turn_id"]]
        assert row["transcription"] == expected["transcription"] and row["corrected"] == expected["corrected"]
        assert Path(row["audio"]["path"]).name == expected["file_name"]
        samples, rate = soundfile.read(row["audio"]["path"], dtype="int16")
        assert rate == 16_000 and samples.ndim == 1 and len(samples) / rate == pytest.approx(expected["duration_s"], abs=0.002)
    assert sorted(loaded["transcription"]) == ["heard 0", "heard 2", "what was really said"]


def _audiofolder_features(data: Path) -> object:
    """None where torchcodec imports (audiofolder's own features); else the same features with an
    Audio feature that stores file paths without torchcodec.

    datasets >= 4 imports torchcodec in ``Audio.encode_example`` even for a file path it keeps as is,
    and only a CUDA torchcodec wheel exists for this machine, so audiofolder cannot build any audio
    dataset here; everything else (finding the WAV files, joining metadata.jsonl, the splits) is
    datasets' own code."""
    import importlib.util

    from datasets import Audio, Features, load_dataset

    if importlib.util.find_spec("torchcodec") is not None:
        try:
            import torchcodec.encoders  # noqa: F401
            return None
        except (ImportError, OSError, RuntimeError):
            pass

    class PathAudio(Audio):
        def encode_example(self, value: object) -> dict:
            return {"bytes": None, "path": value} if isinstance(value, str) else super().encode_example(value)

    meta = load_dataset("json", data_files=str(data / "train" / "metadata.jsonl"))["train"].features
    return Features({"audio": PathAudio(decode=False), **{k: v for k, v in meta.items() if k != "file_name"}})


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EPISTEMIC_PATHS__DATA_DIR": str(cwd / "data")}
    return subprocess.run([sys.executable, "-m", "agent", "dataset", "export", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_refusals_exit_2_in_one_line(tmp_path: Path) -> None:
    import sqlite3

    varied_log(tmp_path / "log.db", conversations=2).close()
    log = str(tmp_path / "log.db")
    ok = _cli("--format", "sft", "--out", str(tmp_path / "out"), "--log", log, "-q", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "data/" in ok.stdout and (tmp_path / "out" / "manifest.json").is_file()
    cases = [
        (["--format", "csv"], "epistemic: --format: 'csv' is not one of sft, dpo, kto, sharegpt, parquet, speech "
                              "(see 'epistemic dataset export --help')"),
        ([], "--format is required: choose one of sft, dpo, kto, sharegpt, parquet, speech"),
        (["--format", "sft", "--dedupe", "fuzzy"], "--dedupe: 'fuzzy' is not one of exact, near, none"),
        (["--format", "sft", "--colour", "red"], "filters are --since"),
        (["--format", "sft", "--source", "radio"], "--source: 'radio' is not one of voice, typed, file"),
        (["--format", "sft", "--min-rating", "ok"], "--min-rating: 'ok' is not one of bad, unrated, good"),
        (["--format", "sft", "--retrieved-context", "all"], "--retrieved-context: 'all' is not one of include, omit"),
        (["--format", "sft", "--min-chars", "many"], "--min-chars: 'many' is not a valid integer"),
    ]
    for extra, expected in cases:
        result = _cli(*extra, "--out", str(tmp_path / "new"), "--log", log, "-q", cwd=tmp_path)
        assert result.returncode == 2 and expected in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "Usage:" not in result.stderr
    again = _cli("--format", "sft", "--out", str(tmp_path / "out"), "--log", log, "-q", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    forced = _cli("--format", "kto", "--out", str(tmp_path / "out"), "--log", log, "-q", "--force",
                  "--retrieved-context", "omit", cwd=tmp_path)
    assert forced.returncode == 0 and "kto" in (tmp_path / "out" / "README.md").read_text()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["query"]["options"]["retrieved_context"] == "omit"
    with sqlite3.connect(log) as conn:
        conn.execute("PRAGMA user_version = 99")
    newer = _cli("--format", "sft", "--out", str(tmp_path / "new"), "--log", log, "-q", cwd=tmp_path)
    assert newer.returncode == 2 and "newer" in newer.stderr and newer.stderr.count("\n") == 1
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new*"))
