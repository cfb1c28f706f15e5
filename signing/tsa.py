"""RFC 3161 time stamps: the client for a configured TSA, and a local TSA for development and tests.

The local TSA is pyhanko's DummyTimeStamper (it signs every request with the development PKI's
time-stamping certificate) behind a threaded ``http.server`` on 127.0.0.1. It is a development tool:
it has no policy, no audit log and trusts the machine clock.
"""

from __future__ import annotations

import base64
import logging
import threading
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from pyhanko.sign.general import as_signing_certificate, simple_cms_attribute
from pyhanko.sign.timestamps import DummyTimeStamper, TimeStamper
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from signing.certificates import DevPki, load_private_key, to_asn1_certificate, to_asn1_key
from signing.errors import CertificateProblem, TimestampUnavailable
from signing.revocation import CRL_PATH, OCSP_PATH, RevocationService

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
PROBE_TIMEOUT = 2.0
MAX_REQUEST_BYTES = 64 * 1024
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
OCSP_REPLY_TYPE = "application/ocsp-response"
CRL_TYPE = "application/pkix-crl"


def http_timestamper(url: str, timeout: float = DEFAULT_TIMEOUT) -> TimeStamper:
    """An RFC 3161 client for ``url`` (HTTP POST, application/timestamp-query)."""
    return RequestsHTTPTimeStamper(url, timeout=timeout)


def probe_tsa(url: str, timeout: float = PROBE_TIMEOUT) -> None:
    """A cheap reachability check that spends no time-stamp token: one HTTP GET with a short time-out.

    Any answer below 500 means the service is there (an RFC 3161 endpoint usually answers a GET with 405);
    a connection error or time-out is TimestampUnavailable ``tsa_unreachable``, a 5xx ``tsa_error``.
    """
    import requests

    try:
        status = requests.get(url, timeout=timeout, allow_redirects=False).status_code
    except requests.RequestException as exc:
        log.warning("TSA %s unreachable: %r", url, exc)
        raise TimestampUnavailable("时间戳服务无法连接", code="tsa_unreachable",
                                   detail={"reason": type(exc).__name__}) from exc
    if status >= 500:
        log.warning("TSA %s answered HTTP %s", url, status)
        raise TimestampUnavailable(f"时间戳服务返回错误（HTTP {status}）", code="tsa_error", detail={"status": status})


class _DevTimeStamper(DummyTimeStamper):
    """DummyTimeStamper keeping the parsed RSA key (it re-parses it per token, ~150 ms for RSA-3072)."""

    def __init__(self, tsa_cert: x509.Certificate, tsa_key: rsa.RSAPrivateKey,
                 embed: list[x509.Certificate]) -> None:
        super().__init__(tsa_cert=to_asn1_certificate(tsa_cert), tsa_key=to_asn1_key(tsa_key),
                         # the ignore below: pyhanko's annotation is narrower than the list it accepts at run time
                         certs_to_embed=[to_asn1_certificate(c) for c in embed])  # type: ignore[arg-type]
        self._key = tsa_key

    def _sign_tst_info(self, tst_info_data: bytes, md_algorithm: str, dt: datetime
                       ) -> tuple[bytes, cms.CMSAttributes]:
        digest = hashes.Hash(get_pyca_cryptography_hash(md_algorithm))
        digest.update(tst_info_data)
        signed_attrs = cms.CMSAttributes([
            simple_cms_attribute("content_type", "tst_info"),
            simple_cms_attribute("signing_time", cms.Time({"utc_time": core.UTCTime(dt)})),
            simple_cms_attribute("signing_certificate", as_signing_certificate(self.tsa_cert)),
            simple_cms_attribute("message_digest", digest.finalize()),
        ])
        signature = self._key.sign(signed_attrs.dump(), PKCS1v15(),
                                   get_pyca_cryptography_hash(md_algorithm.upper()))
        return signature, signed_attrs


def dev_timestamper(pki: DevPki) -> DummyTimeStamper:
    """An in-process TSA signing with the development PKI's time-stamping certificate (RSA)."""
    tsa_cert = x509.load_pem_x509_certificate(Path(pki.tsa_cert).read_bytes())
    ca_cert = x509.load_pem_x509_certificate(Path(pki.ca_cert).read_bytes())
    key = load_private_key(pki.tsa_key)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateProblem("本地时间戳服务只支持 RSA 密钥", code="certificate_unreadable",
                                 detail={"path": str(pki.tsa_key)})
    return _DevTimeStamper(tsa_cert, key, [ca_cert])


class _Handler(BaseHTTPRequestHandler):
    server: _TsaHttpServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.path.rstrip("/").endswith("/" + OCSP_PATH) and self.server.revocation is not None:
            if not 0 < length <= MAX_REQUEST_BYTES:
                self._reply(400, b"expected an OCSP request", "text/plain")
                return
            self._reply(200, self.server.revocation.ocsp(self.rfile.read(length)), OCSP_REPLY_TYPE)
            return
        if self.headers.get_content_type() != QUERY_TYPE or not 0 < length <= MAX_REQUEST_BYTES:
            self._reply(400, b"expected an RFC 3161 application/timestamp-query", "text/plain")
            return
        try:
            request = tsp.TimeStampReq.load(self.rfile.read(length))
            request.native  # noqa: B018 - parse it all now, so a bad request is a 400
            response = self.server.stamper.request_tsa_response(request).dump()
        except (ValueError, TypeError, KeyError) as exc:
            self._reply(400, f"bad time-stamp request: {exc}".encode(), "text/plain")
            return
        self._reply(200, response, REPLY_TYPE)

    def do_GET(self) -> None:
        revocation = self.server.revocation
        if revocation is not None and self.path.rstrip("/").endswith("/" + CRL_PATH):
            self._reply(200, revocation.crl(), CRL_TYPE)
            return
        if revocation is not None and f"/{OCSP_PATH}/" in self.path:  # RFC 6960 A.1 GET: base64 of the request
            encoded = urllib.parse.unquote(self.path.split(f"/{OCSP_PATH}/", 1)[1])
            try:
                request = base64.b64decode(encoded, validate=True)
            except ValueError:
                self._reply(400, b"bad OCSP GET request", "text/plain")
                return
            self._reply(200, revocation.ocsp(request), OCSP_REPLY_TYPE)
            return
        self._reply(405, b"POST an RFC 3161 time-stamp request", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("tsa %s " + format, self.address_string(), *args)


class _TsaHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], stamper: DummyTimeStamper,
                 revocation: RevocationService | None = None) -> None:
        super().__init__(address, _Handler)
        self.stamper = stamper
        self.revocation = revocation


class LocalTsa:
    """A local RFC 3161 TSA over HTTP. Use as a context manager, or ``start()``/``stop()``.

    With the development CA's key at hand it also serves that CA's CRL (GET ``/crl``) and OCSP (POST ``/ocsp``,
    GET ``/ocsp/<base64>``): see signing.revocation.
    """

    def __init__(self, pki: DevPki, host: str = "127.0.0.1", port: int = 0) -> None:
        revocation = RevocationService(pki) if pki.ca_key.exists() else None
        self._server = _TsaHttpServer((host, port), dev_timestamper(pki), revocation)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> LocalTsa:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-tsa", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (``archive tsa``)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving (if started with ``start()``) and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalTsa:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_tsa(host: str, port: int, pki: DevPki) -> LocalTsa:
    """Start the local TSA in a background thread; ``.url`` is where it listens, ``.stop()`` ends it."""
    return LocalTsa(pki, host, port).start()
