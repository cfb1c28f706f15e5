"""The ObjectStore contract: filesystem, S3 (a real gateway) and replicated stores behave the same.

Where a server could be more permissive (moto: shortening COMPLIANCE retention, deleting with a delete
marker), these tests check that the store itself refuses.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from storage.base import (
    IntegrityFailure,
    InvalidKey,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    content_key,
)
from storage.errors import StorageInvalid
from tests.storage.support import FAR, FARTHER, blob, put, read_all


def _nothing_visible(store: ObjectStore, key: str) -> None:
    assert not store.exists(key)
    assert list(store.list_keys("originals/")) == []
    with pytest.raises(ObjectNotFound):
        store.stat(key)


def test_put_then_get_returns_the_same_bytes_and_digests(store: ObjectStore) -> None:
    """Given a PDF-sized object, When it is put and read back, Then bytes, size and digests match."""
    b = blob(300_000)
    info = put(store, b, sm3=b.digests.sm3, media_type="application/pdf")
    assert info == ObjectInfo(b.key, len(b.data), b.sha256, b.digests.sm3, None, False, "application/pdf")
    assert read_all(store, b.key) == b.data
    assert store.stat(b.key) == info


def test_empty_object_round_trips(store: ObjectStore) -> None:
    """Given zero bytes, When put and read, Then the object exists and is empty."""
    b = blob(0)
    assert put(store, b).size == 0
    assert read_all(store, b.key) == b""


def test_ranged_get_returns_the_requested_bytes(store: ObjectStore) -> None:
    """Given a stored object, When a range is read, Then exactly those bytes come back (truncated at the end)."""
    b = blob(10_000)
    put(store, b)
    assert read_all(store, b.key, offset=100, length=50) == b.data[100:150]
    assert read_all(store, b.key, offset=9_990, length=100) == b.data[9_990:]
    assert read_all(store, b.key, offset=5_000) == b.data[5_000:]


def test_ranged_get_beyond_the_end_is_refused(store: ObjectStore) -> None:
    """Given a 10 kB object, When reading from offset 20 000, Then a 416 typed error names the key."""
    b = blob(10_000)
    put(store, b)
    with pytest.raises(StorageInvalid) as exc:
        read_all(store, b.key, offset=20_000, length=10)
    assert exc.value.code == "range_not_satisfiable" and exc.value.kind == "out_of_range"
    with pytest.raises(StorageInvalid):
        read_all(store, b.key, offset=-1)


def test_stat_reports_retention_and_legal_hold(store: ObjectStore) -> None:
    """Given an object put with retention and a hold, When stat is read, Then both are reported in UTC."""
    b = blob()
    put(store, b, retain_until=FAR, legal_hold=True)
    info = store.stat(b.key)
    assert info.retain_until == FAR and info.retain_until.tzinfo is not None
    assert info.legal_hold is True


def test_exists_tells_stored_from_missing(store: ObjectStore) -> None:
    """Given one stored object, When asked, Then exists is true for it and false for another key."""
    b = blob()
    put(store, b)
    assert store.exists(b.key)
    assert not store.exists(blob(seed=2).key)


def test_list_by_prefix_returns_matching_keys_in_order(store: ObjectStore) -> None:
    """Given originals and renditions, When listing by prefix, Then only matching keys come, sorted."""
    originals = [blob(100, seed=s) for s in range(3)]
    rendition = blob(100, seed=9, prefix="renditions")
    for b in [*originals, rendition]:
        put(store, b)
    assert list(store.list_keys("originals/")) == sorted(b.key for b in originals)
    assert list(store.list_keys("renditions/")) == [rendition.key]
    assert len(list(store.list_keys())) == 4
    first = originals[0].key
    assert list(store.list_keys(first[: len("originals/") + 1])) == sorted(
        b.key for b in originals if b.key.startswith(first[: len("originals/") + 1]))


def test_putting_the_same_bytes_twice_is_one_object(store: ObjectStore) -> None:
    """Given a stored object, When the same bytes are put again, Then the same info returns and one key exists."""
    b = blob()
    first = put(store, b)
    assert put(store, b) == first
    assert list(store.list_keys()) == [b.key]


def test_putting_again_extends_retention_but_never_shortens_it(store: ObjectStore) -> None:
    """Given an object retained until 2056, When put again with 2070 then 2030, Then 2070 stays."""
    b = blob()
    put(store, b, retain_until=FAR)
    assert put(store, b, retain_until=FARTHER).retain_until == FARTHER
    assert put(store, b, retain_until=datetime(2030, 1, 1, tzinfo=UTC)).retain_until == FARTHER
    assert store.stat(b.key).retain_until == FARTHER


@pytest.mark.parametrize("declared", [4095, 4097])
def test_size_mismatch_is_refused_and_leaves_nothing(store: ObjectStore, declared: int) -> None:
    """Given 4096 bytes, When declared one byte shorter or longer, Then IntegrityFailure and no object."""
    b = blob(4096)
    with pytest.raises(IntegrityFailure) as exc:
        store.put(b.key, b.stream(), size=declared, sha256=b.sha256)
    assert exc.value.code == "integrity_failure" and "字节" in exc.value.message
    _nothing_visible(store, b.key)


@pytest.mark.parametrize(("size", "where"), [(6000, -1), (3 * 1024 * 1024 + 5, 10), (3 * 1024 * 1024 + 5, -1)])
def test_sha256_mismatch_is_refused_and_leaves_nothing(store: ObjectStore, size: int, where: int) -> None:
    """Given bytes damaged in transit (in a small object, or in the first or last of the chunks a large one is
    hashed in while it is written), When put under the original digest, Then IntegrityFailure and no object."""
    b = blob(size)
    damaged = bytearray(b.data)
    damaged[where] ^= 0xFF
    with pytest.raises(IntegrityFailure) as exc:
        store.put(b.key, io.BytesIO(bytes(damaged)), size=len(damaged), sha256=b.sha256)
    assert exc.value.detail["algorithm"] == "sha256"
    _nothing_visible(store, b.key)


def test_sm3_mismatch_is_refused_and_leaves_nothing(store: ObjectStore) -> None:
    """Given a correct SHA-256 but a wrong SM3, When put, Then IntegrityFailure names SM3 and no object."""
    b = blob()
    with pytest.raises(IntegrityFailure) as exc:
        put(store, b, sm3="0" * 64)
    assert exc.value.detail["algorithm"] == "sm3" and "SM3" in exc.value.message
    _nothing_visible(store, b.key)


def test_sm3_the_caller_computed_is_recorded_without_computing_it_again(
        store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given bytes whose SM3 the caller computed from them (a filing's rendition), When put with sm3_computed, Then
    the SM3 is recorded and not computed a second time (the store's SM3 hasher is not asked for; a replicated
    store's copy to its secondary is read back from the primary's disk, so that copy is checked in full)."""
    import storage.base

    b = blob(3 * 1024 * 1024 + 5)  # more than one of the chunks an upload is hashed in
    made: list[object] = []
    plain = storage.base.Hasher
    monkeypatch.setattr(storage.base, "Hasher", lambda: made.append(1) or plain())
    info = put(store, b, sm3=b.digests.sm3, sm3_computed=True)
    assert (info.sha256, info.sm3) == (b.sha256, b.digests.sm3)
    assert len(made) == (1 if store.backend == "replicated" else 0)
    assert store.stat(b.key).sm3 == b.digests.sm3 and read_all(store, b.key) == b.data


