"""Dataset export throughput and memory on a synthetic dialogue log.

Builds a log of N turns (default 1,000,000: conversations of 5 exchanges, written with executemany
in one transaction), then in a fresh process each: exports it to ``sft`` JSONL and to ``parquet``
(exact dedupe by default; ``--dedupe near`` adds MinHash, much slower), and runs a bare loop
(sqlite3 cursor over the same rows + ``json.dumps`` of each row to a file) as the yardstick.
Prints turns/s (wall clock, and per CPU second: other work on a shared machine slows the first,
not the second), peak RSS of each process and the ratio against the bare loop.

    .venv/bin/python bench/bench_export.py [--turns 1000000] [--dedupe exact|near|none] [--keep DIR]

Targets: >= 50,000 turns/s, peak RSS <= 300 MB (rows are streamed, never all in memory).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SAMPLER = json.dumps({"temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1,
                      "max_tokens": 512, "seed": 7, "mirostat": 0, "typical_p": 1.0})
ADAPTERS = json.dumps([{"id": "calm", "path": "/adapters/calm", "scale": 0.5, "hash": "h" * 16}])
STT = json.dumps({"language": "ru", "confidence": 0.93, "model": "whisper-base"})


def build_log(path: Path, turns: int) -> None:
    """A log of ``turns`` turns: the schema by DialogueLog, rows by executemany in one transaction."""
    from agent.log import DialogueLog

    DialogueLog(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conversations = max(1, turns // 10)
    conn.executemany("INSERT INTO conversations (id, persona, started_at, updated_at) VALUES (?, 'assistant', ?, ?)",
                     ((c, 1.7e9 + c, 1.7e9 + c) for c in range(1, conversations + 1)))
    conn.executemany(
        "INSERT INTO turns (id, conversation_id, role, text, created_at, parent_id, source, stt, reasoning, "
        "prompt_text, backend, model_id, model_hash, persona, adapters, sampler, stop_reason, interrupted) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)", _rows(turns))
    conn.execute("COMMIT")
    conn.close()


def _rows(turns: int) -> Iterator[tuple[object, ...]]:
    for i in range(1, turns + 1):
        conv = (i - 1) // 10 + 1
        if i % 2:
            yield (i, conv, "user", f"Вопрос номер {i}: как дела с задачей {i % 977}?", 1.7e9 + i, None, "voice",
                   STT, None, None, None, None, None, None, None, None, None)
        else:
            yield (i, conv, "assistant", f"Ответ {i}: задача {i % 977} идёт хорошо, осталось {i % 13} шагов.",
                   1.7e9 + i, i - 1, None, None, "думаю" if i % 4 == 0 else "", "<prompt>", "llama_cpp",
                   "SmolLM2-135M-Instruct", "0123456789abcdef", "assistant", ADAPTERS, SAMPLER, "stop")


def child(kind: str, log: Path, out: Path, dedupe: str) -> None:
    """One measured run in this process; prints a JSON line."""
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "bare":
        rows = _bare(log, out)
    else:
        from agent.harvest.export.options import ExportOptions
        from agent.harvest.export.run import export

        report = export(ExportOptions(kind, out, dedupe=dedupe), log)
        rows = report.turns_read
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"kind": kind, "turns": rows, "seconds": seconds, "cpu_seconds": time.process_time() - cpu,
                      "peak_mb": usage.ru_maxrss / 1024}))


def _bare(log: Path, out: Path) -> int:
    from agent.harvest.export.query import COLUMNS

    conn = sqlite3.connect(f"{log.resolve().as_uri()}?mode=ro", uri=True)
    cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM turns ORDER BY conversation_id, id")
    count = 0
    out.mkdir()
    with open(out / "bare.jsonl", "w", encoding="utf-8", buffering=1 << 20) as handle:
        while batch := cursor.fetchmany(4096):
            for row in batch:
                handle.write(json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False))
                handle.write("\n")
                count += 1
    return count


def measure(kind: str, log: Path, work: Path, dedupe: str) -> dict:
    """Run ``kind`` in a fresh process (its own peak RSS)."""
    out = work / f"out-{kind}"
    shutil.rmtree(out, ignore_errors=True)
    result = subprocess.run([sys.executable, __file__, "--child", kind, str(log), str(out), dedupe],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1_000_000)
    parser.add_argument("--dedupe", default="exact", choices=("exact", "near", "none"))
    parser.add_argument("--keep", type=Path, help="Work folder to keep (default: a temporary one).")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]), args.child[3])
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-export-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.db"
    if not log.exists():
        started = time.perf_counter()
        build_log(log, args.turns)
        print(f"built a log of {args.turns:,} turns in {time.perf_counter() - started:.1f}s ({log.stat().st_size / 1e6:.0f} MB)")
    bare = measure("bare", log, work, args.dedupe)
    print(f"bare sqlite3 + json.dumps: {bare['turns'] / bare['seconds']:,.0f} turns/s "
          f"({bare['turns'] / bare['cpu_seconds']:,.0f} per CPU second), peak RSS {bare['peak_mb']:.0f} MB")
    for kind in ("sft", "parquet"):
        run = measure(kind, log, work, args.dedupe)
        rate = run["turns"] / run["seconds"]
        print(f"export {kind:<8} (dedupe {args.dedupe}): {rate:,.0f} turns/s (target >= 50,000; "
              f"{run['turns'] / run['cpu_seconds']:,.0f} per CPU second), "
              f"peak RSS {run['peak_mb']:.0f} MB (target <= 300), {run['seconds']:.1f}s; "
              f"ratio vs bare loop {run['seconds'] / bare['seconds']:.2f}x the time "
              f"({run['cpu_seconds'] / bare['cpu_seconds']:.2f}x the CPU time)")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
