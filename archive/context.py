"""What a running system is built from: settings, catalogue, schedule, 档号 rule, object store.

Built once by the CLI or the API app factory; everything that can be wrong in configuration is
found here, at start-up, as a ConfigError naming the setting or file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from archive.archival_code import CodeRule
from archive.catalogue.db import Catalogue
from archive.classification import Schedule, load_schedule
from archive.settings import Settings


@dataclass
class Context:
    settings: Settings
    catalogue: Catalogue
    schedule: Schedule
    code_rule: CodeRule
    _store: Any = field(default=None, repr=False)
    _signer: Any = field(default=None, repr=False)
    _index: Any = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> Context:
        schedule = load_schedule(settings.schedule)
        rule = CodeRule(settings.archival_code_template)
        catalogue = Catalogue(settings.catalogue_url, busy_timeout=settings.db_busy_timeout_seconds)
        return cls(settings, catalogue, schedule, rule)

    @property
    def store(self) -> Any:
        """The object store (storage/), built on first use."""
        if self._store is None:
            from storage.factory import build_store

            self._store = build_store(self.settings)
        return self._store

    @property
    def signer(self) -> Any:
        """The center's signing key and certificate (signing/), loaded once."""
        if self._signer is None:
            from signing.certificates import load_pki_signer

            self._signer = load_pki_signer(self.settings.pki_path)
        return self._signer

    @property
    def index(self) -> Any:
        """The search index (search/), built on first use."""
        if self._index is None:
            from search.factory import build_index

            self._index = build_index(self.settings)
        return self._index

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        self.catalogue.dispose()
