"""S3 store on the real gateway (object lock, lock-date cap, written versions, multipart); moto only behind the
fault-injecting proxies (503s, TLS, checksum headers) and for stores that are down."""

from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from minio.error import S3Error

from storage.base import IntegrityFailure, StoreUnavailable
from storage.errors import StorageConfigError
from storage.s3 import MIN_PART_SIZE, S3Store
from tests.storage.support import (
    FAR,
    FARTHER,
    blob,
    moto_endpoint,
    new_moto_bucket,
    new_s3_store,
    put,
    read_all,
)


class FlakyProxy:
    """A proxy in front of moto that answers 503 SlowDown to the next ``failures`` requests whose
    method is in ``methods``, and records the headers of every request it forwards."""

    def __init__(self, target: str, failures: int, methods: tuple[str, ...] = ("GET", "HEAD", "PUT"),
                 tls: ssl.SSLContext | None = None) -> None:
        self.failures, self.methods = failures, methods
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.refused = 0
        host, port = target.split(":")
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.failures > 0 and self.command in proxy.methods:
                    proxy.failures -= 1
                    proxy.refused += 1
                    self.send_response(503)
                    payload = b"<Error><Code>SlowDown</Code><Message>slow down</Message></Error>"
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                proxy.requests.append((self.command, self.path, dict(self.headers)))
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers))
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy() -> Iterator[FlakyProxy]:
    p = FlakyProxy(moto_endpoint(), failures=0)
    yield p
    p.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_server_itself_holds_compliance_retention_and_the_legal_hold() -> None:
    """Given an object put with retention and a hold, When the bucket is inspected with a raw client,
    Then the server reports COMPLIANCE until 2056 and the hold, and refuses to delete the version."""
    store = new_s3_store()
    b = blob()
    put(store, b, retain_until=FAR, legal_hold=True)
    client = store._client
    headers = client.stat_object(store.bucket, b.key).metadata
    assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert headers["x-amz-object-lock-retain-until-date"].startswith("2056-01-01T00:00:00")
    assert headers["x-amz-object-lock-legal-hold"] == "ON"
    assert headers["x-amz-meta-sha256"] == b.sha256
    version = next(iter(client.list_objects(store.bucket, prefix=b.key, include_version=True))).version_id
    with pytest.raises(S3Error) as exc:
        client.remove_object(store.bucket, b.key, version_id=version)
    assert exc.value.code == "AccessDenied"


def test_the_bucket_is_created_with_object_lock_when_missing() -> None:
    """Given a bucket name that does not exist yet, When the store is first used, Then the bucket exists
    with object lock enabled."""
    store = new_s3_store()
    assert not store._client.bucket_exists(store.bucket)
    assert store.health()["ok"] is True
    assert store._client.bucket_exists(store.bucket)
    store._client.get_object_lock_config(store.bucket)  # raises when object lock is off


def test_governance_mode_is_configurable_and_never_downgrades_compliance() -> None:
    """Given a store configured for GOVERNANCE, When it puts and extends, Then new objects are GOVERNANCE,
    while an object already under COMPLIANCE stays COMPLIANCE when extended."""
    governance = new_s3_store(retention_mode="GOVERNANCE")
    b = blob()
    put(governance, b, retain_until=FAR)
    mode = governance._client.stat_object(governance.bucket, b.key).metadata["x-amz-object-lock-mode"]
    assert mode == "GOVERNANCE"

    compliance = new_s3_store(governance.bucket)
    c = blob(seed=2)
    put(compliance, c, retain_until=FAR)
    governance.set_retention(c.key, FARTHER)
    headers = governance._client.stat_object(governance.bucket, c.key).metadata
    assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
    assert governance.stat(c.key).retain_until == FARTHER


def test_a_locked_put_carries_the_sha256_checksum_header(proxy: FlakyProxy) -> None:
    """Given plain HTTP (no automatic Content-MD5), When a retained object is put,
    Then the PUT sends x-amz-checksum-sha256 with the object's digest."""
    store = S3Store(proxy.endpoint, "testing", "testing", new_moto_bucket(), secure=False)
    b = blob()
    put(store, b, retain_until=FAR)
    puts = [h for method, path, h in proxy.requests if method == "PUT" and b.key in path]
    assert puts, "no PUT of the object reached the server"
    headers = {k.lower(): v for k, v in puts[0].items()}
    assert headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(b.sha256)).decode()
    assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"


def test_large_objects_go_up_in_parts_and_keep_their_locks() -> None:
    """Given an object larger than the part size, When put with retention and a hold,
    Then it is uploaded in parts, reads back whole, and the server holds retention and hold."""
    store = new_s3_store(part_size=MIN_PART_SIZE)
    b = blob(2 * MIN_PART_SIZE + 12345)
    info = put(store, b, sm3=b.digests.sm3, retain_until=FAR, legal_hold=True)
    assert (info.size, info.retain_until, info.legal_hold, info.sm3) == (len(b.data), FAR, True, b.digests.sm3)
    st = store._client.stat_object(store.bucket, b.key)
    assert st.etag.endswith("-3")  # a multipart ETag names its part count
    assert st.metadata["x-amz-object-lock-legal-hold"] == "ON"
    assert read_all(store, b.key) == b.data
    assert read_all(store, b.key, offset=MIN_PART_SIZE - 5, length=10) == b.data[MIN_PART_SIZE - 5:MIN_PART_SIZE + 5]


