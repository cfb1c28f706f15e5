"""deploy/: what a parser, or a real tool on this machine, can check of the production deployment.

There is no container engine here. The compose files are parsed; the scripts and configurations they mount are run
with the real programs (nginx, openssl, clamd, freshclam, sh); and every claim of deploy/README.md a program can
check is checked: settings, files, secrets, command lines, certificate commands.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.server
import io
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import typer
import yaml

from archive.settings import Settings

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
README = DEPLOY / "README.md"

# Settings, commands and files other helpers of issue 16 are adding in parallel; the lead empties these at merge.
PENDING_SETTINGS: set[str] = set()
PENDING_COMMANDS: set[tuple[str, ...]] = set()
PENDING_OPTIONS: set[tuple[str, str]] = set()
PENDING_FILES: set[str] = set()

ONE_SHOT = {"init", "es-setup"}
APP_SERVICES = {"init", "api", "worker"}  # the archive image with the application's environment
HOST_MADE = ("deploy/secrets/", "deploy/certs/", "deploy/.env", "deploy/backups", "deploy/wal-archive")
CONTAINER_PREFIXES = {"api", "worker", "init", "archive-entrypoint"}  # `dc run --rm api archive …`
SETTING_NAME = re.compile(r"(?<![A-Za-z0-9_])ARCHIVE_[A-Z0-9_]*[A-Z0-9]")


def _yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    return _yaml("compose.yaml")


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _readme() -> str:
    return README.read_text(encoding="utf-8")


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.M | re.S)


def _block(containing: str) -> str:
    blocks = [b for b in _code_blocks(_readme()) if containing in b]
    assert len(blocks) == 1, f"README should have one code block with {containing!r}"
    return blocks[0]


def _secret_vars() -> list[str]:
    """The variables deploy/entrypoint.sh fills from NAME_FILE."""
    found = re.search(r'^SECRET_VARS="([^"]*)"', (DEPLOY / "entrypoint.sh").read_text(), flags=re.M)
    assert found, "deploy/entrypoint.sh lists SECRET_VARS"
    return found.group(1).split()


def _known_settings() -> set[str]:
    fields = {f"ARCHIVE_{name.upper()}" for name in Settings.model_fields}
    files = {f"{n}_FILE" for n in _secret_vars() if n in fields}  # the entrypoint turns these into settings
    return fields | files | PENDING_SETTINGS


def _interpolated(value: str) -> str:
    """A compose value as compose would pass it with deploy/env.example: ${X:-default} → default, ${X:?…} → X."""
    example = dict(line.split("=", 1) for line in (DEPLOY / "env.example").read_text(encoding="utf-8").splitlines()
                   if line and not line.startswith("#"))
    return re.sub(r"\$\{(\w+)(?::?[-?]([^}]*))?\}",
                  lambda m: example.get(m.group(1), m.group(2) or ""), value)


# --- settings ------------------------------------------------------------------------------------------


def test_every_archive_variable_named_in_deploy_is_a_setting() -> None:
    """Given every deploy file and the README, when each ARCHIVE_* name is collected, then it is a setting (or
    NAME_FILE of a setting the entrypoint reads from a secret, or a setting being added now: PENDING_SETTINGS)."""
    known = _known_settings()
    for name in ("README.md", "compose.yaml", "compose.pkcs11.yaml", "env.example", "Dockerfile", "nginx.conf",
                 "clamd.conf", "entrypoint.sh"):
        unknown = set(SETTING_NAME.findall((DEPLOY / name).read_text(encoding="utf-8"))) - known
        assert unknown == set(), f"deploy/{name} names unknown settings {sorted(unknown)}"


def test_compose_values_are_valid_settings() -> None:
    """Given the archive environment of the compose file (with env.example's values), when the settings the
    application knows today are loaded from it, then pydantic accepts every value."""
    env = _compose()["x-archive-env"]
    fields = Settings.model_fields
    values = {k[len("ARCHIVE_"):].lower(): _interpolated(str(v)) for k, v in env.items()
              if k.startswith("ARCHIVE_") and k[len("ARCHIVE_"):].lower() in fields}
    settings = Settings(**values)  # type: ignore[arg-type]  # raises on any bad value
    assert settings.storage in {"s3", "replicated"} and settings.index == "elasticsearch"
    assert settings.catalogue_url.startswith("postgresql+psycopg://")
    assert ":" not in settings.catalogue_url.split("//", 1)[1].split("@", 1)[0], "no password in the URL (PGPASSWORD)"


def test_readme_names_the_readme_sections_it_points_to() -> None:
    """Given deploy/README.md, when it sends the reader to a section of the repository's README, then that section
    exists."""
    headings = set(re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.M))
    sections = re.findall(r"repository.s README \(\"(.+?)\"\)", _readme())
    assert sections
    for section in sections:
        assert section in headings, section


def test_compose_interpolation_is_explicit() -> None:
    """Given the compose files, when their `$` signs are read, then each is ${VAR…} or an escaped $$ (compose would
    otherwise eat a shell's $(…)), and every variable without a default is in env.example or the README."""
    documented = (DEPLOY / "env.example").read_text(encoding="utf-8") + _readme()
    for name in ("compose.yaml", "compose.pkcs11.yaml"):
        text = (DEPLOY / name).read_text(encoding="utf-8")
        assert re.findall(r"\$(?![{$])", text.replace("$$", "")) == [], f"deploy/{name}: a bare $"
        for var in re.findall(r"\$\{(\w+):\?", text):
            assert var in documented, f"deploy/{name} requires {var}, which env.example and the README never name"


# --- files ---------------------------------------------------------------------------------------------


def test_every_deploy_file_the_readme_mentions_exists() -> None:
    """Given the README, when it names a file under deploy/, then the file is in the repository (files the
    operator makes on the host, under deploy/secrets/ and deploy/certs/, excepted)."""
    mentioned = {m.rstrip(".,:;)") for m in re.findall(r"deploy/[A-Za-z0-9_./-]+", _readme())}
    missing = {m for m in mentioned if not m.startswith(HOST_MADE) and not (ROOT / m).exists()}
    assert missing - PENDING_FILES == set()


def test_every_file_compose_mounts_from_the_repository_exists() -> None:
    """Given the compose files, when a service mounts ./X (not made on the host), then deploy/X exists, and so
    does every deploy/ file the Dockerfile copies."""
    for name in ("compose.yaml", "compose.pkcs11.yaml"):
        for service in _yaml(name)["services"].values():
            for volume in service.get("volumes", []):
                source = volume.split(":", 1)[0]
                if source.startswith("./") and not f"deploy/{source[2:]}".startswith(HOST_MADE):
                    assert (DEPLOY / source[2:]).exists(), f"deploy/{name} mounts missing {source}"
    for copied in re.findall(r"^COPY (.+) \S+$", (DEPLOY / "Dockerfile").read_text(), flags=re.M):
        for source in copied.split():
            assert (ROOT / source).exists(), source


# --- services, secrets, dependencies -----------------------------------------------------------------------


def test_compose_has_the_production_services() -> None:
    """Given deploy/compose.yaml, when it is parsed, then it has the production services and the commands the
    README's table gives them."""
    services = _services()
    assert {"postgres", "elasticsearch", "es-setup", "clamav", "init", "api", "worker", "proxy"} <= set(services)
    assert services["worker"]["command"] == ["archive", "worker"]
    assert services["api"]["command"][:2] == ["archive", "serve"] and "--workers" in services["api"]["command"]
    assert services["init"]["command"][:2] == ["archive", "init"]


def test_every_long_running_service_restarts_and_has_a_health_check() -> None:
    """Given the services, when each is read, then the long-running ones restart unless stopped and have a health
    check, and the one-shots never restart."""
    for name, service in _services().items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
        else:
            assert service.get("restart") == "unless-stopped", name
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def test_dependencies_start_things_in_order() -> None:
    """Given the depends_on chains, when they are followed, then api and worker wait for init (and es-setup) to
    complete, init waits for a healthy PostgreSQL, a service_healthy dependency has a health check and a
    service_completed_successfully one is a one-shot."""
    services = _services()
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["init"]["condition"] == "service_completed_successfully"
        assert deps["es-setup"]["condition"] == "service_completed_successfully"
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["es-setup"]["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    for name, service in services.items():
        for dep, how in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no check"
            if how["condition"] == "service_completed_successfully":
                assert dep in ONE_SHOT, f"{name} waits for {dep} to complete; it runs forever"


def test_secrets_are_declared_mounted_and_documented() -> None:
    """Given the compose files, when /run/secrets/X is referenced by a service, then X is mounted into it and
    declared from a file under ./secrets/; every *_FILE variable is one the entrypoint reads or a setting that takes
    a file; and the README tells the operator to create each secret file and lists every secret."""
    readme = _readme()
    for name in ("compose.yaml", "compose.pkcs11.yaml"):
        compose = _yaml(name)
        declared = compose["secrets"]
        base = _compose()
        for sname, service in compose["services"].items():
            mounted = set(service.get("secrets", []))
            if name != "compose.yaml":
                mounted |= set(base["services"][sname].get("secrets", []))
            assert mounted <= set(declared) | set(base["secrets"]), sname
            used = set(re.findall(r"/run/secrets/(\w+)", json.dumps(service, ensure_ascii=False)))
            assert used <= mounted, f"{name}: {sname} reads secrets it does not mount: {sorted(used - mounted)}"
        for sname, spec in declared.items():
            assert spec["file"].startswith("./secrets/"), sname
            assert f"deploy/secrets/{spec['file'][len('./secrets/'):]}" in readme, f"README never makes {sname}"
    listed = re.search(r"lists all of them: (.*?)\.\n", readme, flags=re.S)
    assert listed and set(re.findall(r"`(\w+)`", listed.group(1))) == set(_compose()["secrets"])
    secret_vars = set(_secret_vars())
    for var in _compose()["x-archive-env"]:
        if var.endswith("_FILE"):
            assert var[:-len("_FILE")] in secret_vars or var in _known_settings(), var
    assert all("PASSWORD" not in k or k.endswith("_FILE") for k in _compose()["x-archive-env"])


def test_the_api_is_reached_only_through_the_proxy() -> None:
    """Given the services, when ports and networks are read, then only the proxy publishes ports, uvicorn trusts
    forwarded headers from the proxy's fixed address only, and /metrics is allowed from the metrics network."""
    compose = _compose()
    services, env = compose["services"], compose["x-archive-env"]
    assert [n for n, s in services.items() if s.get("ports")] == ["proxy"]
    proxy_ip = services["proxy"]["networks"]["proxy"]["ipv4_address"]
    assert env["FORWARDED_ALLOW_IPS"] == proxy_ip
    subnet = compose["networks"]["proxy"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
    assert "proxy" in services["api"]["networks"] and "metrics" in services["api"]["networks"]
    assert env["ARCHIVE_METRICS_ALLOW"] == compose["networks"]["metrics"]["ipam"]["config"][0]["subnet"]
    assert compose["networks"]["proxy"]["internal"] and compose["networks"]["metrics"]["internal"]


def test_no_minio_anywhere_and_s3_is_tls_with_the_applications_own_keys() -> None:
    """Given the compose files, when the object store is read, then no service runs MinIO, the S3 endpoint is the
    operator's (required), over TLS with a CA file, and its keys come from secrets."""
    for name in ("compose.yaml", "compose.pkcs11.yaml"):
        text = (DEPLOY / name).read_text(encoding="utf-8").lower()
        assert "minio" not in text, f"deploy/{name} still mentions MinIO"
    env = _compose()["x-archive-env"]
    assert env["ARCHIVE_S3_SECURE"] == "true" and env["ARCHIVE_S3_CA_FILE"]
    assert env["ARCHIVE_S3_ENDPOINT"].startswith("${ARCHIVE_S3_ENDPOINT:?")
    assert "ARCHIVE_S3_ACCESS_KEY" not in env and "ARCHIVE_S3_SECRET_KEY" not in env
    assert env["ARCHIVE_S3_ACCESS_KEY_FILE"] == "/run/secrets/s3_access_key"
    assert env["ARCHIVE_S3_RETENTION_MODE"] == "COMPLIANCE"
    assert "radosgw-admin user create" in _readme() and "--object-lock-enabled-for-bucket" in _readme()


# --- Elasticsearch ----------------------------------------------------------------------------------------


def test_elasticsearch_security_is_on_with_tls_and_an_application_user() -> None:
    """Given the Elasticsearch service, when it is read, then security and HTTP TLS are on, it is not published,
    and the application connects over https as its own user with a CA file."""
    services, env = _services(), _compose()["x-archive-env"]
    es = services["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true" and es["xpack.security.http.ssl.enabled"] == "true"
    assert es["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password"
    assert env["ARCHIVE_ES_URL"].startswith("https://elasticsearch:")
    assert env["ARCHIVE_ES_USERNAME"] not in {"", "elastic"}
    assert env["ARCHIVE_ES_PASSWORD_FILE"] == "/run/secrets/es_password" and env["ARCHIVE_ES_CA_FILE"]
    assert "elastic_password" not in services["api"]["secrets"]


def test_elasticsearch_role_covers_exactly_the_applications_names() -> None:
    """Given deploy/es-role.json and the index prefix of the compose file, when the names the application creates
    (search/elasticsearch.py: template and alias <prefix>-items, indices <prefix>-items-v…) are matched, then the
    role grants them and nothing wider: no wildcard-only name, no `all`, no superuser cluster rights."""
    from search.elasticsearch import SCHEMA_VERSION

    role = json.loads((DEPLOY / "es-role.json").read_text(encoding="utf-8"))
    prefix = _compose()["x-archive-env"]["ARCHIVE_ES_INDEX_PREFIX"]
    names = [n for grant in role["indices"] for n in grant["names"]]
    wanted = [f"{prefix}-items", f"{prefix}-items-v{SCHEMA_VERSION}-20261203120000-000001"]
    for name in wanted:
        assert any(fnmatch.fnmatchcase(name, pattern) for pattern in names), name
    assert all(n.startswith(f"{prefix}-") for n in names)
    assert not any(fnmatch.fnmatchcase("other-index", pattern) for pattern in names)
    privileges = {p for grant in role["indices"] for p in grant["privileges"]}
    assert "all" not in privileges and set(role["cluster"]) <= {"monitor", "manage_index_templates"}
    assert role.get("run_as", []) == []


def test_es_setup_keeps_passwords_off_the_command_line(tmp_path: Path) -> None:
    """Given deploy/es-setup.sh and a curl that records what it is given, when the script runs with passwords
    holding quotes and backslashes, then it puts the role file and a valid user body, and no password is ever
    an argument."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.jsonl"
    (bin_dir / "curl").write_text(
        "#!/usr/bin/env python3\nimport json, sys\nargs = sys.argv[1:]\n"
        "body = next((open(a[1:]).read() for a in args if a.startswith('@')), None)\n"
        "call = {'args': args, 'stdin': sys.stdin.read(), 'body': body}\n"
        f"open({str(log)!r}, 'a').write(json.dumps(call) + '\\n')\n"
        "print('{}')\n")
    (bin_dir / "curl").chmod(0o755)
    elastic, app = 'el"as\\tic', 'ap"p\\pw'
    (tmp_path / "elastic").write_text(elastic)
    (tmp_path / "app").write_text(app)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ELASTIC_PASSWORD_FILE": str(tmp_path / "elastic"),
           "ES_PASSWORD_FILE": str(tmp_path / "app"), "ES_ROLE_FILE": str(DEPLOY / "es-role.json")}
    subprocess.run(["sh", str(DEPLOY / "es-setup.sh")], env=env, check=True, capture_output=True, timeout=30)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["args"][c["args"].index("-X") + 1] for c in calls] == ["PUT", "PUT"]
    assert calls[0]["args"][-3].endswith("/_security/role/archive_app")
    assert json.loads(calls[0]["body"]) == json.loads((DEPLOY / "es-role.json").read_text())
    user = json.loads(calls[1]["body"])
    assert user["password"] == app and user["roles"] == ["archive_app"]
    for call in calls:
        assert not any(elastic in a or app in a for a in call["args"])
        assert call["stdin"] == f'user = "elastic:{elastic}"\n'


def test_elasticsearch_server_matches_the_client_major_version() -> None:
    """Given the compose file's Elasticsearch image, when its version is compared with the installed client, then the
    major versions match."""
    from importlib.metadata import version

    for name in ("elasticsearch", "es-setup"):
        image = _services()[name]["image"]
        assert image.rsplit(":", 1)[1].split(".")[0] == version("elasticsearch").split(".")[0]


# --- the image ----------------------------------------------------------------------------------------------


def test_dockerfile_has_fonts_clamav_a_non_root_owner_of_the_data_dir_and_a_health_check() -> None:
    """Given deploy/Dockerfile, when it is read, then it installs the CJK font and ClamAV (and points the settings
    at them), copies each top-level package, runs as a non-root user that owns the data directory, and has a
    HEALTHCHECK."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    installs = " ".join(re.findall(r"apt-get install ([^&]+)", text))
    for package in ("fonts-wqy-zenhei", "clamav", "clamav-daemon"):
        assert package in installs.split(), package
    for package in ("archive", "storage", "signing", "search"):
        assert f"COPY {package} ./{package}" in text
    users = re.findall(r"^USER (\S+)", text, flags=re.M)
    assert users and users[-1] not in {"root", "0"}
    user = users[-1]
    assert re.search(rf"useradd [^\n]*\b{user}\b", text)
    assert re.search(rf"install -d -o {user} -g {user} [^\n]*/var/lib/archive", text)
    assert "ARCHIVE_DATA_DIR=/var/lib/archive" in text
    assert re.search(r"^HEALTHCHECK ", text, flags=re.M)
    font = re.search(r"ARCHIVE_CJK_FONT=(\S+)", text)
    assert font
    listing = subprocess.run(["dpkg", "-L", "fonts-wqy-zenhei"], capture_output=True, text=True, check=False)
    if listing.returncode == 0:  # Debian here: the path is the package's
        assert font.group(1) in listing.stdout.split()
    assert "archivedata:/var/lib/archive" in _services()["api"]["volumes"]
    # the entrypoint the compose health checks call by name is the one the image installs and runs
    assert "COPY deploy/entrypoint.sh /usr/local/bin/archive-entrypoint" in text
    assert 'ENTRYPOINT ["archive-entrypoint"]' in text
    assert _services()["clamav"]["command"] == ["clamd"]
    assert '"${1:-}" = "clamd"' in (DEPLOY / "entrypoint.sh").read_text()


def test_entrypoint_reads_secret_files_into_the_environment(tmp_path: Path) -> None:
    """Given deploy/entrypoint.sh, when NAME_FILE variables point at files, then the command runs with NAME set to
    the content (a trailing newline dropped) and without the _FILE variables; a missing file stops it with a
    Chinese message."""
    (tmp_path / "pg").write_text("pg-pass\n")
    (tmp_path / "s3").write_text("s3 secret'\"x")
    env = {"PATH": os.environ["PATH"], "PGPASSWORD_FILE": str(tmp_path / "pg"),
           "ARCHIVE_S3_SECRET_KEY_FILE": str(tmp_path / "s3")}
    done = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), "env", "-0"], env=env, capture_output=True,
                          check=True, timeout=30)
    seen = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
    assert seen["PGPASSWORD"] == "pg-pass" and seen["ARCHIVE_S3_SECRET_KEY"] == "s3 secret'\"x"
    assert not any(k.endswith("_FILE") for k in seen)
    env["ARCHIVE_ES_PASSWORD_FILE"] = str(tmp_path / "missing")
    failed = subprocess.run(["sh", str(DEPLOY / "entrypoint.sh"), "true"], env=env, capture_output=True,
                            text=True, timeout=30)
    assert failed.returncode != 0 and "ARCHIVE_ES_PASSWORD_FILE" in failed.stderr and "不存在" in failed.stderr


# --- ClamAV ----------------------------------------------------------------------------------------------


def _eicar() -> bytes:
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-" + b"TEST-FILE!$H+H*"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _directives(path: Path) -> dict[str, str]:
    return dict([*line.split(None, 1), ""][:2] for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#"))


def test_clamd_conf_runs_with_the_real_clamd_and_finds_a_virus(tmp_path: Path) -> None:
    """Given deploy/clamd.conf, when the real clamd starts with it (the database, port and paths moved into a temp
    dir, a one-signature database), then the application's Clamd client reaches it and finds EICAR; the compose
    file points ARCHIVE_CLAMD_SOCKET at the clamav service on the conf's port, and the stream limit admits
    the largest upload."""
    clamd = shutil.which("clamd") or ("/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None)
    if clamd is None:
        pytest.skip("clamd not installed: apt-get install clamav-daemon")
    from archive.checks.security import Clamd

    conf = _directives(DEPLOY / "clamd.conf")
    env = _compose()["x-archive-env"]
    assert env["ARCHIVE_CLAMD_SOCKET"] == f"tcp://clamav:{conf['TCPSocket']}"
    assert int(conf["StreamMaxLength"].rstrip("M")) >= int(env["ARCHIVE_MAX_UPLOAD_MB"])
    db = tmp_path / "db"
    db.mkdir()
    (db / "test.ndb").write_text(f"Deploy.Test.EICAR:0:*:{_eicar().hex()}\n")
    port = _free_port()
    local = {**conf, "DatabaseDirectory": str(db), "TCPSocket": str(port), "TCPAddr": "127.0.0.1",
             "TemporaryDirectory": str(tmp_path), "LogFile": str(tmp_path / "clamd.log")}
    (tmp_path / "clamd.conf").write_text("".join(f"{k} {v}\n" for k, v in local.items()))
    proc = subprocess.Popen([clamd, "-c", str(tmp_path / "clamd.conf")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        scanner = Clamd(f"tcp://127.0.0.1:{port}", 10)
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"clamd refused deploy/clamd.conf: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                info = scanner.info()
                break
            except Exception:
                time.sleep(0.1)
        else:
            pytest.fail("clamd did not answer")
        assert info.kind == "clamd"
        found = scanner.scan([("clean.txt", b"hello"), ("bad.txt", b"x" + _eicar())])
        assert [f.name for f in found] == ["bad.txt"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_freshclam_conf_parses_with_the_real_freshclam() -> None:
    """Given deploy/freshclam.conf, when the real freshclam reads it, then it accepts every directive."""
    freshclam = shutil.which("freshclam")
    if freshclam is None:
        pytest.skip("freshclam not installed: apt-get install clamav-freshclam")
    done = subprocess.run([freshclam, f"--config-file={DEPLOY / 'freshclam.conf'}", "--version"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert _directives(DEPLOY / "freshclam.conf")["NotifyClamd"] == "/etc/clamav/clamd.conf"


# --- certificates and the proxy ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def readme_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's certificate commands, run as written (in a temp copy of the layout)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    root = tmp_path_factory.mktemp("deploy-root")
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", _block("openssl req -x509")], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return root


def test_readme_certificate_commands_make_a_valid_elasticsearch_certificate(readme_certs: Path) -> None:
    """Given the README's certificate commands, when they run, then Elasticsearch's certificate verifies against
    the CA the application is given and names the host the application connects to."""
    from cryptography import x509

    certs = readme_certs / "deploy/certs"
    done = subprocess.run(["openssl", "verify", "-CAfile", str(certs / "es/ca.crt"), str(certs / "es/es.crt")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    cert = x509.load_pem_x509_certificate((certs / "es/es.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    host = _compose()["x-archive-env"]["ARCHIVE_ES_URL"].split("//")[1].split(":")[0]
    assert host in names
    es_env = _services()["elasticsearch"]["environment"]
    for key in ("key", "certificate", "certificate_authorities"):  # the files the README makes are those ES reads
        assert (certs / "es" / Path(es_env[f"xpack.security.http.ssl.{key}"]).name).exists()


def test_readme_secret_commands_make_every_generated_secret(tmp_path: Path) -> None:
    """Given the README's secret commands, when they run, then each generated secret is a non-empty file without a
    trailing newline, and the directory is closed."""
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", _block("openssl rand")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    secrets = tmp_path / "deploy/secrets"
    made = {p.name for p in secrets.iterdir()}
    assert {"postgres_password", "elastic_password", "es_password", "admin_password"} <= made
    for p in secrets.iterdir():
        content = p.read_text()
        assert content and not content.endswith("\n"), p.name
    assert secrets.stat().st_mode & 0o077 == 0


class _Echo(http.server.BaseHTTPRequestHandler):
    """The API's stand-in: answers each request with the path and headers it received."""

    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        _Echo.seen.append(self.path)
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def _nginx_conf(readme_certs: Path, run: Path, backend: int, https: int, http: int) -> Path:
    """deploy/nginx.conf with the container paths, ports and the `api` host moved to this machine's."""
    compose = _services()["proxy"]
    mounts = dict(v.split(":")[1::-1] for v in compose["volumes"])
    local = {"/etc/nginx/archive-proxy.conf": str(DEPLOY / "nginx-proxy.conf"),
             "/etc/nginx/tls/tls.crt": str(readme_certs / "deploy/certs/proxy/tls.crt"),
             "/run/secrets/proxy_tls_key": str(readme_certs / "deploy/secrets/proxy_tls.key"),
             "http://api:8000": f"http://127.0.0.1:{backend}",
             "pid /tmp/nginx.pid;": f"pid {run / 'nginx.pid'};",
             "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;", "listen 80;": f"listen 127.0.0.1:{http};",
             "listen [::]:443 ssl;": "", "listen [::]:80;": ""}
    # every absolute path nginx.conf reads is one the proxy service mounts or gets as a secret
    text = (DEPLOY / "nginx.conf").read_text()
    for path in re.findall(r"(?:ssl_certificate(?:_key)?|include) (/\S+);", text):
        assert path in mounts or path.removeprefix("/run/secrets/") in compose["secrets"], path
    for old, new in local.items():
        if old:
            assert old in text, f"deploy/nginx.conf no longer has {old!r}; update this test"
            text = text.replace(old, new)
    conf = run / "nginx.conf"
    conf.write_text(text)
    return conf


@pytest.fixture(scope="module")
def proxy(readme_certs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The real nginx running deploy/nginx.conf in front of an echoing stand-in for the API."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx not installed: apt-get install nginx")
    run = tmp_path_factory.mktemp("nginx")
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    https, plain = _free_port(), _free_port()
    conf = _nginx_conf(readme_certs, run, backend.server_address[1], https, plain)
    base = [nginx, "-p", str(run), "-e", str(run / "error.log"), "-c", str(conf)]
    test = subprocess.run([*base, "-t"], capture_output=True, text=True, timeout=30)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([*base, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", https), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield {"https": https, "http": plain, "test": test}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        backend.shutdown()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the proxy is under test, not its cert
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect())
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, dict(r.headers.items()), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def test_nginx_conf_passes_nginx_t(proxy: dict[str, Any]) -> None:
    """Given deploy/nginx.conf with the README's certificates, when the real nginx tests it, then it passes."""
    assert "test is successful" in proxy["test"].stderr


def test_proxy_forwards_with_tls_hsts_and_trusted_headers(proxy: dict[str, Any]) -> None:
    """Given the running proxy, when a client calls over https claiming another address and giving a request id,
    then the API sees the real address, https and the request id, and the answer carries HSTS; a request id that is
    not a plain token is replaced by nginx's own."""
    status, headers, body = _get(f"https://127.0.0.1:{proxy['https']}/api/v1/cases",
                                 {"X-Forwarded-For": "6.6.6.6", "X-Request-ID": "req-123.abc"})
    assert status == 200
    seen = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
    assert seen["x-forwarded-for"] == "127.0.0.1" and seen["x-forwarded-proto"] == "https"
    assert seen["x-request-id"] == "req-123.abc"
    assert "max-age=" in headers["Strict-Transport-Security"]
    _, _, body = _get(f"https://127.0.0.1:{proxy['https']}/", {"X-Request-ID": "<script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", json.loads(body)["headers"]["X-Request-ID"])


def test_proxy_refuses_metrics_from_outside(proxy: dict[str, Any]) -> None:
    """Given the running proxy, when /metrics is asked for (plainly or percent-encoded), then nginx answers 404
    and the API never sees the request."""
    _Echo.seen.clear()
    for path in ("/metrics", "/metrics/", "/%6detrics", "/metrics?x=1"):
        assert _get(f"https://127.0.0.1:{proxy['https']}{path}")[0] == 404, path
    assert _Echo.seen == []


def test_plain_http_redirects_and_answers_the_health_check(proxy: dict[str, Any]) -> None:
    """Given the running proxy, when port 80 is called, then it redirects to https, except the health check URL
    the compose file's proxy health check uses."""
    status, headers, _ = _get(f"http://127.0.0.1:{proxy['http']}/ui/")
    assert status == 301 and headers["Location"].startswith("https://")
    health = _services()["proxy"]["healthcheck"]["test"][-1]
    assert _get(f"http://127.0.0.1:{proxy['http']}{urllib.parse.urlsplit(health).path}")[0] == 200


def test_nginx_tls_and_body_limits_match_the_application() -> None:
    """Given deploy/nginx.conf, when its limits are read, then it speaks TLS 1.2+ only, admits the application's
    largest upload (ARCHIVE_MAX_UPLOAD_MB) everywhere and a whole transfer package
    (ARCHIVE_TRANSFER_MAX_PACKAGE_MB) on the application's transfer routes, which exist."""
    from archive.api.routes import transfer as api_transfer
    from archive.web.routes import transfers as web_transfers

    text = (DEPLOY / "nginx.conf").read_text()
    env = _compose()["x-archive-env"]
    assert re.search(r"ssl_protocols TLSv1\.2 TLSv1\.3;", text)
    sizes = [int(s) for s in re.findall(r"client_max_body_size (\d+)m;", text)]
    assert min(sizes) >= int(env["ARCHIVE_MAX_UPLOAD_MB"])
    assert max(sizes) >= int(env["ARCHIVE_TRANSFER_MAX_PACKAGE_MB"])
    routes = re.search(r"location ~ \^/\((.*?)\)\$", text)
    assert routes
    paths = {getattr(r, "path", "") for r in [*api_transfer.router.routes, *web_transfers.router.routes]}
    for route in routes.group(1).split("|"):
        assert f"/{route}" in paths, route


# --- command lines -----------------------------------------------------------------------------------------------


def _archive_command_lines() -> list[tuple[str, list[str]]]:
    """(where, tokens after `archive`) for every archive command line in the README and the compose files."""
    found: list[tuple[str, list[str]]] = []
    readme = _readme()
    for block in _code_blocks(readme):
        for line in block.replace("\\\n", " ").splitlines():
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:
                continue
            found += [("README", tokens[i + 1:]) for i, t in enumerate(tokens)
                      if t == "archive" and (i == 0 or tokens[i - 1] in CONTAINER_PREFIXES)]
    found += [("README inline", s.split()[1:]) for s in re.findall(r"`(archive [^`]+)`", readme)]
    for name in ("compose.yaml", "compose.pkcs11.yaml"):
        for service in _yaml(name)["services"].values():
            for key in ("command", "entrypoint"):
                cmd = service.get(key)
                if isinstance(cmd, list) and "archive" in cmd:
                    found.append((name, cmd[cmd.index("archive") + 1:]))
            test = service.get("healthcheck", {}).get("test", [])
            if "archive" in test:
                found.append((name, test[test.index("archive") + 1:]))
    return found


def test_every_archive_command_line_is_a_real_command() -> None:
    """Given every `archive …` line of the README and the compose files, when it is resolved against the CLI's
    command tree, then each command exists and each --option is one it takes (commands and options being added now
    are in PENDING_COMMANDS / PENDING_OPTIONS)."""
    from archive.cli import app

    root = typer.main.get_command(app)
    lines = _archive_command_lines()
    assert len(lines) > 10
    for where, tokens in lines:
        command: Any = root  # typer's own (vendored) click types
        path: tuple[str, ...] = ()
        rest = list(tokens)
        while hasattr(command, "commands") and rest and not rest[0].startswith("-") and rest[0] != "...":
            path += (rest.pop(0),)
            if any(path[:len(p)] == p for p in PENDING_COMMANDS):
                break
            sub = command.get_command(None, path[-1])  # the root loads its lazy groups (archive/commands/lazy.py)
            assert sub is not None, f"{where}: `archive {' '.join(path)}` is not a command"
            command = sub
        if any(path[:len(p)] == p for p in PENDING_COMMANDS):
            continue
        assert not hasattr(command, "commands") or not rest or rest[0] == "--help", \
            f"{where}: `archive {' '.join(tokens)}` names a group, not a command"
        options = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
        for token in rest:
            if token == "...":
                break
            option = token.split("=", 1)[0]
            if option.startswith("--") and (" ".join(path), option) not in PENDING_OPTIONS:
                assert option in options, f"{where}: `archive {' '.join(path)}` has no option {option}"


# --- the object store: the README's Ceph RGW steps on the real gateway ---------------------------------------------

# Until deploy/s3-policy.json lands (the S3 helper writes it), the README's steps run with this policy, which says
# what the README says the policy grants. With the file present the test uses the file.
FALLBACK_S3_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "ApplicationBucket", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam:::user/hpf-archive-app"]},
         "Action": ["s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation",
                    "s3:GetBucketObjectLockConfiguration", "s3:GetBucketVersioning"],
         "Resource": ["arn:aws:s3:::hpf-archive"]},
        {"Sid": "ApplicationObjects", "Effect": "Allow",
         "Principal": {"AWS": ["arn:aws:iam:::user/hpf-archive-app"]},
         "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:GetObjectRetention",
                    "s3:PutObjectRetention", "s3:GetObjectLegalHold", "s3:PutObjectLegalHold", "s3:DeleteObject",
                    "s3:DeleteObjectVersion", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": ["arn:aws:s3:::hpf-archive/*"]},
        {"Sid": "NeverLoosenTheLock", "Effect": "Deny",
         "Principal": {"AWS": ["arn:aws:iam:::user/hpf-archive-app"]},
         "Action": ["s3:BypassGovernanceRetention", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                    "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning", "s3:DeleteBucket"],
         "Resource": ["arn:aws:s3:::hpf-archive", "arn:aws:s3:::hpf-archive/*"]},
    ],
}


def _gateway() -> tuple[str, Path]:
    """The test gateway's endpoint and ceph.conf (scripts/s3-gateway), or skip."""
    endpoint = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT", "127.0.0.1:7480")
    conf = Path(os.environ.get("ARCHIVE_CEPH_DIR", "/tmp/archive-ceph")) / "ceph.conf"
    if shutil.which("radosgw-admin") is None or not conf.exists() or shutil.which("aws") is None:
        pytest.skip("no Ceph RGW here (scripts/s3-gateway start) or no radosgw-admin / aws CLI")
    try:
        socket.create_connection(tuple(endpoint.rsplit(":", 1)), timeout=2).close()  # type: ignore[arg-type]
    except OSError:
        pytest.skip(f"the Ceph RGW does not answer on {endpoint} (scripts/s3-gateway start)")
    return endpoint, conf


def test_readme_ceph_steps_give_the_application_a_locked_bucket_it_cannot_loosen(tmp_path: Path) -> None:
    """Given the README's radosgw-admin and aws commands, when they run as written on the real gateway (fresh user
    and bucket names, its endpoint without TLS), then the bucket has object lock, and the application's own keys can
    store and read through the application's S3 store, but cannot delete a locked version, change the bucket's policy
    or delete the bucket."""
    from minio import Minio
    from minio.error import S3Error

    from storage.base import ObjectLocked
    from storage.s3 import S3Store

    endpoint, conf = _gateway()
    tag = os.urandom(5).hex()
    owner, app, bucket = f"hpf-owner-{tag}", f"hpf-app-{tag}", f"hpf-archive-{tag}"
    users: dict[str, dict[str, str]] = {}
    for line in _block("radosgw-admin user create").replace("\\\n", " ").splitlines():
        tokens = shlex.split(line.replace("hpf-archive-owner", owner).replace("hpf-archive-app", app), comments=True)
        if not tokens:
            continue
        assert tokens[0] == "radosgw-admin"
        done = subprocess.run([tokens[0], "--conf", str(conf), *tokens[1:]], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        users[info["user_id"]] = info["keys"][0]
    assert set(users) == {owner, app}
    policy_file = DEPLOY / "s3-policy.json"
    policy = policy_file.read_text() if policy_file.exists() else json.dumps(FALLBACK_S3_POLICY)
    (tmp_path / "policy.json").write_text(policy.replace("hpf-archive-app", app).replace("hpf-archive", bucket)
                                          .replace(f"{bucket}-{tag}", bucket))
    script = _block("s3api create-bucket")
    script = re.sub(r"^export AWS_ACCESS_KEY_ID=.*$", "", script, flags=re.M)
    script = (script.replace("https://rgw.center.example", f"http://{endpoint}")
              .replace("--ca-bundle deploy/certs/s3-ca.crt", "")
              .replace("--bucket hpf-archive", f"--bucket {bucket}")
              .replace("file://deploy/s3-policy.json", f"file://{tmp_path / 'policy.json'}"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": users[owner]["access_key"],
           "AWS_SECRET_ACCESS_KEY": users[owner]["secret_key"], "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    answers, text = [], done.stdout.strip()
    while text:  # the aws commands' JSON answers, one after another
        answer, end = json.JSONDecoder().raw_decode(text)
        answers.append(answer)
        text = text[end:].strip()
    assert answers[-1]["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"

    keys = users[app]
    store = S3Store(endpoint, keys["access_key"], keys["secret_key"], bucket, secure=False)
    assert store.health()["ok"]
    data = b"the application's own keys"
    store.put("deploy/check", io.BytesIO(data), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
              retain_until=datetime.now(UTC) + timedelta(days=1))
    assert store.read_bytes("deploy/check") == data
    with pytest.raises(ObjectLocked):
        store.delete("deploy/check")
    client = Minio(endpoint, access_key=keys["access_key"], secret_key=keys["secret_key"], secure=False)
    loose = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:*"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}]})
    for attempt in (lambda: client.set_bucket_policy(bucket, loose), lambda: client.delete_bucket_policy(bucket)):
        with pytest.raises(S3Error) as refused:
            attempt()
        assert refused.value.code == "AccessDenied"
    # what the application may do comes from the policy: on a bucket of the owner's without it, nothing
    owner_client = Minio(endpoint, access_key=users[owner]["access_key"], secret_key=users[owner]["secret_key"],
                         secure=False)
    owner_client.make_bucket(f"{bucket}-bare", object_lock=True)
    assert not S3Store(endpoint, keys["access_key"], keys["secret_key"], f"{bucket}-bare", secure=False).health()["ok"]


# --- PostgreSQL: the README's WAL archiving and point-in-time recovery, with this machine's PostgreSQL ---------------


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found or shutil.which("runuser") is None or os.geteuid() != 0:
        pytest.skip("needs Debian's PostgreSQL server binaries and root (to run them as the postgres user)")
    return found[-1].parent


@pytest.fixture
def postgres_dir() -> Iterator[Path]:
    """A directory the postgres user can reach (pytest's own temp root is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="deploy-pitr-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_readme_point_in_time_recovery_brings_the_catalogue_back_to_a_moment(postgres_dir: Path) -> None:
    """Given a PostgreSQL run with the compose file's WAL archiving options, when the README's base backup command
    runs, rows are written before and after a moment, and the README's recovery script is run for that moment,
    then the recovered server is writable again and holds exactly the rows from before the moment."""
    pg = _pg_bin()
    tmp_path = postgres_dir
    data, wal, sock = tmp_path / "data", tmp_path / "wal-archive", tmp_path / "sock"
    for d in (data, wal, sock):
        d.mkdir(mode=0o700)
        shutil.chown(d, "postgres", "postgres")
    port = _free_port()

    def as_postgres(*args: str, check: bool = True) -> str:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PGHOST": str(sock), "PGPORT": str(port)})
        assert not check or done.returncode == 0, done.stderr
        return done.stdout.strip()

    def sql(statement: str) -> str:
        return as_postgres(str(pg / "psql"), "-U", "archive", "-d", "postgres", "-At", "-c", statement)

    def start() -> None:
        as_postgres(str(pg / "pg_ctl"), "-D", str(data), "-l", str(sock / "pg.log"), "-w", "-t", "60", "start")

    command = _services()["postgres"]["command"]
    options = [command[i + 1] for i, t in enumerate(command) if t == "-c"]
    as_postgres(str(pg / "initdb"), "-D", str(data), "-U", "archive", "--auth=trust")
    with (data / "postgresql.conf").open("a") as conf:  # the compose file's -c options, as configuration lines
        conf.write(f"port = {port}\nunix_socket_directories = '{sock}'\nlisten_addresses = ''\n")
        for option in options:
            key, value = option.split("=", 1)
            conf.write(f"{key} = '{value.replace('/wal-archive', str(wal))}'\n")
    start()
    try:
        sql("CREATE TABLE item (note text)")
        sql("INSERT INTO item VALUES ('before the base backup')")
        line = next(x for x in _block("pg_basebackup").replace("\\\n", " ").splitlines() if "pg_basebackup" in x)
        line = line[line.index("pg_basebackup"):].replace("/wal-archive", str(wal))
        as_postgres("sh", "-c", f"{pg}/{line}")  # as in the container: a shell, for $(date +%F)
        day = next((wal / "base").iterdir()).name
        sql("INSERT INTO item VALUES ('kept')")
        time.sleep(1.1)
        moment = sql("SELECT now()")
        time.sleep(1.1)
        sql("INSERT INTO item VALUES ('the mistake')")
        segment = sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        sql("SELECT pg_switch_wal()")
        for _ in range(100):  # archive_command has copied the segment holding the mistake
            if (wal / segment).exists():
                break
            time.sleep(0.1)
        assert (wal / segment).exists(), "the compose file's archive_command did not archive the WAL"
    finally:
        as_postgres(str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "stop", check=False)

    tokens = shlex.split(_block("recovery_target_time"), comments=True)
    script = tokens[tokens.index("--entrypoint") + 4]  # dc run --rm --no-deps --entrypoint sh postgres -c '…'
    assert tokens[tokens.index("--entrypoint") + 3] == "-c"
    target = re.search(r"recovery_target_time = '\\''([^']+)'\\''", _block("recovery_target_time"))
    assert target
    script = (script.replace("/var/lib/postgresql/data", str(data)).replace("/wal-archive", str(wal))
              .replace("base/2026-12-01/", f"base/{day}/").replace(target.group(1), moment))
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    start()
    try:
        for _ in range(100):
            if sql("SELECT pg_is_in_recovery()") == "f":
                break
            time.sleep(0.2)
        assert sql("SELECT pg_is_in_recovery()") == "f"
        assert sql("SELECT string_agg(note, ',' ORDER BY note) FROM item") == "before the base backup,kept"
        sql("INSERT INTO item VALUES ('writable again')")
    finally:
        as_postgres(str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "stop", check=False)
