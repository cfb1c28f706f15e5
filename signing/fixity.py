"""Fixity: SHA-256 and SM3 digests computed together in one streaming pass.

SM3 (GB/T 32905) comes from OpenSSL through hashlib when it offers it, else from ``cryptography``;
never from a pure-Python implementation (those run at ~0.1 MB/s).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


class _CryptographySM3:
    def __init__(self) -> None:
        from cryptography.hazmat.primitives import hashes

        self._h = hashes.Hash(hashes.SM3())
        self._hex: str | None = None

    def update(self, data: bytes, /) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        if self._hex is None:
            self._hex = self._h.finalize().hex()
        return self._hex


def _new_sm3() -> hashlib._Hash | _CryptographySM3:
    try:
        return hashlib.new("sm3")
    except ValueError:
        return _CryptographySM3()


@dataclass(frozen=True)
class Digests:
    sha256: str
    sm3: str
    size: int


class Hasher:
    """Feed bytes once; read both digests and the byte count at the end."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._sm3 = _new_sm3()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        self._sm3.update(data)
        self.size += len(data)

    def digests(self) -> Digests:
        return Digests(self._sha256.hexdigest(), self._sm3.hexdigest(), self.size)


def digest_bytes(data: bytes) -> Digests:
    h = Hasher()
    h.update(data)
    return h.digests()


def digest_chunks(chunks: Iterable[bytes]) -> Digests:
    h = Hasher()
    for chunk in chunks:
        h.update(chunk)
    return h.digests()


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK) -> Digests:
    """Digest a readable binary stream to its end without holding it in memory."""
    h = Hasher()
    while chunk := stream.read(chunk_size):
        h.update(chunk)
    return h.digests()


class DigestingReader:
    """Wraps a stream so whatever reads it (an upload, a file copy) also computes the digests."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.hasher = Hasher()

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.hasher.update(data)
        return data

    def digests(self) -> Digests:
        return self.hasher.digests()