def test_a_damaged_large_upload_is_aborted_and_leaves_nothing() -> None:
    """Given a multipart upload whose last bytes are damaged, When put, Then IntegrityFailure,
    no object, and no incomplete upload left in the bucket."""
    store = new_s3_store(part_size=MIN_PART_SIZE)
    b = blob(MIN_PART_SIZE + 1000)
    damaged = bytearray(b.data)
    damaged[-1] ^= 1
    with pytest.raises(IntegrityFailure):
        store.put(b.key, io.BytesIO(bytes(damaged)), size=len(damaged), sha256=b.sha256, retain_until=FAR)
    assert not store.exists(b.key)
    uploads = store._client._list_multipart_uploads(store.bucket)
    assert list(uploads.uploads) == []


def test_a_store_that_is_down_is_reported_quickly_and_clearly() -> None:
    """Given an endpoint where nothing listens, When the store is used, Then StoreUnavailable within
    seconds, naming the endpoint and what to check; health says not ok."""
    endpoint = f"127.0.0.1:{_free_port()}"
    store = S3Store(endpoint, "testing", "testing", "archive", secure=False)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as exc:
        put(store, blob())
    assert time.monotonic() - started < 5
    assert exc.value.code == "store_unavailable" and exc.value.kind == "unavailable"
    assert endpoint in exc.value.message and "ARCHIVE_S3_ENDPOINT" in exc.value.message
    health = store.health()
    assert health["ok"] is False and endpoint in health["detail"]


def test_transient_server_errors_are_retried() -> None:
    """Given an endpoint whose next two PUTs, then next two GETs, are answered 503 SlowDown,
    When an object is put and read, Then the store retries with backoff and both succeed."""
    proxy = FlakyProxy(moto_endpoint(), failures=0)
    try:
        store = S3Store(proxy.endpoint, "testing", "testing", new_moto_bucket(), secure=False)
        assert store.health()["ok"]
        b = blob()
        proxy.failures, proxy.methods = 2, ("PUT",)
        put(store, b, retain_until=FAR)
        proxy.failures, proxy.methods = 2, ("GET",)
        assert read_all(store, b.key) == b.data
        assert proxy.refused == 4
    finally:
        proxy.close()


def test_a_server_that_keeps_failing_is_unavailable() -> None:
    """Given an endpoint that always answers 503, When the store is used, Then StoreUnavailable after
    a bounded number of retries."""
    proxy = FlakyProxy(moto_endpoint(), failures=10**6)
    try:
        store = S3Store(proxy.endpoint, "testing", "testing", "archive", secure=False, retries=2)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.stat("originals/x")
        assert time.monotonic() - started < 5
    finally:
        proxy.close()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "archive test minio")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "minio.crt", tmp_path / "minio.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_with_the_centres_ca_file_works_and_without_it_fails_clearly(tmp_path: Path) -> None:
    """Given a TLS endpoint with a self-signed certificate, When the store trusts that CA (ARCHIVE_S3_CA_FILE),
    Then objects round-trip; When it does not, Then StoreUnavailable names the TLS problem and the setting."""
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    proxy = FlakyProxy(moto_endpoint(), failures=0, tls=context)
    try:
        bucket = new_moto_bucket()
        trusted = S3Store(proxy.endpoint, "testing", "testing", bucket, secure=True, ca_file=cert_file)
        b = blob()
        put(trusted, b, retain_until=FAR)
        assert read_all(trusted, b.key) == b.data
        untrusted = S3Store(proxy.endpoint, "testing", "testing", bucket, secure=True, retries=0)
        with pytest.raises(StoreUnavailable) as exc:
            untrusted.stat(b.key)
        assert "TLS" in exc.value.message and "ARCHIVE_S3_CA_FILE" in exc.value.message
    finally:
        proxy.close()


def test_a_bucket_without_object_lock_is_refused() -> None:
    """Given an existing bucket created without object lock, When the store is used,
    Then a StorageConfigError explains that archive objects need object lock."""
    store = new_s3_store()
    store._client.make_bucket(store.bucket)
    with pytest.raises(StorageConfigError) as exc:
        put(store, blob())
    assert exc.value.code == "bucket_without_object_lock" and store.bucket in exc.value.message
    assert store.health()["ok"] is False