@pytest.mark.parametrize("where", [10, -1])
def test_sm3_computed_still_checks_the_sha256_and_the_size(store: ObjectStore, where: int) -> None:
    """Given sm3_computed, When the bytes differ from the declared SHA-256 or size, Then they are refused all the
    same and nothing is stored: only the SM3 is taken on trust, never the content address."""
    b = blob(3 * 1024 * 1024 + 5)
    damaged = bytearray(b.data)
    damaged[where] ^= 0xFF
    with pytest.raises(IntegrityFailure) as exc:
        store.put(b.key, io.BytesIO(bytes(damaged)), size=len(b.data), sha256=b.sha256, sm3=b.digests.sm3,
                  sm3_computed=True)
    assert exc.value.detail["algorithm"] == "sha256"
    with pytest.raises(IntegrityFailure):
        store.put(b.key, io.BytesIO(b.data[:-1]), size=len(b.data), sha256=b.sha256, sm3=b.digests.sm3,
                  sm3_computed=True)
    _nothing_visible(store, b.key)


def test_content_key_must_match_the_digest(store: ObjectStore) -> None:
    """Given a content key of other bytes, When put, Then InvalidKey and nothing stored."""
    b, other = blob(seed=1), blob(seed=2)
    with pytest.raises(InvalidKey):
        store.put(other.key, b.stream(), size=len(b.data), sha256=b.sha256)
    assert not store.exists(other.key)


def test_retention_can_be_extended(store: ObjectStore) -> None:
    """Given retention until 2056, When extended to 2070, Then stat shows 2070."""
    b = blob()
    put(store, b, retain_until=FAR)
    assert store.set_retention(b.key, FARTHER).retain_until == FARTHER
    assert store.stat(b.key).retain_until == FARTHER


