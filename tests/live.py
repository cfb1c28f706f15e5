"""Real ``archive`` processes for tests of several processes: servers on PostgreSQL, workers, one-shot commands.

Each runs ``archive.cli.main`` in a fresh interpreter with the test's ``ARCHIVE_*`` environment, exactly as an
operator starts it; :class:`Live` stops what it started (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLI = "from archive.cli import main; main()"
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0  # two cores shared by several test runs: an import of the app can take seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def archive_env(settings_env: dict[str, str]) -> dict[str, str]:
    """The parent's environment without its ARCHIVE_* settings, plus ``settings_env``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_") or k.startswith("ARCHIVE_TEST_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # this checkout's code, whatever the working directory (the venv may hold an editable install of another)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(settings_env)
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Live:
    """Processes started for one test (or module), stopped by :meth:`stop_all`."""

    env: dict[str, str]
    logs: Path
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, *args: str, port: int | None = None) -> Process:
        log = self.logs / f"{name}-{len(self.started)}.log"
        with log.open("wb") as out:  # the child keeps its own descriptor
            popen = subprocess.Popen([sys.executable, "-c", CLI, *args], env=self.env, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        proc = Process(name, popen, log, port)
        self.started.append(proc)
        return proc

    def serve(self, name: str, *extra: str, port: int | None = None) -> Process:
        """``archive serve`` on a free port, once /healthz answers."""
        port = port or free_port()
        proc = self.start(name, "serve", "--port", str(port), *extra, port=port)
        wait_healthy(proc)
        return proc

    def worker(self, name: str = "worker") -> Process:
        return self.start(name, "worker")

    def stop(self, proc: Process, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, sig)  # its group: uvicorn's worker processes too
            except ProcessLookupError:
                return
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(10)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            self.stop(proc)


def wait_healthy(proc: Process, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()[-3000:]}")
        try:
            if httpx.get(f"{proc.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{proc.name} did not answer within {timeout:.0f} s:\n{proc.output()[-3000:]}")
