"""Long-term validation of archive items (issue 18): B-LTA at filing, renewal as a new version, offline verification
years later, and the faults (TSA down, destruction pending, a crash between storing and cataloguing)."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive import ltv
from archive.api.app import create_app
from archive.audit import Actor
from archive.catalogue.models import AppraisalDecision, ArchiveItem, AuditEvent, RenditionVersion, StorageAlert
from archive.commands.common import ensure_fonds
from archive.context import Context
from archive.settings import load_settings
from signing.certificates import DevPki, load_trust_roots
from signing.eep import verify_eep
from signing.ltv_verify import verify_ltv
from tests.factories import close_case, complete_case
from tests.helpers import add_client
from tests.signing.ltv_support import YEAR, LtvPki, make_ltv_pki

ACTOR = Actor.system("test")


@pytest.fixture(scope="module")
def ltv_template(tmp_path_factory: pytest.TempPathFactory) -> LtvPki:
    """A development PKI naming a local OCSP/CRL service, with a TSA certificate that expires in 200 days."""
    template = make_ltv_pki(tmp_path_factory.mktemp("ltv-pki"))
    template.new_tsa_certificate(200)
    return template


@pytest.fixture
def pki(ltv_template: LtvPki, tmp_path: Path) -> LtvPki:
    target = tmp_path / "data" / "pki"
    shutil.copytree(ltv_template.pki.directory, target)
    return LtvPki(DevPki(target), ltv_template.port, ltv_template.url)


@pytest.fixture
def lctx(pki: LtvPki, tmp_path: Path, db_url: str) -> Iterator[Context]:
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url, tsa_url=pki.url)
    context = Context.build(settings)
    ensure_fonds(context)
    yield context
    context.close()


@pytest.fixture
def lclient(lctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context=lctx)) as c:
        yield c


def file_item(client: TestClient, ctx: Context) -> dict[str, Any]:
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    complete_case(client, core)
    item: dict[str, Any] = close_case(client, core)["item"]
    return item


def item_row(ctx: Context) -> ArchiveItem:
    with ctx.catalogue.sessions() as s:
        item = s.scalar(select(ArchiveItem))
        assert item is not None
        s.expunge(item)
        return item


def version_rows(ctx: Context) -> list[RenditionVersion]:
    with ctx.catalogue.sessions() as s:
        rows = list(s.scalars(select(RenditionVersion).order_by(RenditionVersion.version)))
        s.expunge_all()
        return rows


def test_d30_item_filed_at_b_lta_renewed_as_a_new_version_and_valid_after_its_certificates_expire(
        pki: LtvPki, lctx: Context, lclient: TestClient) -> None:
    """Given a 提取 item (D30) filed with a TSA whose certificate expires in 200 days, When `archive ltv renew` runs
    after the TSA got a new certificate, Then the item has a second rendition version (the first kept and locked),
    an audit event, and its verification 5 years later (signer and first TSA certificates expired), offline, holds;
    the first version alone would not, and says why."""
    with pki.serve():
        item = file_item(lclient, lctx)
    assert item["signature"]["level"] == "B-LTA"
    [first] = version_rows(lctx)
    assert first.kind == "signed" and first.level == "B-LTA" and first.timestamp_expiry is not None
    item_id = item_row(lctx).id
    with lctx.catalogue.sessions() as s:
        assert ltv.due(s, lctx.settings) == [item_id]  # 200 days < ARCHIVE_LTV_RENEW_DAYS (365)

    pki.new_tsa_certificate(365 * 20)
    with pki.serve():
        summary = ltv.renew_due(lctx, ACTOR)
    assert summary.renewed == [item["archival_code"]] and not summary.failed
    first_again, second = version_rows(lctx)
    current = item_row(lctx)
    assert second.version == 2 and second.kind == "renewal" and current.rendition_key == second.object_key
    assert current.rendition_sha256 == second.sha256 and first_again.object_key == first.object_key
    old_lock = lctx.store.stat(first.object_key).retain_until
    assert old_lock is not None and lctx.store.stat(second.object_key).retain_until == old_lock
    with lctx.catalogue.sessions() as s:
        assert ltv.due(s, lctx.settings) == []
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "item.ltv.renew"))
        assert event is not None and event.outcome == "success" and event.detail["version"] == 2

    later = (dt.datetime.now(dt.UTC) + 5 * YEAR).date()
    files = add_client(lctx, "dms", ["files.read", "data.read"])
    r = lclient.get(f"/api/v1/items/{quote(item['archival_code'])}/verification", params={"at": str(later)},
                    headers=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["level"] == "B-LTA"
    long_term = body["long_term"]
    assert long_term["ok"] is True, long_term["layers"]
    assert long_term["summary"].startswith("证据有效") and len(long_term["versions"]) == 2
    assert [s["kind"] for s in long_term["chain"]] == ["signature", "archive", "archive"]
    package = lclient.get(f"/api/v1/items/{quote(item['archival_code'])}/package.eep", headers=files)
    assert package.status_code == 200
    assert verify_eep(package.content, load_trust_roots(lctx.settings.pki_path)).ok  # still valid under the schema
    assert "归档时间戳续期" in package.content.decode() and second.sha256 in package.content.decode()
    old = verify_ltv(lctx.store.read_bytes(first.object_key), load_trust_roots(lctx.settings.pki_path),
                     dt.datetime(later.year, later.month, later.day, tzinfo=dt.UTC))
    assert not old.ok and "过期" in old.summary


def test_renewal_with_the_tsa_down_leaves_the_item_as_it_was_and_raises_an_alert(
        pki: LtvPki, lctx: Context, lclient: TestClient) -> None:
    """Given a filed item due for renewal, When renewal runs while the TSA (and OCSP) service is down, Then the
    item keeps its one version, an alert is raised and a failed renewal is audited."""
    with pki.serve():
        item = file_item(lclient, lctx)
    before = item_row(lctx)
    summary = ltv.renew_due(lctx, ACTOR)  # nothing listens on the service port now
    assert list(summary.failed) == [item["archival_code"]]
    after = item_row(lctx)
    assert after.rendition_key == before.rendition_key and len(version_rows(lctx)) == 1
    with lctx.catalogue.sessions() as s:
        alert = s.scalar(select(StorageAlert).where(StorageAlert.target == item["archival_code"]))
        assert alert is not None and "续期失败" in alert.message
        failed = s.scalar(select(AuditEvent).where(AuditEvent.action == "item.ltv.renew"))
        assert failed is not None and failed.outcome == "failure"


def test_an_item_proposed_for_destruction_is_never_renewed(pki: LtvPki, lctx: Context, lclient: TestClient) -> None:
    """Given a filed item due for renewal and proposed for destruction, When renewal runs, Then it is not due and
    renewing it directly does nothing."""
    with pki.serve():
        file_item(lclient, lctx)
        item = item_row(lctx)
        with lctx.catalogue.session() as s:
            s.add(AppraisalDecision(item_id=item.id, decision="destroy", reason="到期", status="proposed",
                                    decided_by="archivist"))
        with lctx.catalogue.sessions() as s:
            assert ltv.due(s, lctx.settings) == []
        assert ltv.renew_item(lctx, ACTOR, item.id) is None
    assert len(version_rows(lctx)) == 1 and item_row(lctx).rendition_key == item.rendition_key


def test_a_crash_before_the_catalogue_commit_leaves_the_old_version_in_force(
        pki: LtvPki, lctx: Context, lclient: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a renewal whose catalogue transaction fails after the new object was stored, Then the item still
    serves the old version, no version row points at anything, and the new object is only an unreferenced one."""
    with pki.serve():
        file_item(lclient, lctx)
        item = item_row(lctx)
        real = ltv.audit.record

        def crash(session: Any, actor: Actor, action: str, **kw: Any) -> Any:
            if action == "item.ltv.renew":
                raise RuntimeError("power cut")
            return real(session, actor, action, **kw)

        monkeypatch.setattr(ltv.audit, "record", crash)
        with pytest.raises(RuntimeError):
            ltv.renew_item(lctx, ACTOR, item.id)
    assert item_row(lctx).rendition_key == item.rendition_key
    rows = version_rows(lctx)
    assert [r.object_key for r in rows] == [item.rendition_key]
    with lctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(RenditionVersion)) == 1
    assert all(lctx.store.exists(r.object_key) for r in rows)


