"""Private by default: the product opens no listening socket (TCP, UDP or Unix) — not the plain
chat, not the voice loop, not the TUI. Sockets are matched by inode: /proc/<pid>/fd against the
LISTEN entries of /proc/<pid>/net/{tcp,tcp6,udp,udp6,unix}."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.audio.conftest import pulse_server  # noqa: F401  (the null sink for the voice loop)

ROOT = Path(__file__).resolve().parents[1]
TCP_LISTEN = "0A"
UNIX_ACCEPTING = 0x10000  # __SO_ACCEPTCON in /proc/net/unix flags


def socket_inodes(pid: int) -> set[int]:
    """Inodes of every socket the process holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def listening_inodes(pid: int) -> dict[int, str]:
    """Inode -> description of every listening (or bound UDP) socket in the process's namespace."""
    found: dict[int, str] = {}
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        for row in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            cols = row.split()
            local, state, inode = cols[1], cols[3], int(cols[9])
            bound_udp = proto.startswith("udp") and not local.endswith(":0000")
            if state == TCP_LISTEN and proto.startswith("tcp") or bound_udp:
                found[inode] = f"{proto} {local}"
    for row in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        cols = row.split()
        if int(cols[3], 16) & UNIX_ACCEPTING:
            found[int(cols[6])] = f"unix {cols[7] if len(cols) > 7 else '(unnamed)'}"
    return found


def listening_sockets(pid: int) -> list[str]:
    """The listening sockets that process ``pid`` holds."""
    listening = listening_inodes(pid)
    return sorted(listening[i] for i in socket_inodes(pid) if i in listening)


def test_the_probe_sees_a_listening_socket():
    server = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0epistemic-probe-test")
    unix.listen()
    try:
        found = listening_sockets(os.getpid())
        assert any(s.startswith("tcp ") for s in found) and any("epistemic-probe-test" in s for s in found)
    finally:
        server.close()
        unix.close()
    assert listening_sockets(os.getpid()) == []


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPISTEMIC_") or k == "EPISTEMIC_PULSE_DIR"}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "cfg"),
               XDG_STATE_HOME=str(tmp_path / "state"), EPISTEMIC_SAMPLER__MAX_TOKENS="16",
               EPISTEMIC_SAMPLER__TEMPERATURE="0", PYTHONPATH=str(ROOT))
    return env | extra


def test_the_plain_chat_listens_on_nothing(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "agent", "chat", "--json"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=_env(tmp_path))
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("Say hello.\n")
        proc.stdin.flush()
        events = _read_until_finished(proc.stdout)
        assert events and events[-1] == "turn_finished"
        assert listening_sockets(proc.pid) == []
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()


def _read_until_finished(stream) -> list[str]:
    """Event names of the JSON lines up to the end of the first turn."""
    events = []
    for line in iter(stream.readline, ""):
        events.append(json.loads(line)["event"])
        if events[-1] == "turn_finished":
            break
    return events


def test_the_voice_loop_listens_on_nothing(tmp_path, pulse_server):  # noqa: F811
    proc = subprocess.Popen([sys.executable, "-m", "agent", "voice", "--seconds", "30"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=_env(tmp_path, XDG_RUNTIME_DIR=pulse_server))
    try:
        assert proc.stderr is not None
        seen = []
        for line in iter(proc.stderr.readline, ""):
            seen.append(line)
            if "listening" in line:
                break
        assert seen and "listening" in seen[-1], "".join(seen)
        time.sleep(1.0)  # microphone and speaker streams open, workers running
        assert socket_inodes(proc.pid)  # the sound server connection is a (connected) socket
        assert listening_sockets(proc.pid) == []
    finally:
        proc.kill()
        proc.wait()


async def test_the_tui_listens_on_nothing(make_config, starter_model):
    from agent.runtime import build_runtime
    from tui.app import make_app

    runtime = build_runtime(make_config("[sampler]\nmax_tokens = 8\n"), model=starter_model)
    app = make_app(runtime.config, runtime=runtime)
    try:
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.pause(0.5)
            assert listening_sockets(os.getpid()) == []
    finally:
        runtime.log.close()


@pytest.fixture(autouse=True)
def _no_listening_socket_before():
    """The test process itself starts clean, so a socket found later is the product's."""
    assert listening_sockets(os.getpid()) == []
