"""Local RFC 3161 TSA: answers time-stamp queries, refuses anything else, starts and stops cleanly."""

from __future__ import annotations

import hashlib
import socket

import pytest
import requests
from asn1crypto import algos, tsp
from cryptography import x509

from archive.settings import load_settings
from archive.wiring import timestamper_from_settings
from signing.certificates import DevPki, load_certificates
from signing.tsa import QUERY_TYPE, REPLY_TYPE, LocalTsa, serve_tsa


def _query(data: bytes = b"archive") -> bytes:
    imprint = tsp.MessageImprint({"hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                                  "hashed_message": hashlib.sha256(data).digest()})
    return tsp.TimeStampReq({"version": 1, "message_imprint": imprint, "nonce": 12345, "cert_req": True}).dump()


def test_local_tsa_grants_a_token_signed_by_the_tsa_certificate(tsa: LocalTsa, pki: DevPki) -> None:
    """Given the local TSA, When an RFC 3161 query is POSTed, Then the reply is granted, echoes the imprint and nonce,
    and carries the development TSA certificate."""
    reply = requests.post(tsa.url, data=_query(), headers={"Content-Type": QUERY_TYPE}, timeout=5)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == REPLY_TYPE
    response = tsp.TimeStampResp.load(reply.content)
    assert response["status"]["status"].native == "granted"
    signed = response["time_stamp_token"]["content"]
    info = signed["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(b"archive").digest()
    assert info["nonce"].native == 12345
    tsa_cert = load_certificates(pki.tsa_cert)[0]
    embedded = [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]]
    assert tsa_cert in embedded


@pytest.mark.parametrize(("method", "body", "content_type", "status"), [
    ("post", b"not asn.1", QUERY_TYPE, 400),
    ("post", b"x", "text/plain", 400),
    ("get", None, None, 405),
], ids=["garbage-query", "wrong-content-type", "get"])
def test_local_tsa_refuses_anything_but_a_query(tsa: LocalTsa, method: str, body: bytes | None,
                                                content_type: str | None, status: int) -> None:
    """Given the local TSA, When it receives garbage, a wrong content type or a GET, Then it answers 400/405."""
    headers = {"Content-Type": content_type} if content_type else {}
    assert requests.request(method, tsa.url, data=body, headers=headers, timeout=5).status_code == status


def test_serve_tsa_listens_on_a_free_port_and_stops_cleanly(pki: DevPki) -> None:
    """Given serve_tsa on port 0, When started and stopped,
    Then it listened on 127.0.0.1 and the port is closed after."""
    server = serve_tsa("127.0.0.1", 0, pki)
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    assert requests.post(server.url, data=_query(), headers={"Content-Type": QUERY_TYPE}, timeout=5).ok
    server.stop()
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(1)
        s.connect(("127.0.0.1", port))


def test_timestamper_comes_from_settings() -> None:
    """Given settings with and without ARCHIVE_TSA_URL, When asked for a time stamper, Then an HTTP client for that URL,
    or None (PAdES B-B)."""
    assert timestamper_from_settings(load_settings()) is None
    stamper = timestamper_from_settings(load_settings(tsa_url="http://tsa.example/"), timeout=3)
    assert stamper is not None and stamper.url == "http://tsa.example/" and stamper.timeout == 3
