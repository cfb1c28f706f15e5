"""``./scripts/demo``: the archive with demo data, plus what a real center would have next to it.

Around ``archive init --demo`` and ``archive serve`` it runs, for the demo's lifetime only:

- the local development TSA (signing/tsa.py) on a free local port, with ARCHIVE_TSA_URL pointing at it, so the
  demo's filings are PAdES B-T (unless ARCHIVE_TSA_URL is already set);
- ClamAV when it is installed, so GD-4-1/GD-4-2 check for viruses: a running system clamd if there is one,
  else a private clamd loading the signature database once (clamscan would load it again for every filing,
  10-20 s each with Debian's full database), else clamscan. Without ClamAV, or without signatures (freshclam
  needs the internet), it says so and the filings are 通过（有警告）.

Both are stopped when the demo stops.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archive.cli import app
from archive.commands.console import err, out
from archive.errors import ArchiveError
from archive.settings import get_settings

if TYPE_CHECKING:
    from archive.settings import Settings
    from signing.tsa import LocalTsa

DEBIAN_DATABASE = Path("/var/lib/clamav")
SYSTEM_SOCKETS = (Path("/run/clamav/clamd.ctl"), Path("/var/run/clamav/clamd.ctl"))
SIGNATURE_SUFFIXES = {".cvd", ".cld", ".cud", ".ndb", ".hdb", ".hsb", ".ldb", ".yar", ".yara"}
CLAMD_START_SECONDS = 180  # Debian's full database takes ~30 s to load on a small machine
INSTALL = "安装：apt-get install clamav clamav-daemon，联网后运行 freshclam"


@dataclass
class ClamavPlan:
    """How the demo scans for viruses: settings to set, a private clamd to start, and what to tell the person."""

    note: str
    env: dict[str, str] = field(default_factory=dict)
    clamd: tuple[str, Path] | None = None  # (clamd binary, signature directory) to start privately


def _find(name: str) -> str | None:
    """A program on PATH, or in /usr/sbin (Debian's clamd, off an ordinary user's PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


def plan_clamav(env: Mapping[str, str], run_dir: Path, *, which: Callable[[str], str | None] = _find,
                sockets: Sequence[Path] = SYSTEM_SOCKETS, database: Path = DEBIAN_DATABASE) -> ClamavPlan:
    """Decide how the demo uses ClamAV (nothing is started here)."""
    if env.get("ARCHIVE_CLAMD_SOCKET") or env.get("ARCHIVE_CLAMSCAN"):
        return ClamavPlan("病毒检测：使用已设置的 ARCHIVE_CLAMD_SOCKET / ARCHIVE_CLAMSCAN")
    for sock in sockets:
        if _answers(sock):
            return ClamavPlan(f"病毒检测：使用本机运行中的 clamd（{sock}）", {"ARCHIVE_CLAMD_SOCKET": str(sock)})
    clamscan = which("clamscan")
    clamd = which("clamd")
    if clamscan is None and clamd is None:
        return ClamavPlan(f"病毒检测：未安装 ClamAV，演示归档不做病毒扫描，四性检测 GD-4-1 为警告（{INSTALL}）")
    db = Path(env.get("ARCHIVE_CLAMAV_DATABASE") or database)
    if not _has_signatures(db):
        return ClamavPlan(f"病毒检测：已安装 ClamAV，但病毒特征库 {db} 中没有特征文件（freshclam 尚未下载，需联网）；"
                          "演示归档不做病毒扫描，四性检测 GD-4-1 为警告。运行 freshclam 后重新启动演示即可")
    if clamd is not None and db.is_dir():
        sock = run_dir / "clamd.sock"
        return ClamavPlan(f"病毒检测：为演示启动 clamd（特征库 {db}，加载需要几十秒）",
                          {"ARCHIVE_CLAMD_SOCKET": str(sock)}, (clamd, db))
    extra = {"ARCHIVE_CLAMAV_DATABASE": str(db)} if env.get("ARCHIVE_CLAMAV_DATABASE") else {}
    return ClamavPlan("病毒检测：使用 clamscan（每次归档都要加载特征库，每件约 10–20 秒）",
                      {"ARCHIVE_CLAMSCAN": str(clamscan), **extra})


def _has_signatures(db: Path) -> bool:
    if db.is_file():
        return db.suffix in SIGNATURE_SUFFIXES
    return db.is_dir() and any(p.suffix in SIGNATURE_SUFFIXES for p in db.iterdir())


def _answers(sock: Path) -> bool:
    """A clamd listens on ``sock`` and answers PING."""
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


def start_clamd(binary: str, database: Path, run_dir: Path, stack: ExitStack) -> str | None:
    """Start a private clamd on ``run_dir/clamd.sock``; None (and the reason) when it does not come up."""
    run_dir.mkdir(parents=True, exist_ok=True)
    sock, conf, log = run_dir / "clamd.sock", run_dir / "clamd.conf", run_dir / "clamd.log"
    sock.unlink(missing_ok=True)
    conf.write_text(f"LocalSocket {sock}\nDatabaseDirectory {database}\nForeground yes\nLogFile {log}\n"
                    f"TemporaryDirectory {run_dir}\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(_stop, proc)
    deadline = time.monotonic() + CLAMD_START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        if _answers(sock):
            return None
        time.sleep(0.5)
    return f"clamd 未能启动（见 {log}），演示归档不做病毒扫描，四性检测 GD-4-1 为警告"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _local_services(settings: Settings, stack: ExitStack) -> LocalTsa:
    """The TSA with the development CA's CRL and OCSP, on the port the development certificates name, so demo
    items are PAdES B-LT/B-LTA; when that port is taken, on a free one, and the demo signs at B-T."""
    from signing.certificates import ensure_dev_pki
    from signing.tsa import LocalTsa

    pki = ensure_dev_pki(settings.pki_path, service_url=settings.dev_pki_url)
    port = urllib.parse.urlsplit(settings.dev_pki_url).port or 80
    try:
        return LocalTsa(pki, port=port).start()
    except OSError:
        stack.callback(os.environ.pop, "ARCHIVE_LTV_LEVEL", None)
        os.environ["ARCHIVE_LTV_LEVEL"] = "B-T"
        out.print(f"吊销信息服务的端口 {port} 已被占用：演示归档为 PAdES B-T（不含长期验证数据）")
        return LocalTsa(pki).start()


def start_services(settings: Settings, stack: ExitStack) -> None:
    """Start the demo's TSA and ClamAV (stopped when ``stack`` closes), set their ARCHIVE_ variables, and say so."""
    # the signing stack (pyhanko) is loaded when the services start, not when ./scripts/demo --help runs
    run_dir = settings.data_dir / "run"
    if os.environ.get("ARCHIVE_TSA_URL"):
        out.print(f"时间戳：使用已设置的 ARCHIVE_TSA_URL（{os.environ['ARCHIVE_TSA_URL']}）")
    else:
        tsa = _local_services(settings, stack)
        stack.callback(tsa.stop)
        stack.callback(os.environ.pop, "ARCHIVE_TSA_URL", None)
        os.environ["ARCHIVE_TSA_URL"] = tsa.url
        out.print(f"时间戳与吊销信息：本地服务 {tsa.url}（仅供开发演示），演示归档为 PAdES B-LT/B-LTA")
    plan = plan_clamav(os.environ, run_dir)
    out.print(plan.note)
    if plan.clamd is not None:
        failed = start_clamd(*plan.clamd, run_dir, stack)
        out.print(failed or "clamd 已就绪")
        if failed:
            return
    for name, value in plan.env.items():
        stack.callback(os.environ.pop, name, None)
        os.environ[name] = value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo: services, ``archive init --demo``, then ``archive serve ARGV``; stop the services after."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = get_settings()
    except ArchiveError as exc:
        err.print(f"[bold red]错误[/] {exc.message}  [dim]({exc.code})[/]", highlight=False)
        return 2
    with ExitStack() as stack:
        start_services(settings, stack)
        get_settings.cache_clear()
        code = app(["init", "--demo"], standalone_mode=False, prog_name="archive")
        if code:
            return int(code)
        return int(app(["serve", *args], standalone_mode=False, prog_name="archive") or 0)


if __name__ == "__main__":
    sys.exit(main())