def test_bad_settings_are_a_config_error() -> None:
    """Given an invalid bucket name or a too-small part size, When the store is built, Then StorageConfigError."""
    with pytest.raises(StorageConfigError):
        S3Store("127.0.0.1:1", "k", "s", "Not_A_Bucket", secure=False)
    with pytest.raises(StorageConfigError):
        S3Store("127.0.0.1:1", "k", "s", "archive", secure=False, part_size=1024)
    with pytest.raises(StorageConfigError) as exc:
        S3Store("127.0.0.1:1", "k", "s", "archive", secure=False, max_retain_until=datetime(2020, 1, 1, tzinfo=UTC))
    assert "ARCHIVE_S3_MAX_RETAIN_UNTIL" in exc.value.message


# --- limits of real servers (feasibility.md §11) ------------------------------------------------------------

CAP = datetime(2106, 1, 1, tzinfo=UTC)


def test_a_lock_beyond_the_servers_limit_is_capped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Given a 100-year lock ending in 2127 (past RGW's 32-bit limit), When put and later extended to 2200,
    Then the server holds 2106-01-01 (not a wrapped date in 1970), and the cap is logged."""
    store = new_s3_store()
    b = blob()
    with caplog.at_level("WARNING", logger="storage.s3"):
        info = put(store, b, retain_until=datetime(2127, 1, 1, tzinfo=UTC))
    assert info.retain_until == CAP == store.retain_limit()
    assert any("capped" in r.getMessage() and b.key in r.getMessage() for r in caplog.records)
    headers = store._client.stat_object(store.bucket, b.key).metadata
    assert headers["x-amz-object-lock-retain-until-date"].startswith("2106-01-01T00:00:00")
    assert store.set_retention(b.key, datetime(2200, 1, 1, tzinfo=UTC)).retain_until == CAP
    assert put(store, b, retain_until=datetime(2300, 1, 1, tzinfo=UTC)).retain_until == CAP


def test_without_the_cap_a_wrapped_lock_fails_and_leaves_no_object() -> None:
    """Given the cap switched off, When a lock in 2107 is asked for (the gateway wraps it into 1970),
    Then the put fails clearly and the written version is removed: nothing uncatalogued looks locked."""
    store = new_s3_store(max_retain_until=None)
    b = blob()
    with pytest.raises(StoreUnavailable) as exc:
        put(store, b, retain_until=datetime(2107, 1, 1, tzinfo=UTC))
    assert "ARCHIVE_S3_MAX_RETAIN_UNTIL" in exc.value.message and exc.value.detail["removed"] is True
    assert not store.exists(b.key)
    assert list(store._client.list_objects(store.bucket, include_version=True, recursive=True)) == []


def test_reads_return_the_version_that_was_written() -> None:
    """Given a locked object, When another client PUTs other bytes under the same key (object lock allows a new
    version), Then get and stat - in this process and in a fresh one - still give the original bytes and digest,
    and retention applies to the original version."""
    store = new_s3_store()
    b, intruder = blob(seed=1), blob(seed=2)
    put(store, b, retain_until=FAR)
    store._client.put_object(store.bucket, b.key, io.BytesIO(intruder.data), len(intruder.data),
                             metadata={"sha256": intruder.sha256})
    assert store._client.get_object(store.bucket, b.key).read() == intruder.data  # what an unpinned read sees
    fresh = new_s3_store(store.bucket)
    for s in (store, fresh):
        assert read_all(s, b.key) == b.data
        assert read_all(s, b.key, offset=10, length=5) == b.data[10:15]
        assert s.stat(b.key).sha256 == b.sha256
    assert fresh.set_retention(b.key, FARTHER).retain_until == FARTHER
    assert list(fresh.list_keys()) == [b.key]
    assert [code for code, _ in fresh.version_problems(b.key)] == ["extra_versions"]


def test_a_delete_marker_does_not_hide_the_written_version() -> None:
    """Given a locked object, When another client deletes it without a version id (a delete marker),
    Then the store still lists, stats and reads it, and reports the marker."""
    store = new_s3_store()
    b = blob()
    put(store, b, retain_until=FAR)
    store._client.remove_object(store.bucket, b.key)
    fresh = new_s3_store(store.bucket)
    assert list(fresh.list_keys()) == [b.key]
    assert read_all(fresh, b.key) == b.data
    problems = fresh.version_problems(b.key)
    assert [code for code, _ in problems] == ["delete_marker"] and "删除标记" in problems[0][1]


def test_retain_until_with_nanoseconds_is_parsed() -> None:
    """Given the gateway's retain-until format (nine fraction digits), When parsed, Then an aware UTC datetime."""
    from storage.s3 import _parse_time

    assert _parse_time("2026-12-03T17:27:41.211000000Z") == datetime(2026, 12, 3, 17, 27, 41, 211000, tzinfo=UTC)
    assert _parse_time("2056-01-01T00:00:00Z") == FAR
    assert _parse_time("2056-01-01T08:00:00.123456789+08:00") == datetime(2056, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


def test_the_store_uses_only_minios_public_api() -> None:
    """Given storage/s3.py, When its client calls are read, Then none is a private minio method (they change
    without notice between minio releases)."""
    import re

    source = Path(__file__).parents[2].joinpath("storage", "s3.py").read_text(encoding="utf-8")
    assert re.findall(r"_client\._\w+", source) == []
