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
from archive.errors import ArchiveError, ServiceUnavailable
from archive.settings import Settings

SIGNER_MISSING = "签章证书未配置：运行 archive init 生成开发证书，或将中心的证书放入 ARCHIVE_PKI_DIR（当前：{}）"


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
        """The center's signing key and certificate (signing/), loaded once it can be.

        Without a usable certificate nothing can be filed until an administrator configures one: a 503
        (ServiceUnavailable) naming the setting, the same answer `/readyz` gives.
        """
        if self._signer is None:
            from signing.certificates import load_pki_signer

            path = self.settings.pki_path
            try:
                self._signer = load_pki_signer(path)
            except ArchiveError as exc:
                if exc.code == "signer_missing":
                    raise ServiceUnavailable(SIGNER_MISSING.format(path), code="signer_missing",
                                             detail={"setting": "ARCHIVE_PKI_DIR", "pki_dir": str(path)}) from exc
                raise ServiceUnavailable(f"签章证书不可用：{exc.message}；请更换 ARCHIVE_PKI_DIR 中的证书",
                                         code=exc.code, detail=exc.detail) from exc
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
