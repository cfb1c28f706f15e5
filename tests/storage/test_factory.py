"""ARCHIVE_STORAGE=filesystem|s3|replicated builds the matching store; health feeds /readyz."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from archive.errors import ConfigError
from archive.settings import load_settings
from archive.wiring import build_store
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
from storage.s3 import S3Store
from tests.storage.support import blob, new_bucket, put, read_all, require_gateway


def test_the_default_is_a_filesystem_store_under_the_data_directory(tmp_path: Path) -> None:
    """Given no storage settings, When the store is built, Then it is a filesystem store at <data_dir>/objects."""
    store = build_store(load_settings(data_dir=tmp_path))
    assert isinstance(store, FilesystemStore) and store.root == (tmp_path / "objects").absolute()
    assert store.health()["ok"] is True


def test_s3_settings_build_a_working_s3_store() -> None:
    """Given ARCHIVE_STORAGE=s3 pointing at the gateway, When built and used, Then objects round-trip, with
    the lock-date cap from ARCHIVE_S3_MAX_RETAIN_UNTIL."""
    gw, bucket = require_gateway(), new_bucket()
    settings = load_settings(storage="s3", s3_endpoint=f"http://{gw.endpoint}", s3_bucket=bucket,
                             s3_access_key=gw.access_key, s3_secret_key=gw.secret_key,
                             s3_retention_mode="GOVERNANCE", s3_max_retain_until=date(2100, 1, 1))
    store = build_store(settings)
    assert isinstance(store, S3Store)
    assert (store.endpoint, store.secure, store.retention_mode) == (gw.endpoint, False, "GOVERNANCE")
    assert store.retain_limit() == datetime(2100, 1, 1, tzinfo=UTC)
    assert load_settings().s3_max_retain_until == date(2106, 1, 1)
    b = blob()
    assert put(store, b, retain_until=datetime(2120, 1, 1, tzinfo=UTC)).retain_until == store.retain_limit()
    assert read_all(store, b.key) == b.data
    health = store.health()
    assert health["ok"] is True and bucket in health["detail"]


def test_an_https_endpoint_turns_tls_on() -> None:
    """Given an https:// endpoint with ARCHIVE_S3_SECURE=false, When built, Then TLS is on (the scheme wins)."""
    store = build_store(load_settings(storage="s3", s3_endpoint="https://minio.example:9000", s3_secure=False))
    assert isinstance(store, S3Store) and store.secure and store.endpoint == "minio.example:9000"


def test_replicated_storage_pairs_the_filesystem_with_s3(tmp_path: Path) -> None:
    """Given ARCHIVE_STORAGE=replicated (replica s3 by default), When built, Then filesystem primary, S3 secondary."""
    gw = require_gateway()
    store = build_store(load_settings(data_dir=tmp_path, storage="replicated", s3_endpoint=gw.endpoint,
                                      s3_access_key=gw.access_key, s3_secret_key=gw.secret_key,
                                      s3_secure=False, s3_bucket=new_bucket()))
    assert isinstance(store, ReplicatedStore)
    assert isinstance(store.primary, FilesystemStore) and isinstance(store.secondary, S3Store)
    assert store.health()["ok"] is True


def test_a_filesystem_replica_needs_its_own_path(tmp_path: Path) -> None:
    """Given replica=filesystem without a path, or with the primary's path, When built, Then ConfigError
    naming ARCHIVE_REPLICA_PATH; with a path, Then two filesystem stores."""
    with pytest.raises(ConfigError) as exc:
        build_store(load_settings(data_dir=tmp_path, storage="replicated", replica="filesystem"))
    assert "ARCHIVE_REPLICA_PATH" in exc.value.message
    with pytest.raises(ConfigError):
        build_store(load_settings(data_dir=tmp_path, storage="replicated", replica="filesystem",
                                  replica_path=tmp_path / "objects"))
    store = build_store(load_settings(data_dir=tmp_path, storage="replicated", replica="filesystem",
                                      replica_path=tmp_path / "replica"))
    assert isinstance(store, ReplicatedStore) and isinstance(store.secondary, FilesystemStore)


def test_the_lock_date_cap_can_be_set_or_switched_off() -> None:
    """Given ARCHIVE_S3_MAX_RETAIN_UNTIL empty or a date, When the S3 store is built, Then no cap, or that day
    at 00:00 UTC."""
    off = build_store(load_settings(storage="s3", s3_max_retain_until=""))
    assert isinstance(off, S3Store) and off.retain_limit() is None
    on = build_store(load_settings(storage="s3", s3_max_retain_until="2099-06-30"))
    assert isinstance(on, S3Store) and on.retain_limit() == datetime(2099, 6, 30, tzinfo=UTC)