def test_retention_cannot_be_shortened(store: ObjectStore) -> None:
    """Given retention until 2070, When shortened to 2056, Then the store refuses and 2070 stays."""
    b = blob()
    put(store, b, retain_until=FARTHER)
    with pytest.raises(ObjectLocked) as exc:
        store.set_retention(b.key, FAR)
    assert exc.value.code == "object_locked" and "不能缩短" in exc.value.message
    assert store.stat(b.key).retain_until == FARTHER


def test_retention_needs_an_aware_future_time(store: ObjectStore) -> None:
    """Given a stored object, When retention is naive or in the past, Then StorageInvalid."""
    b = blob()
    put(store, b)
    with pytest.raises(StorageInvalid):
        store.set_retention(b.key, datetime(2056, 1, 1))
    with pytest.raises(StorageInvalid):
        store.set_retention(b.key, datetime.now(UTC) - timedelta(days=1))
    assert store.stat(b.key).retain_until is None


def test_delete_is_refused_while_retained(store: ObjectStore) -> None:
    """Given retention until 2056, When deleted, Then ObjectLocked says until when, and the object stays."""
    b = blob()
    put(store, b, retain_until=FAR)
    with pytest.raises(ObjectLocked) as exc:
        store.delete(b.key)
    assert "保管期内（至 2056-01-01）" in exc.value.message
    assert read_all(store, b.key) == b.data


def test_delete_is_refused_while_held_and_allowed_after_the_hold_is_cleared(store: ObjectStore) -> None:
    """Given a held object without retention, When deleted, Then refused; after clearing the hold, deleted."""
    b = blob()
    put(store, b, legal_hold=True)
    with pytest.raises(ObjectLocked) as exc:
        store.delete(b.key)
    assert "法律保全" in exc.value.message
    assert store.set_legal_hold(b.key, False).legal_hold is False
    store.delete(b.key)
    assert not store.exists(b.key)
    assert list(store.list_keys()) == []


def test_legal_hold_can_be_set_on_a_stored_object(store: ObjectStore) -> None:
    """Given a stored object, When a hold is set, Then stat shows it and delete is refused."""
    b = blob()
    put(store, b)
    assert store.set_legal_hold(b.key, True).legal_hold is True
    with pytest.raises(ObjectLocked):
        store.delete(b.key)


def test_delete_without_retention_removes_the_object(store: ObjectStore) -> None:
    """Given an object with no retention or hold, When deleted, Then reads raise ObjectNotFound."""
    b = blob()
    put(store, b)
    store.delete(b.key)
    with pytest.raises(ObjectNotFound) as exc:
        read_all(store, b.key)
    assert exc.value.kind == "not_found" and b.key in exc.value.message
    put(store, b)  # the same bytes can be stored again
    assert read_all(store, b.key) == b.data


@pytest.mark.parametrize("key", [
    "../etc/passwd", "originals/../../x", "/etc/passwd", "originals//x", "originals/./x", "a\\b", "",
    "originals/", ".hidden", "C:/x", "originals/x\x00",
])
def test_traversal_and_malformed_keys_are_refused(store: ObjectStore, key: str) -> None:
    """Given a key with .., an absolute path or odd characters, When used, Then InvalidKey for every operation."""
    b = blob()
    operations = [
        lambda: store.put(key, b.stream(), size=len(b.data), sha256=b.sha256),
        lambda: store.get(key), lambda: store.stat(key), lambda: store.delete(key),
        lambda: store.set_retention(key, FAR), lambda: store.set_legal_hold(key, True),
    ]
    for operation in operations:
        with pytest.raises(InvalidKey) as exc:
            operation()
        assert exc.value.code == "invalid_object_key" and exc.value.kind == "invalid"
    with pytest.raises(InvalidKey):
        list(store.list_keys("../"))


def test_missing_objects_raise_not_found(store: ObjectStore) -> None:
    """Given an empty store, When a key is read, stat'ed, deleted, retained or held, Then ObjectNotFound."""
    key = content_key("originals", "a" * 64)
    for operation in [lambda: store.get(key), lambda: store.stat(key), lambda: store.delete(key),
                      lambda: store.set_retention(key, FAR), lambda: store.set_legal_hold(key, True)]:
        with pytest.raises(ObjectNotFound) as exc:
            operation()
        assert exc.value.code == "object_not_found"


def test_health_reports_the_backend(store: ObjectStore) -> None:
    """Given a working store, When health is asked, Then ok with the backend's name and a detail."""
    health = store.health()
    assert health["ok"] is True and health["backend"] == store.backend and health["detail"]
