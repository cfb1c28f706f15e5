"""Signing fixtures: one development PKI, one local TSA and one rendition per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509

from signing.certificates import DevPki, KeySigner, ensure_dev_pki, load_pki_signer, load_trust_roots
from signing.rendition import build_rendition
from signing.tsa import LocalTsa
from tests.signing.support import jpeg_documents, metadata


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return ensure_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def signer(pki: DevPki) -> KeySigner:
    return load_pki_signer(pki.directory)


@pytest.fixture(scope="session")
def roots(pki: DevPki) -> list[x509.Certificate]:
    return load_trust_roots(pki.directory)


@pytest.fixture(scope="session")
def tsa(pki: DevPki) -> Iterator[LocalTsa]:
    with LocalTsa(pki) as server:
        yield server


@pytest.fixture(scope="session")
def rendition() -> bytes:
    return build_rendition(jpeg_documents(3), metadata())


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="session")
def signed_bt(rendition: bytes, signer: KeySigner, tsa: LocalTsa) -> bytes:
    from signing.pades import sign_pdf
    from signing.tsa import http_timestamper

    return sign_pdf(rendition, signer, timestamper=http_timestamper(tsa.url))
