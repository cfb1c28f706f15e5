"""A SoftHSM2 token for tests of the PKCS#11 signer (Debian's softhsm2 + opensc's pkcs11-tool).

One token directory per test session (SoftHSM reads SOFTHSM2_CONF once, when the module is first initialised in the
process, so every token is made before any test loads the module): token ``archive`` holds the development PKI's
signing key and certificate under label ``signer``; token ``mismatch`` holds another key under ``signer`` next to
the same certificate. Without softhsm2 the tests skip, unless ARCHIVE_TEST_REQUIRE_HSM=1 (CI), which fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "123456"
SO_PIN = "87654321"
REQUIRE_HSM = os.environ.get("ARCHIVE_TEST_REQUIRE_HSM") == "1"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    pin_file: Path
    wrong_pin_file: Path
    pki_dir: Path  # the development PKI whose CA issued the token's certificate

    def settings(self, token: str = "archive", **overrides: object) -> dict[str, object]:
        """Settings (keyword arguments of load_settings) for the PKCS#11 signer on ``token``."""
        return {"signer": "pkcs11", "pkcs11_module": self.module, "pkcs11_token_label": token,
                "pkcs11_key_label": "signer", "pkcs11_pin_file": self.pin_file, **overrides}


def _run(*args: str | Path) -> None:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")


def _token(label: str, key_pem: Path, cert_der: Path) -> None:
    _run("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SO_PIN)
    _run("softhsm2-util", "--import", key_pem, "--token", label, "--label", "signer", "--id", "01", "--pin", PIN)
    _run("pkcs11-tool", "--module", MODULE, "--token-label", label, "--login", "--pin", PIN, "--write-object",
         cert_der, "--type", "cert", "--label", "signer", "--id", "01")


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory, pki_template: Path) -> Iterator[SoftHsm]:
    missing = [t for t in ("softhsm2-util", "pkcs11-tool") if shutil.which(t) is None]
    if not MODULE.exists():
        missing.append(str(MODULE))
    try:
        import pkcs11  # noqa: F401
    except ImportError:
        missing.append("python-pkcs11")
    if missing:
        if REQUIRE_HSM:
            pytest.fail(f"SoftHSM2 is required (ARCHIVE_TEST_REQUIRE_HSM=1) but missing: {', '.join(missing)}")
        pytest.skip(f"SoftHSM2 not available: {', '.join(missing)}")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((pki_template / "signer.pem").read_bytes())
    cert_der = root / "signer.der"
    cert_der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    other = root / "other.key.pem"
    other.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    _token("archive", pki_template / "signer.key.pem", cert_der)
    _token("mismatch", other, cert_der)
    (root / "pin").write_text(PIN + "\n")
    (root / "wrong-pin").write_text("000000\n")
    yield SoftHsm(MODULE, root / "pin", root / "wrong-pin", pki_template)
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before
