"""Crash trials: SIGKILL the product at random moments and check that the dialogue log survives.

Each trial starts one of ``chat --once``, ``reply VOICE_FILE`` or the voice loop (``voice``, fed
speech through the PulseAudio null sink) on the starter model, kills it with SIGKILL after a
random delay, then opens the log as the next start would and checks:

- ``PRAGMA integrity_check`` is ``ok``;
- every turn logged before the trial is unchanged;
- every user turn the killed process logged has a reply: finished, or marked
  ``stop_reason = 'crashed'`` (interrupted) with the partial text.

Prints the counts and exits 1 if any check failed.

    .venv/bin/python bench/crash_trials.py -n 10 --targets chat,reply,voice
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EPISTEMIC = [sys.executable, "-m", "agent"]
QUESTION = "Tell me a long story about a lighthouse keeper and his cat."
CONFIG = """\
[paths]
data_dir = "{data}"
[sampler]
temperature = 0.0
max_tokens = {max_tokens}
[chat]
persona = "plain"
[personas.plain]
system_prompt = "You are a storyteller. Answer at length, in English."
"""


@dataclass(frozen=True)
class Turn:
    """One row of ``turns`` as the trial compares it."""

    id: int
    role: str
    parent_id: int | None
    text: str
    stop_reason: str | None
    interrupted: int


def snapshot(db: Path) -> dict[int, Turn]:
    """Every logged turn, read without the product's code."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, role, parent_id, text, stop_reason, interrupted FROM turns").fetchall()
    except sqlite3.OperationalError:  # no schema yet
        rows = []
    conn.close()
    return {row[0]: Turn(*row) for row in rows}


def reopen(db: Path) -> str:
    """Open the log for writing as the next start does (drafts of dead runs are recovered);
    returns the integrity check's verdict."""
    from agent.log import DialogueLog

    with DialogueLog(db) as log:
        return str(log._query("PRAGMA integrity_check")[0][0])


def command(target: str, work: Path) -> list[str]:
    if target == "chat":
        return [*EPISTEMIC, "chat", "--once", QUESTION]
    if target == "reply":
        return [*EPISTEMIC, "reply", str(work / "question.wav"), "-o", str(work / "answer.wav")]
    return [*EPISTEMIC, "voice", "--half-duplex", "--max-turns", "1"]


class Run:
    """One started product process; for the voice loop, speech is played once it listens."""

    def __init__(self, target: str, work: Path, env: dict[str, str]) -> None:
        self.target = target
        self.started = time.monotonic()
        self.proc = subprocess.Popen(command(target, work), env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.listening = threading.Event()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(work, env), daemon=True).start()

    def _read(self, work: Path, env: dict[str, str]) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            if self.target == "voice" and "listening" in line and not self.listening.is_set():
                self.listening.set()
                subprocess.Popen(["paplay", "--device=vsink", str(work / "question.wav")], env=env)

    def finish(self, timeout: float = 600) -> float:
        code = self.proc.wait(timeout)
        if code != 0:
            raise SystemExit(f"{self.target} failed (exit {code}): {''.join(self.stderr[-5:])}")
        return time.monotonic() - self.started

    def kill_after(self, delay: float) -> bool:
        """SIGKILL after ``delay`` s; False if it had already ended by itself."""
        try:
            self.proc.wait(delay)
            return False
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return True


def judge(before: dict[int, Turn], after: dict[int, Turn], verdict: str) -> Counter[str]:
    """Counts for one trial; keys starting with 'DEFECT' are failures."""
    counts: Counter[str] = Counter()
    counts["integrity ok" if verdict == "ok" else "DEFECT integrity"] += 1
    changed = [i for i, turn in before.items() if after.get(i) != turn]
    counts["DEFECT earlier turn changed or lost" if changed else "earlier turns intact"] += 1
    new = [t for i, t in after.items() if i not in before]
    users = [t for t in new if t.role == "user"]
    replies = {t.parent_id: t for t in new if t.role == "assistant"}
    if not users:
        counts["killed before anything was logged"] += 1
    for user in users:
        reply = replies.get(user.id)
        if reply is None:
            counts["DEFECT user turn without a reply"] += 1
        elif reply.stop_reason == "crashed":
            counts["reply marked crashed" if reply.interrupted else "DEFECT crashed but not interrupted"] += 1
        else:
            counts[f"reply finished ({reply.stop_reason})"] += 1
    return counts


def prepare(work: Path, targets: list[str], max_tokens: int) -> tuple[Path, dict[str, str]]:
    (work / "config.toml").write_text(CONFIG.format(data=work / "data", max_tokens=max_tokens), encoding="utf-8")
    env = {**os.environ, "EPISTEMIC_CONFIG": str(work / "config.toml")}
    if "reply" in targets or "voice" in targets:
        subprocess.run([*EPISTEMIC, "say", QUESTION, "-o", str(work / "question.wav")], env=env, cwd=ROOT,
                       check=True, capture_output=True)
    from agent.config_load import load_config

    return load_config(work / "config.toml", env={}).log_path(), env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--trials", type=int, default=10, help="number of kills (default 10)")
    parser.add_argument("--targets", default="chat,reply", help="comma-separated: chat, reply, voice (voice needs the PulseAudio null sink)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the kill moments")
    parser.add_argument("--max-tokens", type=int, default=160, help="reply length, so kills land mid-reply")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the recovery warnings are what the counts report
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="crash-trials-"))
    db, env = prepare(work, targets, args.max_tokens)
    durations = {t: Run(t, work, env).finish() for t in targets}  # calibration: one full run each
    print("full run (s): " + ", ".join(f"{t} {d:.1f}" for t, d in durations.items()), flush=True)
    totals: Counter[str] = Counter()
    for trial in range(args.trials):
        target = targets[trial % len(targets)]
        before = snapshot(db)
        delay = rng.uniform(0.3, durations[target])
        run = Run(target, work, env)
        killed = run.kill_after(delay)
        verdict = reopen(db)
        counts = judge(before, snapshot(db), verdict)
        if killed:
            counts["killed"] += 1
        elif run.proc.returncode == 0:
            counts["ended before the kill"] += 1
        else:  # not a log defect, but the trial proved nothing: say why
            counts[f"exited by itself with code {run.proc.returncode}"] += 1
            print("".join(run.stderr[-3:]).rstrip(), flush=True)
        totals += counts
        print(f"trial {trial + 1:>3} {target:<5} kill at {delay:5.2f} s: " + ", ".join(sorted(counts)), flush=True)
    print("\n".join(f"{count:>4}  {what}" for what, count in sorted(totals.items())))
    defects = sum(c for what, c in totals.items() if what.startswith("DEFECT"))
    print(f"{args.trials} trials, {defects} defects")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
