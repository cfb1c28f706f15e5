"""长期保存环节 (BC) items: each one finds the damage it exists for, and passes an intact store."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from archive.audit import Actor
from archive.catalogue.models import ArchiveItem, CheckReport, StorageAlert, StorageSweep
from archive.checks.base import REGISTRY, Stage
from archive.checks.sweep import SweepOptions, run_sweep
from archive.commands.common import ensure_fonds
from archive.context import Context
from archive.settings import Settings, load_settings
from storage.replicated import ReplicatedStore
from tests.checks.storage_support import (
    add_item,
    flip_byte,
    fs_path,
    put,
    remove_object,
    signed_pdf,
    tamper_audit_event,
)

ACTOR = Actor.system("test-sweep")


def sweep(ctx: Context, **options: object) -> StorageSweep:
    opts = {"signature_every": 1, "checkpoint_every": 4, **options}
    return run_sweep(ctx, ACTOR, SweepOptions(**opts))  # type: ignore[arg-type]


def alerts(ctx: Context) -> dict[tuple[str, str], StorageAlert]:
    with ctx.catalogue.sessions() as s:
        return {(a.code, a.target): a for a in s.scalars(select(StorageAlert))}


def failed_codes(ctx: Context) -> set[str]:
    return {code for code, _ in alerts(ctx)}


@pytest.fixture
def replicated(settings: Settings, pki_template: Path, tmp_path: Path) -> Iterator[Context]:
    """A catalogue on a replicated store: two filesystem copies."""
    rs = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, storage="replicated",
                       replica="filesystem", replica_path=tmp_path / "replica")
    shutil.copytree(pki_template, rs.pki_path)
    context = Context.build(rs)
    ensure_fonds(context)
    yield context
    context.close()


def test_the_bc_items_are_registered_for_the_storage_stage() -> None:
    """Given the check registry, when its storage-stage items are listed, then every BC item the sweep relies on is
    there."""
    codes = {c for c, i in REGISTRY.items() if i.stage is Stage.STORAGE}
    assert {"BC-1-1", "BC-1-2", "BC-2-1", "BC-2-2", "BC-2-3", "BC-4-1", "BC-4-2"} <= codes


def test_an_intact_store_passes_every_item_and_the_report_says_so(ctx: Context) -> None:
    """Given three intact items with two originals each, when a sweep runs, then it reads all nine objects, raises no
    alert, and stores a passed bc report (BC-4-1 not applicable: one store, no replica)."""
    for n in range(1, 4):
        add_item(ctx, n, originals=2)
    done = sweep(ctx)
    assert done.status == "done" and done.findings == 0 and done.object_count == 9
    assert alerts(ctx) == {}
    with ctx.catalogue.sessions() as s:
        report = s.get(CheckReport, done.report_id)
        assert report is not None and report.stage == "bc" and report.passed and report.outcome == "passed"
        outcomes = {r.code: r.outcome for r in report.results}
    assert outcomes["BC-1-1"] == outcomes["BC-1-2"] == outcomes["BC-4-2"] == "passed"
    assert outcomes["BC-4-1"] == "not_applicable"  # one store, no replica to compare


def test_a_flipped_byte_in_a_stored_rendition_is_found_by_digest_and_signature(ctx: Context) -> None:
    """Given an item whose stored rendition has one byte flipped, when a sweep runs, then one critical BC-1-1 alert
    names the rendition's key with a Chinese message about the SHA-256 mismatch, BC-1-2 flags its signature, and
    the report fails on that key only."""
    add_item(ctx, 1)
    bad = add_item(ctx, 2)
    flip_byte(fs_path(ctx.store, bad.rendition_key))
    done = sweep(ctx)
    found = alerts(ctx)
    fixity = found[("BC-1-1", bad.rendition_key)]
    assert fixity.severity == "critical" and "SHA-256" in fixity.message and "与目录登记不符" in fixity.message
    assert ("BC-1-2", bad.archival_code) in found  # the signature no longer covers the bytes
    assert done.findings >= 2 and len([k for k in found if k[0] == "BC-1-1"]) == 1
    with ctx.catalogue.sessions() as s:
        report = s.get(CheckReport, done.report_id)
        assert report is not None and not report.passed
        assert {r.target for r in report.results if r.code == "BC-1-1" and r.outcome == "failed"} == {
            bad.rendition_key}


def test_an_invalid_signature_is_found_even_when_the_digests_match_the_catalogue(ctx: Context) -> None:
    """Given a rendition with a broken signature re-catalogued with its own digests (so fixity passes), when a sweep
    runs, then BC-1-2 fails with a message about the 签名 and BC-1-1 does not, and the old rendition left in the
    store is a BC-2-3 stray."""
    item = add_item(ctx, 1)
    pdf = bytearray(signed_pdf(ctx))
    at = pdf.index(b"/Type /Catalog") if b"/Type /Catalog" in pdf else 20
    pdf[at + 1] ^= 0x01  # inside the signed byte range
    key, d = put(ctx.store, "renditions", bytes(pdf))
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code == item.archival_code).values(
            rendition_key=key, rendition_sha256=d.sha256, rendition_sm3=d.sm3))
    sweep(ctx)
    codes = failed_codes(ctx)
    assert "BC-1-2" in codes and "BC-1-1" not in codes
    assert "签名" in alerts(ctx)[("BC-1-2", item.archival_code)].message
    assert "BC-2-3" in codes  # the old rendition is now stored without a catalogue row


def test_signatures_are_sampled_when_configured(ctx: Context) -> None:
    """Given six signed renditions and signature_every=3, when three sweeps run, then together they validate every
    rendition's signature exactly once (a broken one may wait up to N sweeps)."""
    for n in range(1, 7):
        add_item(ctx, n)
    checked = []
    for _ in range(3):
        done = sweep(ctx, signature_every=3)
        checked.append(done.tally["BC-1-2"]["checked"])
    assert sum(checked) == 6  # three sweeps with N=3 cover every rendition exactly once


