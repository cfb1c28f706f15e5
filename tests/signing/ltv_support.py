"""A development PKI whose certificates name a local CRL/OCSP service (PAdES B-LT tests), and a TSA certificate
that can be replaced (archive time-stamp renewal tests)."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signing.certificates import DevPki, _write_cert, _write_key, ensure_dev_pki, issue_certificate, load_private_key
from signing.revocation import revocation_extensions
from signing.tsa import LocalTsa

YEAR = dt.timedelta(days=365)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LtvPki:
    pki: DevPki
    port: int
    url: str

    def serve(self) -> LocalTsa:
        """The local TSA + OCSP/CRL service on the port the certificates name (not started: use ``with``)."""
        return LocalTsa(self.pki, port=self.port)

    def new_tsa_certificate(self, days: int) -> x509.Certificate:
        """Replace the TSA certificate (as a TSA does when its certificate nears expiry)."""
        now = dt.datetime.now(dt.UTC)
        ca = x509.load_pem_x509_certificate(self.pki.ca_cert.read_bytes())
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = issue_certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"测试时间戳 {days} 天")]), key.public_key(), ca,
            load_private_key(self.pki.ca_key), not_before=now - dt.timedelta(hours=1),
            not_after=now + dt.timedelta(days=days),
            key_usage=x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            extended_key_usage=[ExtendedKeyUsageOID.TIME_STAMPING], extensions=revocation_extensions(self.url))
        _write_key(self.pki.tsa_key, key)
        _write_cert(self.pki.tsa_cert, cert)
        return cert


def make_ltv_pki(directory: Path) -> LtvPki:
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    return LtvPki(ensure_dev_pki(directory, service_url=url), port, url)
