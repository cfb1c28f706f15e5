"""Test support for object storage: one in-process moto S3 server, sample objects, store builders."""

from __future__ import annotations

import atexit
import io
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.server import ThreadedMotoServer

from signing.fixity import Digests, digest_bytes
from storage.base import ObjectInfo, ObjectStore, content_key
from storage.s3 import S3Store

FAR = datetime(2056, 1, 1, tzinfo=UTC)
FARTHER = datetime(2070, 1, 1, tzinfo=UTC)
_endpoint: str | None = None


def moto_endpoint() -> str:
    """host:port of moto's S3 server on 127.0.0.1, started once per test process."""
    global _endpoint
    if _endpoint is None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        atexit.register(server.stop)
        host, port = server.get_host_and_port()
        _endpoint = f"{host}:{port}"
    return _endpoint


def new_s3_store(endpoint: str | None = None, **options: Any) -> S3Store:
    """An S3 store on a fresh bucket (created with object lock on first use)."""
    bucket = f"test-{uuid.uuid4().hex[:24]}"
    return S3Store(endpoint or moto_endpoint(), "testing", "testing", bucket, secure=False, **options)


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
