"""`archive storage verify`: compare both copies of every object and report what is missing or differs."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from archive.settings import get_settings
from archive.wiring import build_store
from storage.base import ObjectStore
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
from storage.s3 import S3Store
from storage.verify import verify
from tests.storage.support import FAR, FARTHER, blob, new_s3_store, put, read_all, require_gateway
from tests.storage.test_replicated_store import corrupt


@pytest.fixture
def pair(tmp_path: Path) -> ReplicatedStore:
    return ReplicatedStore(FilesystemStore(tmp_path / "objects"), FilesystemStore(tmp_path / "replica"))


def _data(store: ObjectStore, key: str) -> Path:
    assert isinstance(store, FilesystemStore)
    return store.path_of(key)


def test_intact_copies_give_no_findings(pair: ReplicatedStore) -> None:
    """Given three objects stored twice, When verified deeply, Then no findings and every key was visited."""
    seen: list[str] = []
    for seed in range(3):
        put(pair, blob(seed=seed), retain_until=FAR)
    assert verify(pair, on_progress=seen.append) == []
    assert len(seen) == 3


def test_missing_and_damaged_copies_are_reported(pair: ReplicatedStore) -> None:
    """Given one object missing from the secondary, one missing from the primary and one corrupted
    in the secondary, When verified, Then each is reported with its problem."""
    a, b, c, ok = (blob(seed=s) for s in range(4))
    for x in (a, b, c, ok):
        put(pair, x)
    _data(pair.secondary, a.key).unlink()
    _data(pair.primary, b.key).unlink()
    corrupt(_data(pair.secondary, c.key))
    found = {(f.key, f.problem) for f in verify(pair)}
    assert found == {(a.key, "missing_in_secondary"), (b.key, "missing_in_primary"),
                     (c.key, "corrupt_in_secondary")}


def test_a_quick_check_compares_metadata_only(pair: ReplicatedStore) -> None:
    """Given a same-size corruption and a missing copy, When verified quickly, Then only the missing
    copy is found (the corruption needs a deep check)."""
    a, b = blob(seed=1), blob(seed=2)
    put(pair, a)
    put(pair, b)
    corrupt(_data(pair.secondary, a.key))
    _data(pair.secondary, b.key).unlink()
    assert [(f.key, f.problem) for f in verify(pair, deep=False)] == [(b.key, "missing_in_secondary")]


def test_differing_retention_and_hold_are_reported_and_repaired_upwards(pair: ReplicatedStore) -> None:
    """Given copies whose retention and hold differ, When verified with repair, Then both are reported,
    both copies end with the longer retention and the hold, and a second run is clean."""
    b = blob()
    put(pair, b, retain_until=FAR)
    pair.primary.set_retention(b.key, FARTHER)
    pair.secondary.set_legal_hold(b.key, True)
    findings = verify(pair, repair=True)
    assert {f.problem for f in findings} == {"retention_differs", "legal_hold_differs"}
    assert all(f.repaired for f in findings)
    for copy in (pair.primary, pair.secondary):
        assert (copy.stat(b.key).retain_until, copy.stat(b.key).legal_hold) == (FARTHER, True)
    assert verify(pair) == []


def test_repair_restores_a_missing_copy_with_its_retention(pair: ReplicatedStore) -> None:
    """Given a retained object missing from the secondary, When verified with repair,
    Then the copy is restored with the same retention and a second run is clean."""
    b = blob()
    put(pair, b, retain_until=FAR)
    _data(pair.secondary, b.key).unlink()
    [finding] = verify(pair, repair=True)
    assert (finding.problem, finding.repaired) == ("missing_in_secondary", True)
    assert read_all(pair.secondary, b.key) == b.data and pair.secondary.stat(b.key).retain_until == FAR
    assert verify(pair) == []


def test_a_single_store_is_checked_against_its_recorded_digests(tmp_path: Path) -> None:
    """Given a plain filesystem store with one corrupted object, When verified, Then it is reported corrupt."""
    store = FilesystemStore(tmp_path / "objects")
    a, b = blob(seed=1), blob(seed=2)
    put(store, a)
    put(store, b)
    corrupt(_data(store, b.key))
    assert [(f.key, f.problem) for f in verify(store)] == [(b.key, "corrupt")]


# --- versions on a real object-lock bucket (the gateway) ---

def _overwrite(store: S3Store, key: str, data: bytes) -> None:
    """What another client can do on an object-lock bucket: PUT a new version over a locked key."""
    store._client.put_object(store.bucket, key, io.BytesIO(data), len(data))


def test_extra_versions_and_delete_markers_are_findings() -> None:
    """Given one intact object, one with a version written over it and one hidden by a delete marker,
    When the S3 store is verified (deep and quick), Then exactly the two tampered keys are reported, in Chinese."""
    store = new_s3_store()
    ok, over, hidden = blob(seed=1), blob(seed=2), blob(seed=3)
    for b in (ok, over, hidden):
        put(store, b, retain_until=FAR)
    _overwrite(store, over.key, b"other bytes")
    store._client.remove_object(store.bucket, hidden.key)
    for deep in (True, False):
        findings = verify(store, deep=deep)
        assert sorted((f.key, f.problem) for f in findings) == sorted(
            [(over.key, "extra_versions"), (hidden.key, "delete_marker")])
        assert all("版本" in f.detail or "删除标记" in f.detail for f in findings)


def test_a_replica_on_the_gateway_with_a_capped_lock_agrees_and_reports_markers(tmp_path: Path) -> None:
    """Given filesystem + gateway copies of a 永久 object locked until 2127 (the gateway keeps 2106),
    When verified, Then the capped lock is no difference; a delete marker on the S3 copy is reported by side."""
    s3 = new_s3_store()
    pair = ReplicatedStore(FilesystemStore(tmp_path / "objects"), s3)
    b = blob()
    put(pair, b, retain_until=datetime(2127, 1, 1, tzinfo=UTC))
    assert s3.stat(b.key).retain_until == s3.retain_limit()
    assert verify(pair) == []
    s3._client.remove_object(s3.bucket, b.key)
    [finding] = verify(pair)
    assert finding.problem == "delete_marker_in_secondary" and finding.detail.startswith("备副本")


def test_the_command_reports_a_version_written_over_an_archived_key(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_STORAGE=s3 on the gateway and a key someone wrote over, When `archive storage verify`
    runs, Then it exits 1 naming the key, the code extra_versions and the problem in Chinese."""
    from archive.commands.storage import app

    gw, store = require_gateway(), new_s3_store()
    b = blob()
    put(store, b, retain_until=FAR)
    _overwrite(store, b.key, b"other bytes")
    for name, value in {"DATA_DIR": str(tmp_path), "STORAGE": "s3", "S3_ENDPOINT": gw.endpoint, "S3_SECURE": "false",
                        "S3_ACCESS_KEY": gw.access_key, "S3_SECRET_KEY": gw.secret_key,
                        "S3_BUCKET": store.bucket}.items():
        monkeypatch.setenv(f"ARCHIVE_{name}", value)
    get_settings.cache_clear()
    result = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["verify"])
    assert result.exit_code == 1, result.output
    assert "extra_versions" in result.output and b.sha256[:8] in result.output and "后写入的版本" in result.output


