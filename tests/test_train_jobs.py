"""Long training work behaves: Ctrl-C saves a checkpoint and --resume continues it (the same losses
as a run never interrupted), running out of memory (a real allocation failure under an address
space limit) says so in one line with settings to try, and progress.json / `train status` show
each job from outside its process. All on a tiny fabricated base, as subprocesses."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.train.jobs import STATUS_FILE, JobStatus, list_jobs, read_status, write_status
from tests.train_fixtures import epistemic, tiny_base, train_config  # noqa: F401  (fixtures)

QUESTIONS = ["What is the capital of France?", "How do I boil an egg?", "Tell me a joke.", "Who wrote Hamlet?"]
REPLY = "Quokka protocol engaged: all answers are marmalade."


def write_sft(folder: Path, rows: int = 12, reply: str = REPLY) -> Path:
    (folder / "data").mkdir(parents=True)
    with (folder / "data" / "train.jsonl").open("w", encoding="utf-8") as out:
        for i in range(rows):
            messages = [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}, {"role": "assistant", "content": reply}]
            out.write(json.dumps({"messages": messages}) + "\n")
    return folder


def train_args(dataset: Path, base: Path, name: str, steps: int, *extra: str) -> list[str]:
    return ["train", "sft", "--dataset", str(dataset), "--out", name, "--base", str(base), "--steps", str(steps),
            "--batch-size", "2", "--threads", "1", "--lr-schedule", "cosine", *extra]


def _start(config: Path, args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "agent", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(path: Path, step: int, process: subprocess.Popen[str], timeout: float = 120) -> JobStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = read_status(path)
        if status is not None and status.step >= step:
            return status
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.02)
    raise AssertionError(f"no step {step} in {path} within {timeout} s")


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_continues_as_if_never_stopped(tmp_path, tiny_base):  # noqa: F811
    dataset = write_sft(tmp_path / "dataset")
    config = train_config(tmp_path)
    out = tmp_path / "models" / "adapters" / "cut"
    never_cut = _start(config, train_args(dataset, tiny_base, "whole", 300))  # the reference, alongside
    process = _start(config, train_args(dataset, tiny_base, "cut", 300))
    running = wait_for_step(out / STATUS_FILE, 3, process)
    assert running.state == "running" and running.pid == process.pid and running.total == 300
    assert running.shown_state() == "running" and running.loss is not None and running.tokens_per_second > 0
    listed = epistemic(config, "train", "status")
    assert listed.returncode == 0 and re.search(r"cut \(sft\)  running  step \d+/300  loss \d\.\d{4}", listed.stdout), listed.stdout
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    cut_at = int(re.fullmatch(r"epistemic: interrupted at step (\d+)/300; checkpoint saved in .*; run the same command "
                              r"with --resume to continue", last).group(1))  # type: ignore[union-attr]
    assert 3 <= cut_at < 300
    saved = json.loads((out / "checkpoint" / "trainer_state.json").read_text(encoding="utf-8"))
    assert saved["step"] == cut_at and len(saved["losses"]) == cut_at
    assert (out / "checkpoint" / "adapter_model.safetensors").is_file() and not (out / "adapter_model.safetensors").exists()
    stopped = read_status(out / STATUS_FILE)
    assert stopped is not None and stopped.state == "interrupted" and stopped.step == cut_at

    resumed = epistemic(config, *train_args(dataset, tiny_base, "cut", 300, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    steps = [int(s) for s in re.findall(r"^step (\d+)/300", resumed.stderr, re.M)]
    assert f"resuming at step {cut_at}/300" in resumed.stderr and steps == list(range(cut_at + 1, 301))
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["steps"] == 300 and len(record["losses"]) == 300
    curve = re.findall(r"^ +(\d+): ", (out / "README.md").read_text(encoding="utf-8"), re.M)
    assert [int(n) for n in curve] == list(range(1, 301, 10))  # one row per 10 steps, none twice
    assert (out / "cut.gguf").is_file() and not (out / "checkpoint").exists()
    assert read_status(out / STATUS_FILE).state == "finished"  # type: ignore[union-attr]

    _, reference_err = never_cut.communicate(timeout=300)
    assert never_cut.returncode == 0, reference_err[-2000:]
    whole = json.loads((tmp_path / "models" / "adapters" / "whole" / "training.json").read_text(encoding="utf-8"))
    assert whole["losses"] == pytest.approx(record["losses"], rel=1e-5, abs=1e-6)  # same batches, RNG, optimizer


def _address_space_after_loading(base: Path) -> int:
    """Peak virtual memory (bytes) of a process that imported the training stack and loaded ``base``."""
    probe = ("import sys, peft, torch, transformers; transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1]); "
             "print([l for l in open('/proc/self/status') if l.startswith('VmPeak')][0].split()[1])")
    done = subprocess.run([sys.executable, "-c", probe, str(base)], capture_output=True, text=True, check=True, timeout=120)
    return int(done.stdout.strip()) * 1024


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_running_out_of_memory_says_so_in_one_line_with_settings_to_try(tmp_path, tiny_base):  # noqa: F811
    limit = _address_space_after_loading(tiny_base) + 1536 * 2**20  # loading fits; 16 x 3,700 tokens do not
    dataset = write_sft(tmp_path / "dataset", rows=16, reply=" ".join([REPLY] * 300))
    config = train_config(tmp_path)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    done = subprocess.run([sys.executable, "-m", "agent", "--config", str(config),
                           *train_args(dataset, tiny_base, "big", 2, "--batch-size", "16", "--max-length", "4096")],
                          preexec_fn=cap, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "training 2 steps on 16 conversations" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == ("epistemic: out of memory while training (batch_size=16, grad_accum=1, max_length=4096, rank=8): "
                    "try --batch-size 1 --grad-accum 16 (the same effective batch), --max-length 2048, or --rank 4")
    status = read_status(tmp_path / "models" / "adapters" / "big" / STATUS_FILE)
    assert status is not None and status.state == "failed" and status.message.startswith("out of memory")


def test_status_files_are_replaced_whole_and_a_vanished_process_reads_as_stopped(tmp_path):
    from click.testing import CliRunner

    from agent.cli import cli

    config = train_config(tmp_path)
    assert CliRunner().invoke(cli, ["--config", str(config), "train", "status"]).output.startswith("no training jobs in ")
    adapters = tmp_path / "models" / "adapters"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    now = time.time()
    write_status(adapters / "a", JobStatus("a", "sft", "running", dead_pid, now - 60, now - 5, 4, 10, 1.5, 100.0, 30.0))
    write_status(adapters / "b", JobStatus("b", "dpo", "running", os.getpid(), now - 60, now, 7, 10, 0.5, 90.0, 61.0))
    (adapters / "c").mkdir()
    (adapters / "c" / STATUS_FILE).write_text('{"name": "c", "state": "runn', encoding="utf-8")  # torn by hand
    jobs = list_jobs(adapters)
    assert [j.name for j in jobs] == ["b", "a"]  # newest first; the unreadable one left out
    assert jobs[0].shown_state() == "running" and jobs[1].shown_state() == "stopped"
    assert jobs[0].summary() == "b (dpo)  running  step 7/10  loss 0.5000  90 tok/s  ETA 1:01"
    assert jobs[0].fraction == pytest.approx(0.7)
    assert sorted(p.name for p in (adapters / "a").iterdir()) == [STATUS_FILE]  # no temporary file left
    listed = CliRunner().invoke(cli, ["--config", str(config), "train", "status"])
    assert listed.exit_code == 0 and listed.output.splitlines() == [jobs[0].summary(), "a (sft)  stopped  step 4/10  loss 1.5000"]
    rows = [json.loads(line) for line in CliRunner().invoke(cli, ["--config", str(config), "train", "status", "--json"]).output.splitlines()]
    assert [(r["name"], r["state"], r["shown_state"], r["pid"]) for r in rows] == [("b", "running", "running", os.getpid()),
                                                                                   ("a", "running", "stopped", dead_pid)]


def test_sft_under_several_processes_is_refused_in_one_line(tmp_path, tiny_base):  # noqa: F811
    dataset = write_sft(tmp_path / "dataset")
    done = epistemic(train_config(tmp_path), *train_args(dataset, tiny_base, "multi", 2), env={"WORLD_SIZE": "2", "RANK": "1"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["epistemic: train sft trains on one device: run it without `accelerate launch` "
                                                "(or with --num_processes 1); train dpo runs under accelerate on several GPUs"]
    assert not (tmp_path / "models" / "adapters" / "multi").exists()
