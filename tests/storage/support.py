"""Test support for object storage: the real S3 gateway, moto for fault injection only, sample objects.

S3 behaviour (object lock, versions, checksums) is tested on a real server: the Ceph RADOS Gateway that
``scripts/s3-gateway start`` runs, announced by ARCHIVE_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY. Without
it those tests are skipped, or fail when ARCHIVE_TEST_REQUIRE_S3=1 (CI). moto only stands behind the proxies
that inject faults (503s, TLS, a dead endpoint), where the server's own behaviour is not what is tested.
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from signing.fixity import Digests, digest_bytes
from storage.base import ObjectInfo, ObjectStore, content_key
from storage.s3 import S3Store

FAR = datetime(2056, 1, 1, tzinfo=UTC)
FARTHER = datetime(2070, 1, 1, tzinfo=UTC)
_moto: str | None = None


class Gateway(NamedTuple):
    endpoint: str
    access_key: str
    secret_key: str


def gateway() -> Gateway | None:
    """The real S3 server (object lock) the environment names, or None."""
    endpoint = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT", "").strip()
    if not endpoint:
        return None
    return Gateway(endpoint.removeprefix("http://").rstrip("/"), os.environ.get("ARCHIVE_TEST_S3_ACCESS_KEY", ""),
                   os.environ.get("ARCHIVE_TEST_S3_SECRET_KEY", ""))


def require_gateway() -> Gateway:
    """The gateway, else skip the test (fail it when ARCHIVE_TEST_REQUIRE_S3=1)."""
    found = gateway()
    if found is None:
        why = "no S3 gateway: run scripts/s3-gateway start and export the ARCHIVE_TEST_S3_* lines it prints"
        if os.environ.get("ARCHIVE_TEST_REQUIRE_S3") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return found


def new_bucket() -> str:
    return f"t-{uuid.uuid4().hex[:24]}"


def new_s3_store(bucket: str | None = None, **options: Any) -> S3Store:
    """An S3 store on the real gateway, on a fresh bucket (created with object lock on first use)."""
    gw = require_gateway()
    return S3Store(gw.endpoint, gw.access_key, gw.secret_key, bucket or new_bucket(), secure=False, **options)


def moto_endpoint() -> str:
    """host:port of an in-process moto S3 server: ONLY behind fault-injecting proxies (503, TLS, dead peers)."""
    global _moto
    if _moto is None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        atexit.register(server.stop)
        host, port = server.get_host_and_port()
        _moto = f"{host}:{port}"
    return _moto


def new_moto_bucket() -> str:
    """A fresh bucket name on moto (created by the first store that uses it)."""
    return new_bucket()


@dataclass(frozen=True)
class Blob:
    data: bytes
    digests: Digests
    key: str

    @property
    def sha256(self) -> str:
        return self.digests.sha256

    def stream(self) -> io.BytesIO:
        return io.BytesIO(self.data)


def blob(size: int = 4096, seed: int = 1, prefix: str = "originals") -> Blob:
    data = random.Random(seed).randbytes(size)
    digests = digest_bytes(data)
    return Blob(data, digests, content_key(prefix, digests.sha256))


def put(store: ObjectStore, b: Blob, **options: Any) -> ObjectInfo:
    return store.put(b.key, b.stream(), size=len(b.data), sha256=b.sha256, **options)


def read_all(store: ObjectStore, key: str, **options: Any) -> bytes:
    with store.get(key, **options) as stream:
        return stream.read()