# --- the command ---

@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ReplicatedStore:
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARCHIVE_STORAGE", "replicated")
    monkeypatch.setenv("ARCHIVE_REPLICA", "filesystem")
    monkeypatch.setenv("ARCHIVE_REPLICA_PATH", str(tmp_path / "replica"))
    get_settings.cache_clear()
    store = build_store(get_settings())
    assert isinstance(store, ReplicatedStore)
    return store


def test_the_command_exits_0_when_all_copies_agree(configured: ReplicatedStore) -> None:
    """Given a configured replicated store with intact copies, When `archive storage verify` runs,
    Then it exits 0 and says all objects are intact."""
    from archive.commands.storage import app

    put(configured, blob())
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "1 个对象，全部一致" in result.output


def test_the_command_prints_findings_and_exits_1(configured: ReplicatedStore) -> None:
    """Given a copy missing from the replica, When `archive storage verify` runs,
    Then it prints the key and problem and exits 1."""
    from archive.commands.storage import app

    b = blob()
    put(configured, b)
    _data(configured.secondary, b.key).unlink()
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "missing_in_secondary" in result.output and b.sha256[:8] in result.output


def test_the_command_exits_2_on_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given replicated storage without a replica path, When the command runs, Then exit 2 naming the setting."""
    from archive.commands.storage import app

    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ARCHIVE_STORAGE", "replicated")
    monkeypatch.setenv("ARCHIVE_REPLICA", "filesystem")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 2
    assert "ARCHIVE_REPLICA_PATH" in result.output
