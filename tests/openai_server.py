"""A real OpenAI-compatible server for the tests: llama-cpp-python's, with the starter model.

``LlamaServer`` starts ``python -m llama_cpp.server`` on 127.0.0.1 and a free port from a JSON
config (several model aliases may point at the same GGUF with different settings, standing in for adapter models), waits
until ``/v1/models`` answers, and is always killed by ``stop()``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

START_TIMEOUT_S = 90.0


def free_port() -> int:
    """A TCP port nothing listens on right now (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """One server process; the test thread starts and stops it."""

    def __init__(self, workdir: Path, models: dict[str, Path], *, api_key: str | None = None,
                 overrides: dict[str, dict[str, object]] | None = None) -> None:
        self.port = free_port()
        self.api_key = api_key
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.config = workdir / f"server-{self.port}.json"
        self.log = workdir / f"server-{self.port}.log"
        entries = [
            {"model": str(path), "model_alias": alias, "n_ctx": 2048, "n_threads": 1, "n_threads_batch": 2,
             "logits_all": True, "verbose": False, **(overrides or {}).get(alias, {})}
            for alias, path in models.items()
        ]
        body: dict[str, object] = {"host": "127.0.0.1", "port": self.port, "models": entries}
        if api_key is not None:
            body["api_key"] = api_key
        self.config.write_text(json.dumps(body), encoding="utf-8")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LlamaServer:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llama_cpp.server", "--config_file", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}): {self.log.read_text(errors='replace')[-2000:]}")
            if self.answers():
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S:.0f} s")

    def answers(self) -> bool:
        """True when /v1/models answers (any HTTP status counts: the server is up)."""
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=1.0):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the server at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the server (SIGKILL if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
