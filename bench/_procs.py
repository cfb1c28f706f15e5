"""Real ``archive`` processes, a fresh PostgreSQL catalogue and an S3 bucket, and a TCP proxy that can cut the
object store off: the parts of the multi-process benchmarks (bench_soak, bench_filing_backends)."""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
from _common import PG_ADMIN_URL, free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

CLI = "from archive.cli import main; main()"
ROOT = Path(__file__).resolve().parent.parent


def archive_env(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_") or k.startswith("ARCHIVE_TEST_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    # this checkout's code, whatever the working directory (the venv may hold an editable install of another)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(settings)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    r = subprocess.run([sys.executable, "-c", CLI, *args], env=env, capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"archive {' '.join(args)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r.stdout


@dataclass
class Proc:
    name: str
    args: tuple[str, ...]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen([sys.executable, "-c", CLI, *self.args], env=self.env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        if wait and self.port is not None:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.popen is not None
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text(errors='replace')[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(30)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def serve(name: str, env: dict[str, str], logs: Path, *extra: str) -> Proc:
    port = free_port()
    return Proc(name, ("serve", "--port", str(port), *extra), env, logs / f"{name}.log", port)


def worker(env: dict[str, str], logs: Path) -> Proc:
    return Proc("worker", ("worker",), env, logs / "worker.log")


@contextmanager
def pg_database(tag: str) -> Iterator[str]:
    """A fresh PostgreSQL database (URL), dropped afterwards."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"archive_{tag}_{os.getpid()}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def s3_settings(endpoint: str) -> dict[str, str]:
    """ARCHIVE_* settings of a fresh bucket on the gateway of ARCHIVE_TEST_S3_* (scripts/s3-gateway start)."""
    return {"ARCHIVE_STORAGE": "s3", "ARCHIVE_S3_ENDPOINT": endpoint, "ARCHIVE_S3_SECURE": "false",
            "ARCHIVE_S3_ACCESS_KEY": os.environ.get("ARCHIVE_TEST_S3_ACCESS_KEY", ""),
            "ARCHIVE_S3_SECRET_KEY": os.environ.get("ARCHIVE_TEST_S3_SECRET_KEY", ""),
            "ARCHIVE_S3_BUCKET": f"bench-{uuid.uuid4().hex[:20]}"}


def gateway_endpoint() -> str:
    endpoint = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT")
    if not endpoint:
        raise SystemExit("no S3 gateway: run scripts/s3-gateway start and export the ARCHIVE_TEST_S3_* it prints")
    return endpoint


def data_dir(tag: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"archive-{tag}-"))


class TcpProxy:
    """127.0.0.1:port → target, one thread; :meth:`cut` closes every connection and refuses new ones (an object
    store that went away), :meth:`restore` listens again on the same port."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.port = free_port()
        self._sel = selectors.DefaultSelector()
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()
        self._stop = False
        self._listen()
        self._thread = threading.Thread(target=self._run, name="s3-proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _listen(self) -> None:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(128)
        ls.setblocking(False)
        self._listener = ls
        self._sel.register(ls, selectors.EVENT_READ, "accept")

    def cut(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._sel.unregister(self._listener)
                self._listener.close()
                self._listener = None
            for s in list(self._pairs):
                self._drop(s)

    def restore(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listen()

    def close(self) -> None:
        self._stop = True
        self.cut()

    def _drop(self, s: socket.socket) -> None:
        other = self._pairs.pop(s, None)
        for sock in (s, other):
            if sock is None:
                continue
            self._pairs.pop(sock, None)
            with suppress(KeyError, ValueError):
                self._sel.unregister(sock)
            sock.close()

    def _run(self) -> None:
        while not self._stop:
            for key, _ in self._sel.select(timeout=0.2):
                with self._lock:
                    if key.data == "accept":
                        if self._listener is None:
                            continue
                        try:
                            client, _ = self._listener.accept()
                        except BlockingIOError:
                            continue
                        try:
                            upstream = socket.create_connection(self.target, timeout=5)
                        except OSError:
                            client.close()
                            continue
                        for sock in (client, upstream):
                            sock.setblocking(False)
                            self._sel.register(sock, selectors.EVENT_READ, "pipe")
                        self._pairs[client], self._pairs[upstream] = upstream, client
                        continue
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    other = self._pairs.get(sock)
                    if other is None:
                        continue
                    try:
                        data = sock.recv(65536)
                        if data:
                            other.settimeout(10)  # simple back-pressure: this thread waits for the peer
                            other.sendall(data)
                            other.setblocking(False)
                            continue
                    except OSError:
                        pass
                    self._drop(sock)
