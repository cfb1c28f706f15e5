"""What a running system is built from: settings, catalogue, schedule, 档号 rule, and (built on first use, once)
the object store, signer, search index, time-stamp client, virus scanner, API rate limiter and access-register
writer.

Built once by the CLI or the API app factory; everything that can be wrong in configuration is
found here, at start-up, as a ConfigError naming the setting or file. The backends are built lazily
so that a command that does not need them stays fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from archive import metrics
from archive.access import AccessWriter, RateLimiter, SharedRateLimiter, limiter_from_settings
from archive.archival_code import CodeRule
from archive.catalogue.db import Catalogue
from archive.catalogue.types import utcnow
from archive.classification import Schedule, load_schedule
from archive.errors import ERRORS, ServiceUnavailable
from archive.settings import Settings
from archive.wiring import (
    build_index,
    build_signer,
    build_store,
    scanner_from_settings,
    signer_setting,
    timestamper_from_settings,
)

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper

    from archive.checks.security import Scanner
    from search.base import SearchIndex
    from signing.certificates import KeySigner
    from signing.keys import HsmSigner, SignerInfo
    from storage.base import ObjectStore

_UNSET = object()  # the timestamper and scanner may be None when not configured

# A wrong PIN is tried once per process: retrying on every /readyz poll would lock the token (after 3 tries on most).
STICKY_SIGNER_ERRORS = {"pkcs11_pin_incorrect", "pkcs11_pin_locked"}


@dataclass
class Context:
    settings: Settings
    catalogue: Catalogue
    schedule: Schedule
    code_rule: CodeRule
    _store: ObjectStore | None = field(default=None, repr=False)
    _signer: KeySigner | HsmSigner | None = field(default=None, repr=False)
    _signer_info: SignerInfo | None = field(default=None, repr=False)
    _signer_error: ServiceUnavailable | None = field(default=None, repr=False)
    _index: SearchIndex | None = field(default=None, repr=False)
    _timestamper: object = field(default=_UNSET, repr=False)
    _scanner: object = field(default=_UNSET, repr=False)
    _rate_limiter: RateLimiter | SharedRateLimiter | None = field(default=None, repr=False)
    _access_writer: AccessWriter | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # `archive serve` checks the signer in the background once it listens (archive.signer_status.BackgroundCheck):
    # set until that check has finished, so /readyz says "checking" instead of waiting for it
    signer_check: threading.Event | None = field(default=None, repr=False)
    # 件号 known gap-free in this catalogue, per class (全宗, 年度, 保管期限, 类别) → N: raised after each commit of
    # items that GD-2-6 passed, so the next check counts only above N (gd.FilingSubject.continuous)
    continuous: dict[tuple[str, int, str, str], int] = field(default_factory=dict, repr=False)
    # what "now" and "today" are for the pages' day views (工作台, dashboard, lending due dates): one clock, so a
    # test can hold it still across midnight in the center's zone
    clock: Callable[[], datetime] = field(default=utcnow, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Context:
        schedule = load_schedule(settings.schedule)
        rule = CodeRule(settings.archival_code_template)
        catalogue = Catalogue(settings.catalogue_url, busy_timeout=settings.db_busy_timeout_seconds)
        return cls(settings, catalogue, schedule, rule)

    @property
    def store(self) -> ObjectStore:
        """The object store (storage/), built on first use."""
        if self._store is None:
            self._store = metrics.instrument_store(build_store(self.settings))
        return self._store

    @property
    def signer(self) -> KeySigner | HsmSigner:
        """The center's signing key and certificate (signing/), loaded and checked once it can be
        (archive.wiring.build_signer: a key file, the development PKI, or a PKCS#11 token).

        Without a usable signer nothing can be filed until an administrator configures one: a 503
        (ServiceUnavailable) naming the setting, the same answer `/readyz` gives.
        """
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    self._load_signer()
        assert self._signer is not None
        return self._signer

    @property
    def signer_info(self) -> SignerInfo:
        """Where the signer's key lives, and the warnings found when it was loaded."""
        self.signer  # noqa: B018  # loads it
        if self._signer_info is None:  # a signer handed in (tests, tools) rather than built from the settings
            from signing.keys import SignerInfo

            self._signer_info = SignerInfo("file")
        return self._signer_info

    def _load_signer(self) -> None:
        if self._signer_error is not None:
            raise self._signer_error
        try:
            self._signer, self._signer_info = build_signer(self.settings)
        except ERRORS as exc:
            message = (exc.message if exc.code == "signer_missing"
                       else f"签章证书不可用：{exc.message}（{signer_setting(self.settings)}）")
            answer = ServiceUnavailable(message, code=exc.code, detail=exc.detail)
            if exc.code in STICKY_SIGNER_ERRORS:
                self._signer_error = answer
            raise answer from exc

    @property
    def index(self) -> SearchIndex:
        """The search index (search/), built on first use (once: the embedded indexer starts in a thread while
        requests may already ask for it)."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = build_index(self.settings)
        return self._index

    @property
    def timestamper(self) -> TimeStamper | None:
        """The RFC 3161 client of ARCHIVE_TSA_URL, or None (signatures are then PAdES B-B); built once."""
        if self._timestamper is _UNSET:
            self._timestamper = metrics.instrument_timestamper(timestamper_from_settings(self.settings))
        return cast("TimeStamper | None", self._timestamper)

    @property
    def scanner(self) -> Scanner | None:
        """The configured ClamAV, or None when no virus scanner is set; built once."""
        if self._scanner is _UNSET:
            self._scanner = scanner_from_settings(self.settings)
        return cast("Scanner | None", self._scanner)

    @property
    def rate_limiter(self) -> RateLimiter | SharedRateLimiter:
        """Requests per second of each API client (ARCHIVE_API_RATE, ARCHIVE_API_BURST); built on first use."""
        if self._rate_limiter is None:
            self._rate_limiter = limiter_from_settings(self.settings, self.catalogue.engine)
        return self._rate_limiter

    @property
    def access_writer(self) -> AccessWriter:
        """Group-commits access events (利用登记) of concurrent requests; one per running system."""
        if self._access_writer is None:
            with self._lock:
                if self._access_writer is None:
                    self._access_writer = AccessWriter(self.catalogue)
        return self._access_writer

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        """Today's date in the center's zone (ARCHIVE_TIMEZONE)."""
        return self.clock().astimezone(self.zone).date()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        close_signer = getattr(self._signer, "close", None)
        if close_signer is not None:
            close_signer()
        self.catalogue.dispose()