def test_the_storage_sweep_renews_what_is_due_and_checks_every_version(
        pki: LtvPki, lctx: Context, lclient: TestClient) -> None:
    """Given a filed item due for renewal, When a storage sweep of the renditions runs with the TSA up, Then its last
    step renews the item; a second sweep finds both versions as expected objects (no finding about either) and
    signature_every=1 validates them."""
    from archive.checks.sweep import SweepOptions, run_sweep

    with pki.serve():
        file_item(lclient, lctx)
        pki_cert = pki.new_tsa_certificate(365 * 20)
    with pki.serve():
        run_sweep(lctx, ACTOR, SweepOptions(tier="renditions"))
        first, second = version_rows(lctx)
        assert second.kind == "renewal" and pki_cert.subject.rfc4514_string()
        sweep = run_sweep(lctx, ACTOR, SweepOptions(tier="renditions", signature_every=1))
    assert sweep.status == "done"
    with lctx.catalogue.sessions() as s:
        findings = list(s.scalars(select(StorageAlert)))
    assert [a.target for a in findings if first.object_key in a.target or second.object_key in a.target] == []
    assert len(version_rows(lctx)) == 2  # nothing due any more


def test_archive_ltv_commands_list_renew_and_report(pki: LtvPki, lctx: Context, lclient: TestClient,
                                                  monkeypatch: pytest.MonkeyPatch, db_url: str) -> None:
    """Given a filed item due for renewal, When `archive ltv status`, `renew --dry-run` and `renew` run (the last
    with the TSA down, then up with a new certificate), Then they report the level and what is due, list it, exit 1
    naming the failure, then renew it (exit 0)."""
    from typer.testing import CliRunner

    from archive.cli import app
    from archive.settings import get_settings

    with pki.serve():
        item = file_item(lclient, lctx)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(lctx.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", db_url)
    monkeypatch.setenv("ARCHIVE_TSA_URL", pki.url)
    get_settings.cache_clear()
    status = CliRunner().invoke(app, ["ltv", "status"])
    assert status.exit_code == 0, status.output
    assert "PAdES B-LTA" in status.output and "需要续期" in status.output and "1 件" in status.output
    listed = CliRunner().invoke(app, ["ltv", "renew", "--dry-run"])
    assert listed.exit_code == 0 and item["archival_code"] in listed.output
    down = CliRunner().invoke(app, ["ltv", "renew"])
    assert down.exit_code == 1 and "失败 1 件" in down.output
    pki.new_tsa_certificate(365 * 20)
    with pki.serve():
        up = CliRunner().invoke(app, ["ltv", "renew"])
    assert up.exit_code == 0 and "已续期 1 件" in up.output, up.output
    get_settings.cache_clear()
    assert len(version_rows(lctx)) == 2
