"""What a running system is built from: settings, catalogue, schedule, 档号 rule, and (built on first use, once)
the object store, signer, search index, time-stamp client and virus scanner.

Built once by the CLI or the API app factory; everything that can be wrong in configuration is
found here, at start-up, as a ConfigError naming the setting or file. The backends are built lazily
so that a command that does not need them stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from zoneinfo import ZoneInfo

from archive.archival_code import CodeRule
from archive.catalogue.db import Catalogue
from archive.classification import Schedule, load_schedule
from archive.settings import Settings

if TYPE_CHECKING:
    from pyhanko.sign.timestamps import TimeStamper

    from archive.checks.security import Scanner
    from search.base import SearchIndex
    from signing.certificates import KeySigner
    from storage.base import ObjectStore

_UNSET = object()  # the timestamper and scanner may be None when not configured


@dataclass
class Context:
    settings: Settings
    catalogue: Catalogue
    schedule: Schedule
    code_rule: CodeRule
    _store: ObjectStore | None = field(default=None, repr=False)
    _signer: KeySigner | None = field(default=None, repr=False)
    _index: SearchIndex | None = field(default=None, repr=False)
    _timestamper: object = field(default=_UNSET, repr=False)
    _scanner: object = field(default=_UNSET, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Context:
        schedule = load_schedule(settings.schedule)
        rule = CodeRule(settings.archival_code_template)
        return cls(settings, Catalogue(settings.catalogue_url), schedule, rule)

    @property
    def store(self) -> ObjectStore:
        """The object store (storage/), built on first use."""
        if self._store is None:
            from archive.wiring import build_store

            self._store = build_store(self.settings)
        return self._store

    @property
    def signer(self) -> KeySigner:
        """The center's signing key and certificate (signing/), loaded once."""
        if self._signer is None:
            from signing.certificates import load_pki_signer

            self._signer = load_pki_signer(self.settings.pki_path)
        return self._signer

    @property
    def index(self) -> SearchIndex:
        """The search index (search/), built on first use."""
        if self._index is None:
            from archive.wiring import build_index

            self._index = build_index(self.settings)
        return self._index

    @property
    def timestamper(self) -> TimeStamper | None:
        """The RFC 3161 client of ARCHIVE_TSA_URL, or None (signatures are then PAdES B-B); built once."""
        if self._timestamper is _UNSET:
            from archive.wiring import timestamper_from_settings

            self._timestamper = timestamper_from_settings(self.settings)
        return cast("TimeStamper | None", self._timestamper)

    @property
    def scanner(self) -> Scanner | None:
        """The configured ClamAV, or None when no virus scanner is set; built once."""
        if self._scanner is _UNSET:
            from archive.wiring import scanner_from_settings

            self._scanner = scanner_from_settings(self.settings)
        return cast("Scanner | None", self._scanner)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        self.catalogue.dispose()