def test_an_object_with_no_catalogue_row_is_a_warning(ctx: Context) -> None:
    """Given an object left in the store with no catalogue row (a crashed upload), when a sweep runs, then it is the
    only alert: a BC-2-3 warning saying 没有对应的目录条目."""
    add_item(ctx, 1)
    stray, _ = put(ctx.store, "originals", b"left behind by a crashed upload")
    sweep(ctx)
    found = alerts(ctx)
    assert set(found) == {("BC-2-3", stray)}
    assert found[("BC-2-3", stray)].severity == "warning" and "没有对应的目录条目" in found[("BC-2-3", stray)].message


def test_a_catalogue_row_whose_object_is_gone_is_critical_and_breaks_the_inventory(ctx: Context) -> None:
    """Given an item whose original is gone from the store, when a sweep runs, then a critical BC-2-2 alert names the
    key and its 档号 and the BC-2-1 inventory counts three originals catalogued but two stored."""
    add_item(ctx, 1)
    gone = add_item(ctx, 2, originals=2)
    remove_object(fs_path(ctx.store, gone.original_keys[0]))
    sweep(ctx)
    found = alerts(ctx)
    missing = found[("BC-2-2", gone.original_keys[0])]
    assert missing.severity == "critical" and "不存在" in missing.message and gone.archival_code in missing.message
    inventory = found[("BC-2-1", "inventory@store")]
    assert inventory.detail["originals_catalogued"] == 3 and inventory.detail["originals_stored"] == 2


def test_objects_of_a_destroyed_item_may_be_gone(ctx: Context) -> None:
    """Given a destroyed item whose rendition and originals are gone from the store, when a sweep runs, then nothing
    is reported: destruction removes objects on purpose."""
    add_item(ctx, 1)
    destroyed = add_item(ctx, 2, status="destroyed")
    for key in [destroyed.rendition_key, *destroyed.original_keys]:
        remove_object(fs_path(ctx.store, key))
    done = sweep(ctx)
    assert alerts(ctx) == {} and done.findings == 0


def test_an_audit_event_edited_in_the_database_breaks_the_chain(ctx: Context) -> None:
    """Given an audit event edited in the database behind the triggers, when a sweep runs, then a critical BC-4-2
    alert names that event and says it was 被修改."""
    add_item(ctx, 1)
    tamper_audit_event(ctx, 1)
    sweep(ctx)
    found = alerts(ctx)
    chain = found[("BC-4-2", "audit_event:1")]
    assert chain.severity == "critical" and "被修改" in chain.message


def test_a_missing_replica_and_a_damaged_copy_are_found_per_copy(replicated: Context) -> None:
    """Given a replicated store where one original is missing from the secondary and one rendition is damaged on the
    primary, when a sweep runs, then BC-4-1 reports the missing replica and the differing copies, BC-1-1 names
    only the damaged copy, the missing one is not BC-2-2 lost (one copy is left), and the secondary inventory
    counts two originals."""
    ctx = replicated
    assert isinstance(ctx.store, ReplicatedStore)
    add_item(ctx, 1)
    lost = add_item(ctx, 2)
    damaged = add_item(ctx, 3)
    remove_object(fs_path(ctx.store, lost.original_keys[0], "secondary"))
    flip_byte(fs_path(ctx.store, damaged.rendition_key, "primary"))
    sweep(ctx)
    found = alerts(ctx)
    assert "备副本缺失" in found[("BC-4-1", lost.original_keys[0])].message
    assert ("BC-1-1", f"{damaged.rendition_key}@primary") in found
    assert ("BC-1-1", f"{damaged.rendition_key}@secondary") not in found
    assert "内容不同" in found[("BC-4-1", damaged.rendition_key)].message
    assert ("BC-2-2", lost.original_keys[0]) not in found  # one copy is left: not lost, only unprotected
    assert found[("BC-2-1", "inventory@secondary")].detail["originals_stored"] == 2


def test_a_sweep_of_one_copy_reads_only_that_copy(replicated: Context) -> None:
    """Given a replicated store with one original damaged on the secondary, when the primary alone is swept, then
    nothing is found; when the secondary alone is swept, then the damage is found under the bare key and BC-4-1 is
    not applicable."""
    ctx = replicated
    item = add_item(ctx, 1)
    flip_byte(fs_path(ctx.store, item.original_keys[0], "secondary"))
    assert sweep(ctx, scope="primary").findings == 0
    done = sweep(ctx, scope="secondary")
    assert done.findings >= 1 and ("BC-1-1", item.original_keys[0] + "@secondary") not in alerts(ctx)
    assert ("BC-1-1", item.original_keys[0]) in alerts(ctx)  # one copy read: the key alone names it
    assert done.tally["BC-4-1"]["note"]["outcome"] == "not_applicable"


def test_the_tier_limits_the_objects_read(ctx: Context) -> None:
    """Given an item with a damaged original, when only renditions are swept, then one object is read and nothing
    found; when only originals are swept, then both originals are read and the damage is found."""
    item = add_item(ctx, 1, originals=2)
    flip_byte(fs_path(ctx.store, item.original_keys[0]))
    done = sweep(ctx, tier="renditions")
    assert done.object_count == 1 and done.findings == 0
    done = sweep(ctx, tier="originals")
    assert done.object_count == 2 and ("BC-1-1", item.original_keys[0]) in alerts(ctx)
