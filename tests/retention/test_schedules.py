"""Schedule versions and re-applying the schedule in force to filed items (dry run, then apply with a reason)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from archive.catalogue.models import ArchiveItem, AuditEvent, Document, ScheduleVersion
from archive.classification import Schedule, load_schedule
from archive.cli import app
from archive.context import Context
from archive.retention import holds, schedules
from tests import samples
from tests.factories import case_body, close_body, close_case, complete_case, upload
from tests.helpers import add_client, add_user, login
from tests.retention.test_triggers import count, event, file_loan, item_row

TQ01 = '[types.TQ01]\ncategory = "TQ"\nname = "购买自住住房提取"\nretention = "D30"'
TQ03 = '[types.TQ03]\ncategory = "TQ"\nname = "离休、退休提取"\nretention = "D30"'
DK03 = '[types.DK03]\ncategory = "DK"\nname = "贷款结清与抵押注销"\nretention = "D30"\ntrigger = "LOAN_SETTLED"'


def variant(ctx: Context, tmp_path: Path, label: str, *edits: tuple[str, str]) -> Schedule:
    """The packaged default schedule with a new label and some lines changed."""
    text = load_schedule().source_text
    assert 'version = "2026.1-default"' in text
    text = text.replace('version = "2026.1-default"', f'version = "{label}"')
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{label}.toml"
    path.write_text(text, encoding="utf-8")
    return load_schedule(path)


def file_tq(client: TestClient, headers: dict[str, str], serial: str, business_type: str = "TQ01") -> dict[str, Any]:
    """A filed 提取 item (TQ01 购房 or TQ03 退休), closed 2024-01-05: D30, expiry 2055-01-01."""
    if business_type == "TQ01":
        complete_case(client, headers, serial=serial, accepted_at="2024-01-05T09:00:00+08:00")
    else:
        r = client.post("/api/v1/cases", json=case_body(serial=serial, business_type=business_type,
                                                        accepted_at="2024-01-05T09:00:00+08:00"), headers=headers)
        assert r.status_code == 201, r.text
        assert upload(client, headers, serial, ("申请表.jpg", samples.jpeg(text=serial), "application_form"),
                      ("身份证.png", samples.png(), "id_proof"),
                      ("退休证.jpg", samples.jpeg(text="退休"), "retirement_proof")).status_code == 201
    return close_case(client, headers, serial, close_body("2024-01-05"))["item"]


def locks(ctx: Context, code: str) -> list[datetime | None]:
    item = item_row(ctx, code)
    with ctx.catalogue.sessions() as s:
        keys = list(s.scalars(select(Document.original_key).where(Document.case_id == item.case_id,
                                                                   Document.status == "active")))
    return [ctx.store.stat(k).retain_until for k in [item.rendition_key or "", *keys]]


@pytest.fixture
def core(ctx: Context) -> dict[str, str]:
    return add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])


@pytest.fixture
def archivist(ctx: Context, client: TestClient) -> dict[str, str]:
    add_user(ctx, "arch", ["archivist"])
    return login(client, "arch")


@pytest.fixture
def no_holds(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """Held item ids as the holds module would report them (kept independent of the holds work)."""
    held: set[int] = set()
    monkeypatch.setattr(holds, "held_item_ids", lambda _s, ids: {i for i in ids if i in held})
    return held


def test_filing_records_the_schedule_version_once(ctx: Context, client: TestClient, core: dict[str, str],
                                                  tmp_path: Path) -> None:
    """Given two filings under the packaged schedule, when they are filed, then one schedule version is recorded
    (text, digest, one audit event) and both items name it; a copy differing only in comments is no new version,
    while the same label with another period is recorded under its own ref, applies to the next item only, and
    earlier items keep theirs."""
    a = file_tq(client, core, "YW2024010500001")
    file_tq(client, core, "YW2024010500002")
    with ctx.catalogue.sessions() as s:
        rows = list(s.scalars(select(ScheduleVersion)))
        recorded = s.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.action == "schedule.version.record"))
    assert len(rows) == 1 and recorded == 1
    v = rows[0]
    assert v.ref == v.label == "2026.1-default" and v.text == ctx.schedule.source_text
    assert v.digest == schedules.digest_of(ctx.schedule) and len(v.digest) == 64
    assert item_row(ctx, a["archival_code"]).schedule_version == v.ref

    # comments and layout are not a new version; the same label with other content is, under its own ref
    ctx.schedule = variant(ctx, tmp_path, "2026.1-default", ("# Classification", "#   Classification"))
    file_tq(client, core, "YW2024010500003")
    assert count(ctx, ScheduleVersion) == 1
    ctx.schedule = variant(ctx, tmp_path, "2026.1-default", (TQ01, TQ01.replace("D30", "Y")))
    b = file_tq(client, core, "YW2024010500004")
    with ctx.catalogue.sessions() as s:
        second = s.scalar(select(ScheduleVersion).where(ScheduleVersion.digest == schedules.digest_of(ctx.schedule)))
    assert second is not None and second.ref == f"2026.1-default+{second.digest[:8]}"
    filed = item_row(ctx, b["archival_code"])
    assert filed.schedule_version == second.ref and filed.retention_code == "Y" and filed.expiry_date is None
    assert item_row(ctx, a["archival_code"]).schedule_version == "2026.1-default"  # earlier items keep theirs


def test_reapply_dry_run_lists_changes_and_apply_makes_them(ctx: Context, client: TestClient, core: dict[str, str],
                                                            archivist: dict[str, str], tmp_path: Path,
                                                            no_holds: set[int]) -> None:
    """Given items filed under 2026.1 and a schedule making TQ01 永久 and TQ03 定期10年, when an archivist
    previews, then each change is listed and nothing changes; when applied with a reason, the catalogue
    changes, the lengthened item's objects are locked longer and the shortened one's locks stay."""
    longer = file_tq(client, core, "YW2024010500001")
    shorter = file_tq(client, core, "YW2024010500002", business_type="TQ03")
    loan = file_loan(client, core, "YW2024010500003")
    assert locks(ctx, longer["archival_code"])[0] == datetime(2055, 1, 1, tzinfo=UTC)
    ctx.schedule = variant(ctx, tmp_path, "2026.2-test", (TQ01, TQ01.replace("D30", "Y")),
                           (TQ03, TQ03.replace("D30", "D10")))
    audits = count(ctx, AuditEvent)

    r = client.post("/api/v1/schedule/reapply", json={}, headers=archivist)
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["applied"] is False and preview["version"] == "2026.2-test"
    assert preview["counts"] == {"items": 3, "lengthen": 1, "shorten": 1, "unchanged": 1}
    by_code = {c["archival_code"]: c for c in preview["items"]}
    assert set(by_code) == {longer["archival_code"], shorter["archival_code"]}  # the loan item does not change
    up, down = by_code[longer["archival_code"]], by_code[shorter["archival_code"]]
    assert (up["old_code"], up["new_code"], up["old_expiry"], up["new_expiry"]) == ("D30", "Y", "2055-01-01", None)
    assert (down["old_code"], down["new_code"], down["old_expiry"], down["new_expiry"]) == \
        ("D30", "D10", "2055-01-01", "2035-01-01")
    assert "不能缩短" in down["store_note"]
    assert item_row(ctx, longer["archival_code"]).expiry_date == date(2055, 1, 1)
    assert locks(ctx, longer["archival_code"])[0] == datetime(2055, 1, 1, tzinfo=UTC)
    assert count(ctx, AuditEvent) == audits + 1  # only the new schedule version was recorded

    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "按2026年新版保管期限表调整",
                                                      "plan_digest": preview["plan_digest"]}, headers=archivist)
    assert r.status_code == 200, r.text
    assert r.json()["applied"] is True and r.json()["counts"] == preview["counts"]
    up_item, down_item = item_row(ctx, longer["archival_code"]), item_row(ctx, shorter["archival_code"])
    assert up_item.effective_retention == "Y" and up_item.retention_code == "D30" and up_item.expiry_date is None
    assert up_item.archival_code == longer["archival_code"]  # the 档号 on the signed rendition stays
    assert down_item.effective_retention == "D10" and down_item.expiry_date == date(2035, 1, 1)
    assert all(u == datetime(2125, 1, 1, tzinfo=UTC) for u in locks(ctx, longer["archival_code"]))
    # (its originals may share bytes, and so objects, with the lengthened item: only its rendition is its own)
    assert locks(ctx, shorter["archival_code"])[0] == datetime(2055, 1, 1, tzinfo=UTC)
    assert all(item_row(ctx, c).schedule_version == "2026.2-test"
               for c in (longer["archival_code"], shorter["archival_code"], loan["archival_code"]))
    with ctx.catalogue.sessions() as s:
        changes = list(s.scalars(select(AuditEvent).where(AuditEvent.action == "item.retention.reapply")))
        summary = s.scalar(select(AuditEvent).where(AuditEvent.action == "schedule.reapply"))
    assert sorted(e.target_id or "" for e in changes) == sorted([longer["archival_code"], shorter["archival_code"]])
    assert all(e.actor == "arch" and e.detail["reason"] == "按2026年新版保管期限表调整" for e in changes)
    assert summary is not None and summary.detail["counts"]["lengthen"] == 1
    # nothing is left to re-apply
    again = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()
    assert again["counts"] == {"items": 0} and again["items"] == []


def test_shortening_is_refused_for_held_items(ctx: Context, client: TestClient, core: dict[str, str],
                                              archivist: dict[str, str], tmp_path: Path,
                                              no_holds: set[int]) -> None:
    """Given two TQ01 items, one of them held, and a schedule shortening TQ01 to D10, when the re-application is
    previewed and applied, then the held item is refused (held) and keeps its D30 expiry and schedule version,
    while the free one expires 2035-01-01."""
    held = file_tq(client, core, "YW2024010500001")
    free = file_tq(client, core, "YW2024010500002")
    no_holds.add(item_row(ctx, held["archival_code"]).id)
    ctx.schedule = variant(ctx, tmp_path, "2026.2-short", (TQ01, TQ01.replace("D30", "D10")))
    preview = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()
    assert preview["counts"] == {"items": 2, "shorten": 1, "refused_held": 1}
    refused = next(c for c in preview["items"] if c["archival_code"] == held["archival_code"])
    assert refused["refused"] == "held"
    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "新表"}, headers=archivist)
    assert r.status_code == 200
    kept = item_row(ctx, held["archival_code"])
    assert kept.expiry_date == date(2055, 1, 1) and kept.effective_retention == "D30"
    assert kept.schedule_version == "2026.1-default"  # still to be re-applied once the hold is lifted
    assert item_row(ctx, free["archival_code"]).expiry_date == date(2035, 1, 1)


def test_changed_trigger_uses_an_event_already_reported(ctx: Context, client: TestClient, core: dict[str, str],
                                                        archivist: dict[str, str], tmp_path: Path,
                                                        no_holds: set[int]) -> None:
    """Given a DK03 loan item waiting for 贷款结清, when a schedule counting DK03 from 业务办结 is re-applied, then
    its clock starts from its closing (a shortening); when a settlement is then reported and the original trigger
    comes back, then the settlement already reported starts it (a lengthening to 2057-01-01)."""
    loan = file_loan(client, core, "YW2024010500001")
    ctx.schedule = variant(ctx, tmp_path, "2026.2-closed", (DK03, DK03.replace("LOAN_SETTLED", "BUSINESS_CLOSED")))
    change = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()["items"][0]
    assert (change["kind"], change["new_trigger_date"], change["new_expiry"]) == ("shorten", "2024-01-05",
                                                                                  "2055-01-01")
    # and back: a loan settlement already reported starts the re-applied LOAN_SETTLED trigger
    client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "按业务办结起算"}, headers=archivist)
    loans = add_client(ctx, "loans", ["events.write"])
    assert client.post("/api/v1/events", json=event(), headers=loans).json()["outcome"] == "nothing_waiting"
    ctx.schedule = variant(ctx, tmp_path, "2026.3-settled")
    back = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()["items"][0]
    assert (back["archival_code"], back["new_trigger"], back["new_trigger_date"], back["new_expiry"]) == \
        (loan["archival_code"], "LOAN_SETTLED", "2026-03-01", "2057-01-01")
    assert back["kind"] == "lengthen"


def test_reapply_refusals_change_nothing(ctx: Context, client: TestClient, core: dict[str, str],
                                         archivist: dict[str, str], tmp_path: Path, no_holds: set[int]) -> None:
    """Given a schedule that lengthens an item, when the re-application is applied without a reason, against a stale
    plan digest, by a clerk, or with a malformed body, then 422 missing_reason (理由), 409 plan_changed
    (重新预览), 403 and 422 invalid_request; beyond the login only the clerk's two refusals are audited, and the
    item, its expiry and its store lock are unchanged."""
    a = file_tq(client, core, "YW2024010500001")
    ctx.schedule = variant(ctx, tmp_path, "2026.2-test", (TQ01, TQ01.replace("D30", "Y")))
    preview = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()
    audits = count(ctx, AuditEvent)
    r = client.post("/api/v1/schedule/reapply", json={"apply": True}, headers=archivist)
    assert r.status_code == 422 and r.json()["code"] == "missing_reason" and "理由" in r.json()["message"]
    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "调整", "plan_digest": "0" * 64},
                    headers=archivist)
    assert r.status_code == 409 and r.json()["code"] == "plan_changed" and "重新预览" in r.json()["message"]
    add_user(ctx, "clerk", ["clerk"])
    clerk = login(client, "clerk")
    audits_after_login = count(ctx, AuditEvent)
    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "调整"}, headers=clerk)
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    r = client.post("/api/v1/schedule/reapply", json={"apply": "yes please", "reason": 5}, headers=archivist)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    assert client.get("/api/v1/schedule/versions", headers=clerk).status_code == 403
    with ctx.catalogue.session() as s:
        after = s.scalars(select(AuditEvent).where(AuditEvent.seq > audits_after_login).order_by(AuditEvent.seq)).all()
        before_login = s.scalars(select(AuditEvent.action).where(AuditEvent.seq > audits,
                                                                 AuditEvent.seq <= audits_after_login)).all()
    assert "schedule.reapply" not in before_login and "item.retention.reapply" not in before_login, before_login
    assert [(e.action, e.outcome, e.actor) for e in after] == [("permission.denied", "refused", "clerk")] * 2, after
    item = item_row(ctx, a["archival_code"])
    assert item.expiry_date == date(2055, 1, 1) and item.current_retention is None
    assert locks(ctx, a["archival_code"])[0] == datetime(2055, 1, 1, tzinfo=UTC)
    assert preview["counts"]["lengthen"] == 1


def test_versions_api_and_cli(ctx: Context, client: TestClient, core: dict[str, str], archivist: dict[str, str],
                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_holds: set[int]) -> None:
    """Given an item filed under the default schedule and ARCHIVE_SCHEDULE pointing at a new version, when `archive
    schedule versions` runs and the API lists versions, then both are shown with the default current; a dry run
    previews without changing the item, --apply without a reason exits 2 missing_reason, and with one the item
    takes Y under the new version, audited by a cli: actor."""
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", ctx.settings.catalogue_url)
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(ctx.settings.data_dir))
    a = file_tq(client, core, "YW2024010500001")
    new = tmp_path / "2026.2.toml"
    new.write_text(variant(ctx, tmp_path, "2026.2-cli", (TQ01, TQ01.replace("D30", "Y"))).source_text,
                   encoding="utf-8")
    monkeypatch.setenv("ARCHIVE_SCHEDULE", str(new))
    runner = CliRunner()
    r = runner.invoke(app, ["schedule", "versions"])
    assert r.exit_code == 0, r.output
    assert "2026.1-default" in r.output and "2026.2-cli" in r.output
    listed = client.get("/api/v1/schedule/versions", headers=archivist).json()
    assert [(v["ref"], v["current"]) for v in listed] == [("2026.1-default", True), ("2026.2-cli", False)]
    r = runner.invoke(app, ["schedule", "reapply", "--dry-run"])
    assert r.exit_code == 0 and "lengthen 1" in r.output and "预览" in r.output
    assert item_row(ctx, a["archival_code"]).expiry_date == date(2055, 1, 1)
    r = runner.invoke(app, ["schedule", "reapply", "--apply"])
    assert r.exit_code == 2 and "missing_reason" in r.output
    r = runner.invoke(app, ["schedule", "reapply", "--apply", "--reason", "启用2026.2版保管期限表"])
    assert r.exit_code == 0, r.output
    item = item_row(ctx, a["archival_code"])
    assert item.effective_retention == "Y" and item.schedule_version == "2026.2-cli"
    with ctx.catalogue.sessions() as s:
        summary = s.scalar(select(AuditEvent).where(AuditEvent.action == "schedule.reapply"))
    assert summary is not None and summary.actor.startswith("cli:")


def test_a_real_hold_refuses_shortening(ctx: Context, client: TestClient, core: dict[str, str],
                                        archivist: dict[str, str], tmp_path: Path) -> None:
    """Given an item held (冻结) through the holds API, with no stand-in for the holds module, when a shortening
    schedule is applied, then the item is refused as held and keeps its expiry."""
    a = file_tq(client, core, "YW2024010500001")
    r = client.post("/api/v1/holds", json={"reason": "诉讼保全", "authority": "某某人民法院",
                                           "archival_codes": [a["archival_code"]]}, headers=archivist)
    assert r.status_code == 201, r.text
    ctx.schedule = variant(ctx, tmp_path, "2026.2-short", (TQ01, TQ01.replace("D30", "D10")))
    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "新表"}, headers=archivist)
    assert r.status_code == 200 and r.json()["counts"] == {"items": 1, "refused_held": 1}
    assert item_row(ctx, a["archival_code"]).expiry_date == date(2055, 1, 1)


def test_reapply_skips_appraised_and_listed_items(ctx: Context, client: TestClient, core: dict[str, str],
                                                  archivist: dict[str, str], tmp_path: Path) -> None:
    """Given one item kept 永久 by appraisal, one on a destruction list and one untouched, when a schedule making
    TQ01 定期10年 is re-applied, then only the untouched item changes; the other two are listed as skipped with
    the reason and keep their period and expiry."""
    kept, listed, free = (file_tq(client, core, f"YW202401050000{n}")["archival_code"] for n in (1, 2, 3))
    with ctx.catalogue.session() as s:
        s.execute(update(ArchiveItem).where(ArchiveItem.archival_code.in_([kept, listed]))
                  .values(expiry_date=date(2020, 1, 1)))
    for code, decision in ((kept, {"decision": "keep", "retention_code": "Y"}), (listed, {"decision": "destroy"})):
        r = client.post("/api/v1/appraisal/decisions", json={"archival_codes": [code], "reason": "鉴定", **decision},
                        headers=archivist)
        assert r.status_code == 201, r.text
    r = client.post("/api/v1/destruction-lists", json={"archival_codes": [listed]}, headers=archivist)
    assert r.status_code == 201, r.text
    ctx.schedule = variant(ctx, tmp_path, "2026.2-short", (TQ01, TQ01.replace("D30", "D10")))
    preview = client.post("/api/v1/schedule/reapply", json={}, headers=archivist).json()
    assert preview["counts"] == {"items": 3, "shorten": 1, "refused_appraised": 1, "refused_on_destruction_list": 1}
    by_code = {c["archival_code"]: c for c in preview["items"]}
    assert by_code[kept]["refused"] == "appraised" and by_code[kept]["refused_message"] == "已经鉴定确定保管期限"
    assert by_code[listed]["refused"] == "on_destruction_list" and "销毁清册" in by_code[listed]["refused_message"]
    r = client.post("/api/v1/schedule/reapply", json={"apply": True, "reason": "新表"}, headers=archivist)
    assert r.status_code == 200, r.text
    assert (item_row(ctx, kept).effective_retention, item_row(ctx, kept).expiry_date) == ("Y", None)
    assert (item_row(ctx, listed).effective_retention, item_row(ctx, listed).expiry_date) == \
        ("D30", date(2020, 1, 1))
    assert (item_row(ctx, free).effective_retention, item_row(ctx, free).expiry_date) == ("D10", date(2035, 1, 1))


def test_a_schedules_digest_is_computed_once_per_schedule_object(ctx: Context, monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    """Given a loaded schedule, When its digest is asked for again (every filing asks), Then it is not dumped again;
    a schedule with other content (another object) gets its own digest, and a copy of the same content the same."""
    dumps: list[int] = []
    plain = Schedule.model_dump

    def counted(self: Schedule, *args: Any, **kwargs: Any) -> Any:
        dumps.append(id(self))
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(Schedule, "model_dump", counted)
    first = schedules.digest_of(ctx.schedule)
    assert schedules.digest_of(ctx.schedule) == first and len(dumps) == 1
    other = ctx.schedule.model_copy(update={"basis": "另一依据"})
    same = ctx.schedule.model_copy()
    assert schedules.digest_of(other) != first and schedules.digest_of(same) == first
    assert len(dumps) == 3
