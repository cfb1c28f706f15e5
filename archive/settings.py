"""One settings object for the whole system (pydantic-settings, ``ARCHIVE_`` prefix).

With no configuration at all the system runs on embedded defaults: a SQLite catalogue, a filesystem
object store and an embedded index, all under ``./archive-data``.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from archive.errors import ConfigError

DEFAULT_CODE_TEMPLATE = "{全宗号}-YW·{年度}-{保管期限}-{类别}-{件号:06d}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ARCHIVE_", env_file=None, extra="ignore")

    # --- where things live ---
    data_dir: Path = Field(Path("archive-data"), description="Data directory for the embedded defaults.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the catalogue; default sqlite:///<data_dir>/catalogue.db. "
        "Production: postgresql+psycopg://user@host:5432/archive")
    db_busy_timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="How long a catalogue statement waits for a lock another transaction holds "
        "(SQLite busy timeout, PostgreSQL lock_timeout) before the request answers 503 catalogue_busy.")
    schedule: Path | None = Field(
        None, description="A center's own classification schedule (TOML); default: the packaged schedule.")

    # --- the archive itself ---
    fonds_code: str = Field("J001", description="全宗号 of this center.")
    fonds_name: str = Field("住房公积金管理中心", description="全宗名称.")
    archival_code_template: str = Field(DEFAULT_CODE_TEMPLATE, description="档号 template.")
    timezone: str = Field("Asia/Shanghai", description="Local time zone: business dates, the 年度 of an item, and "
                                                       "every time shown to people (with its offset).")

    # --- API ---
    host: str = Field("127.0.0.1", description="Address `archive serve` listens on.")
    port: int = Field(8000, description="Port `archive serve` listens on.")
    session_hours: int = Field(8, ge=1, le=24 * 30, description="Lifetime of a person's login token; in the web "
                               "UI an idle timeout (each use renews it).")
    login_max_failures: int = Field(5, ge=1, le=100, description="Consecutive wrong passwords after which a "
                                    "user name is locked (429 account_locked) for login_lock_minutes.")
    login_lock_minutes: int = Field(15, ge=1, le=24 * 60, description="How long a locked user name stays locked; "
                                    "also the window of the per-address throttle. An administrator may unlock "
                                    "earlier.")
    login_max_failures_per_address: int = Field(20, ge=1, le=100_000, description="Failed logins from one client "
                                                "address within login_lock_minutes after which that address is "
                                                "refused (429 login_throttled) until the oldest ages out.")

    # --- observability (archive/logs.py, archive/metrics.py) ---
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines of `archive serve` and `archive worker`: json (one object a line, with "
        "request_id), text, or auto: json unless the log goes to a terminal (so json under systemd/containers).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged (DEBUG, INFO, WARNING, ERROR).")
    metrics_allow: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Networks (comma-separated CIDRs) allowed to read /metrics; others get 403 metrics_forbidden.")

    # --- capture (受理) ---
    max_upload_mb: int = Field(50, ge=1, le=2048, description="Largest accepted file, in MB.")
    max_pixels: int = Field(100_000_000, ge=1_000_000, description="Largest image (pixels per page); "
                            "larger is refused as a possible decompression bomb.")
    min_dpi: int = Field(200, ge=72, le=1200, description="Lowest scan resolution (DA/T 31: 200 dpi).")
    dpi_policy: Literal["refuse", "warn"] = Field("refuse", description="Below min_dpi: refuse the file or warn.")
    max_pages: int = Field(500, ge=1, le=100_000, description="Most pages (or image frames) in one uploaded "
                           "document; counted before decoding, for every format.")
    scan_page_cap: int = Field(1000, ge=1, le=20000, description="Most pages in one batch scan.")
    cjk_font: Path | None = Field(None, description="TrueType font (.ttf/.ttc) for Chinese text in generated "
                                  "PDFs; default: the first of Debian's fonts-wqy-zenhei / fonts-arphic-uming found.")
    scan_raster_dpi: int = Field(200, ge=100, le=600, description="Resolution batch pages are rendered at "
                                 "to read cover-sheet barcodes.")

    # --- object storage (storage/) ---
    storage: Literal["filesystem", "s3", "replicated"] = Field(
        "filesystem", description="Object store: filesystem (embedded), s3 (MinIO), or replicated.")
    storage_path: Path | None = Field(None, description="Filesystem store root; default <data_dir>/objects.")
    s3_endpoint: str = Field("127.0.0.1:9000", description="MinIO/S3 endpoint host:port.")
    s3_access_key: str = Field("", description="S3 access key.")
    s3_secret_key: str = Field("", description="S3 secret key.")
    s3_bucket: str = Field("archive", description="S3 bucket (created with object lock when missing).")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_secure: bool = Field(True, description="Use TLS for S3.")
    s3_ca_file: Path | None = Field(None, description="CA bundle for the S3 endpoint's TLS certificate.")
    s3_retention_mode: Literal["COMPLIANCE", "GOVERNANCE"] = Field(
        "COMPLIANCE", description="Object-lock mode for retained objects.")
    s3_max_retain_until: date | None = Field(
        date(2106, 1, 1), description="Latest object-lock date the S3 server keeps (Ceph RGW wraps dates after "
        "2106-02-07 to 32 bits); later locks are capped to it and extended by `archive storage extend-locks` "
        "before they run out. Empty: no cap (only for a server proven to keep later dates).")
    replica: Literal["filesystem", "s3"] = Field(
        "s3", description="With storage=replicated: the secondary store (the primary is filesystem).")
    replica_path: Path | None = Field(None, description="Secondary filesystem root when replica=filesystem.")

    # --- retrieval index (search/) ---
    index: Literal["embedded", "elasticsearch"] = Field(
        "embedded", description="Search index: embedded (in-process, under the data directory) or elasticsearch.")
    index_path: Path | None = Field(None, description="Embedded index directory; default <data_dir>/index.")
    es_url: str = Field("http://127.0.0.1:9200", description="Elasticsearch URL.")
    es_index_prefix: str = Field("archive", description="Prefix of Elasticsearch index, alias and template names.")
    es_username: str = Field("", description="Elasticsearch user (basic auth), if any.")
    es_password: str = Field("", description="Elasticsearch password.")
    es_ca_file: Path | None = Field(None, description="CA bundle for Elasticsearch's TLS certificate.")

    # --- business-system APIs (archive/api/routes/items.py) ---
    api_rate: float = Field(300.0, gt=0, description="Requests per second each API client may make (token bucket).")
    api_burst: float | None = Field(None, gt=0, description="Requests an API client may save up; default 2 x api_rate.")
    watermark_clients: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="API clients (comma-separated names, * for all) whose page images carry a watermark.",
    )

    # --- lending (archive/retention/lending.py) ---
    lending_max_days: int = Field(30, ge=1, le=3650, description="Longest period of a 利用 grant or a paper "
                                  "loan, in days; longer requests are refused.")

    # --- the console's dashboard (archive/dashboard.py) ---
    filing_due_days: int = Field(3, ge=0, le=365, description="归档及时率: an item counts as filed on time when it "
                                 "was filed within this many days of its case's 办结.")
    dashboard_cache_seconds: int = Field(300, ge=5, le=86_400, description="How long the dashboard's figures are "
                                         "reused before they are computed again (per process); the page shows "
                                         "their age and a refresh link.")

    # --- transfer (archive/retention/transfer.py) ---
    transfer_receiver: str = Field("档案馆", description="Default 接收单位 written into transfer registers.")
    transfer_max_package_mb: int = Field(4096, ge=1, le=1024 * 1024, description="Largest transfer package "
                                         "accepted on import (zip size and total unpacked size), in MB.")
    transfer_max_entries: int = Field(200_000, ge=10, description="Most files a received transfer zip may hold.")

    # --- four-properties checks (archive/checks/) ---
    clamd_socket: str | None = Field(None, description="clamd to scan for viruses (GD-4-2): a Unix socket path, "
                                     "or tcp://host:port. Takes precedence over clamscan.")
    clamscan: Path | None = Field(None, description="clamscan binary to scan for viruses when no clamd is set.")
    clamav_database: Path | None = Field(None, description="Signature database (file or directory) for clamscan; "
                                         "default: clamscan's own.")
    clamav_timeout: float = Field(60.0, gt=0, le=3600, description="Seconds a virus scan of one item may take.")

    # --- storage sweeps (archive/checks/sweep.py) ---
    sweep_rate_mb: float = Field(0.0, ge=0, description="Read rate limit of `archive check sweep` in MB/s "
                                 "(0: unlimited), so a sweep leaves the disks to the counters.")
    sweep_workers: int = Field(0, ge=0, le=64, description="Threads hashing during a sweep; 0: one per CPU core.")
    sweep_checkpoint_every: int = Field(500, ge=1, le=100_000, description="Objects between two checkpoints "
                                        "of a sweep (where an interrupted sweep resumes).")
    sweep_signature_every: int = Field(10, ge=1, le=10_000, description="Signatures and time stamps are "
                                       "re-validated on 1/N of the renditions per sweep (all in N sweeps).")

    # --- backup (archive/backup.py) ---
    backup_dir: Path | None = Field(None, description="Where `archive backup create` writes backups; default "
                                    "<data_dir>/backups. Best on another disk or machine.")
    backup_passphrase_file: Path | None = Field(None, description="File holding the passphrase that encrypts the "
                                                "certificates and private keys in a backup (AES-256-GCM, scrypt); "
                                                "without it a backup holds the certificates only, no private key.")

    # --- signing (signing/) ---
    pki_dir: Path | None = Field(None, description="Certificates and keys; default <data_dir>/pki.")
    tsa_url: str | None = Field(None, description="RFC 3161 time-stamp authority URL; none means PAdES B-B.")
    tsa_required: bool = Field(True, description="Refuse to sign when the TSA is unreachable (else B-B).")
    environment: Literal["development", "production"] = Field(
        "development", description="production: no development PKI is ever created or used (archive init does not "
        "make one; a signer must be configured with ARCHIVE_SIGNER_CERT or ARCHIVE_SIGNER=pkcs11, else /readyz is "
        "not ready), and an unencrypted signing key file is reported.")
    signer: Literal["file", "pkcs11"] = Field(
        "file", description="Where the center's signing key lives: file (PEM/PKCS#12) or pkcs11 (an HSM or token).")
    signer_cert: Path | None = Field(
        None, description="file signer: the center's certificate (PEM, may be followed by its chain) or a PKCS#12 "
        "file holding certificate and key. Unset: <pki_dir>/signer.p12 or signer.pem (development PKI).")
    signer_key: Path | None = Field(
        None, description="file signer: the private key (PEM; encrypted PKCS#8 supported). Unset with a PEM "
        "certificate: the certificate is read as PKCS#12.")
    signer_chain: Path | None = Field(
        None, description="PEM bundle of the intermediate (and root) certificates to embed in signatures. The root "
        "itself must also be trusted: put it under <pki_dir>/trust/.")
    signer_key_passphrase_file: Path | None = Field(
        None, description="File holding the passphrase of the signing key (first line); preferred over "
        "ARCHIVE_SIGNER_KEY_PASSPHRASE. Also encrypts the development PKI's signing key.")
    signer_key_passphrase: SecretStr | None = Field(
        None, description="Passphrase of the signing key (environment); ARCHIVE_SIGNER_KEY_PASSPHRASE_FILE wins.")
    signer_require_encrypted_key: bool = Field(
        False, description="Refuse (/readyz not ready, archive init fails) an unencrypted signing key file; "
        "default: a warning in production.")
    pkcs11_module: Path | None = Field(
        None, description="pkcs11 signer: the PKCS#11 module (.so), e.g. /usr/lib/softhsm/libsofthsm2.so.")
    pkcs11_token_label: str | None = Field(None, description="pkcs11 signer: the token's label.")
    pkcs11_slot: int | None = Field(None, ge=0, description="pkcs11 signer: slot id (or index) when no token label "
                                    "is given.")
    pkcs11_key_label: str | None = Field(None, description="pkcs11 signer: label (CKA_LABEL) of the private key.")
    pkcs11_cert_label: str | None = Field(None, description="pkcs11 signer: label of the certificate; default: "
                                          "the key's label.")
    pkcs11_pin_file: Path | None = Field(None, description="pkcs11 signer: file holding the user PIN (first line).")

    # --- long-term validation (signing/ltv.py, archive/ltv.py) ---
    ltv_level: Literal["B-T", "B-LT", "B-LTA"] = Field(
        "B-LTA", description="Highest PAdES level at filing (with a TSA): B-LTA for items whose retention is in "
        "ARCHIVE_LTV_LTA_RETENTION, B-LT for the others; B-LT: never B-LTA; B-T: no validation data.")
    ltv_lta_retention: Annotated[list[str], NoDecode] = Field(
        ["D30", "Y"], description="保管期限 codes (comma-separated) whose items get an archive time stamp (B-LTA).")
    ltv_renew_days: int = Field(365, ge=1, le=3650, description="`archive ltv renew` renews items whose newest "
                                "time stamp's certificate expires within this many days.")
    ltv_weak_algorithms: Annotated[list[str], NoDecode] = Field(
        ["md5", "sha1"], description="Digest algorithms (comma-separated) no longer trusted: items whose newest "
        "time stamp uses one are renewed.")
    dev_pki_url: str = Field("http://127.0.0.1:3161/", description="Development PKI only: where `archive tsa` "
                             "serves the TSA, CRL and OCSP its certificates name (set before `archive init`).")
    # --- data quality (archive/dq/) ---
    dq_open_case_days: int = Field(90, ge=1, le=3650, description="DQ-CA-017: a case open this many days after "
                                   "受理 without 办结 is a finding.")
    dq_trigger_pending_years: int = Field(30, ge=1, le=100, description="DQ-IT-009: an item whose retention "
                                          "trigger (贷款结清, 销户 …) is still pending this many years after filing "
                                          "is a finding (longer than any plausible loan term).")
    dq_finding_due_days: int = Field(15, ge=1, le=365, description="Days a department has to correct an assigned "
                                     "finding (问题数据) when the assignment gives no due date.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("watermark_clients", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        return [n.strip() for n in v.split(",") if n.strip()] if isinstance(v, str) else v

    @field_validator("s3_max_retain_until", mode="before")
    @classmethod
    def _no_cap_when_empty(cls, v: object) -> object:
        return None if isinstance(v, str) and v.strip().lower() in ("", "none") else v

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, v: object) -> object:
        if not isinstance(v, str):
            return v
        return v.strip().upper() if v.strip().lower() in ("debug", "info", "warning", "error") else v.strip().lower()

    @field_validator("metrics_allow", mode="before")
    @classmethod
    def _networks(cls, v: object) -> object:
        values = [n.strip() for n in v.split(",") if n.strip()] if isinstance(v, str) else v
        if isinstance(values, list):
            for n in values:
                try:
                    ipaddress.ip_network(str(n), strict=False)
                except ValueError:
                    raise ValueError(f"not a network (CIDR): {n!r}") from None
        return values

    @field_validator("fonds_code")
    @classmethod
    def _fonds_code_shape(cls, v: str) -> str:
        if not v or not v.isascii() or not v.isalnum() or len(v) > 8:
            raise ValueError("全宗号 must be 1-8 ASCII letters or digits")
        return v

    @field_validator("ltv_lta_retention", "ltv_weak_algorithms", mode="before")
    @classmethod
    def _ltv_lists(cls, v: object) -> object:
        return [n.strip() for n in v.split(",") if n.strip()] if isinstance(v, str) else v

    @property
    def catalogue_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'catalogue.db'}"

    @property
    def objects_path(self) -> Path:
        return self.storage_path or self.data_dir / "objects"

    @property
    def index_dir(self) -> Path:
        return self.index_path or self.data_dir / "index"

    @property
    def backup_path(self) -> Path:
        return self.backup_dir or self.data_dir / "backups"

    @property
    def pki_path(self) -> Path:
        return self.pki_dir or self.data_dir / "pki"

    def log_format_in_use(self, terminal: bool) -> str:
        """The log format: ``auto`` is text on a terminal, json otherwise."""
        return ("text" if terminal else "json") if self.log_format == "auto" else self.log_format


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; a bad value is a ConfigError naming the ARCHIVE_ variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]  # pydantic validates each value
    except ValidationError as exc:
        problems = [f"ARCHIVE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("配置有误：" + "；".join(problems), code="invalid_setting", detail=problems) from exc


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
