"""冻结, 保管期限 and 待起算 pages: holds set by 档号, 业务流水号, query or a saved search and lifted with a reason; the
schedule's versions, the reapply dry run (old → new) and its audited apply as a job; items waiting for a trigger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from sqlalchemy import func, select

from archive import jobs
from archive.catalogue.models import ArchiveItem, Hold, Job, SavedSearch
from archive.context import Context
from tests.retention.test_holds import HOLD, events, make_item
from tests.retention.test_schedules import TQ01, variant
from tests.web.html import UiClient, soup, text


def holds_count(ctx: Context) -> int:
    with ctx.catalogue.session() as s:
        return s.scalar(select(func.count()).select_from(Hold)) or 0


def hold_form(**over: str) -> dict[str, str]:
    return {"reason": HOLD["reason"], "authority": HOLD["authority"], "document_no": HOLD["document_no"], **over}


def test_a_hold_by_archival_codes_is_set_shown_and_lifted(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a, b = make_item(ctx), make_item(ctx)
    head = ui("head", ["archive_head"], None)
    assert "设置冻结" in text(head.get("/ui/holds"))
    r = head.post("/ui/holds", htmx=False, data=hold_form(scope="codes", keys=f"{a}\n{b}\n"), follow_redirects=False)
    assert r.status_code == 303, r.text
    page = head.get(r.headers["location"])
    assert "冻结中" in text(page) and a in text(page) and b in text(page) and "2 件" in text(page)
    hold_id = int(r.headers["location"].rsplit("/", 1)[1])
    assert f"/ui/holds/{hold_id}" in head.get("/ui/holds?status=active").text
    r = head.post(f"/ui/holds/{hold_id}/lift", htmx=False, data={"reason": " "})
    assert r.status_code == 422 and "reason_required" in text(r)
    r = head.post(f"/ui/holds/{hold_id}/lift", htmx=False, data={"reason": "保全已解除"}, follow_redirects=False)
    assert r.status_code == 303
    assert "已解除" in text(head.get(f"/ui/holds/{hold_id}"))
    r = head.post(f"/ui/holds/{hold_id}/lift", htmx=False, data={"reason": "再解除"})
    assert r.status_code == 409 and "hold_not_active" in text(r)
    assert [e.outcome for e in events(ctx, "hold.lift")] == ["refused", "success", "refused"]


def test_holds_by_serial_query_and_saved_search(ctx: Context, ui: Callable[..., UiClient]) -> None:
    make_item(ctx, serial="YW2009010500001", year=2009)
    make_item(ctx, year=2010)
    arch = ui("arch", ["archivist"], None)
    r = arch.post("/ui/holds", htmx=False, data=hold_form(scope="serials", keys="YW2009010500001"),
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    r = arch.post("/ui/holds", htmx=False, data=hold_form(scope="query", year="2010"), follow_redirects=False)
    assert r.status_code == 303, r.text
    with ctx.catalogue.session() as s:
        s.add(SavedSearch(owner="arch", name="2009年提取",
                          query={"params": [["q", "张三"], ["year", "2009"], ["category", "TQ"]]}))
        s.add(SavedSearch(owner="arch", name="两个年度", query={"params": [["year", "2009"], ["year", "2010"]]}))
        s.add(SavedSearch(owner="other", name="别人的", query={"params": [["year", "2009"]]}))
    page = soup(arch.get("/ui/holds"))
    options = {o.get_text(): o["value"] for o in page.select("select[name=saved_search] option") if o["value"]}
    assert sorted(options) == ["2009年提取", "两个年度"]  # only her own
    r = arch.post("/ui/holds", htmx=False, data=hold_form(scope="saved", saved_search=options["2009年提取"]),
                  follow_redirects=False)
    assert r.status_code == 303, r.text
    with ctx.catalogue.session() as s:
        holds = list(s.scalars(select(Hold).order_by(Hold.id)))
        assert [(h.scope, h.item_count) for h in holds] == [("cases", 1), ("query", 1), ("query", 1)]
        assert holds[2].criteria["query"] == {"year": 2009, "category": "TQ"}
        other = s.scalar(select(SavedSearch.id).where(SavedSearch.owner == "other"))
    r = arch.post("/ui/holds", htmx=False, data=hold_form(scope="saved", saved_search=str(other)))
    assert r.status_code == 404 and "saved_search_not_found" in text(r)
    r = arch.post("/ui/holds", htmx=False, data=hold_form(scope="saved", saved_search=options["两个年度"]))
    assert r.status_code == 422 and "saved_search_not_holdable" in text(r)


def test_bad_holds_change_nothing(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a = make_item(ctx)
    arch = ui("arch", ["archivist"], None)
    cases = [(hold_form(scope="codes", keys="J001-NOPE"), 404, "unknown_archival_code"),
             (hold_form(scope="codes", keys=""), 422, "hold_scope_required"),
             (hold_form(scope="codes", keys=a, reason=""), 422, "hold_reason_required"),
             (hold_form(scope="query"), 422, "empty_hold_query"),
             (hold_form(scope="query", year="abc"), 422, "invalid_filter_value"),
             (hold_form(scope="query", filed_from="2026-02-30"), 422, "invalid_date"),
             (hold_form(scope="query", year="1999"), 409, "hold_matches_nothing"),
             (hold_form(scope="saved"), 422, "hold_scope_required"),
             (hold_form(scope="nope", keys=a), 422, "hold_scope_required"),
             (hold_form(scope="codes", keys=a, reason="长" * 501), 422, "invalid_request")]
    for form, status, code in cases:
        r = arch.post("/ui/holds", htmx=False, data=form)
        assert r.status_code == status and code in r.text, (form, r.status_code, text(r)[:200])
    assert holds_count(ctx) == 0
    assert "诉讼保全" in soup(arch.post("/ui/holds", htmx=False, data=hold_form(scope="codes", keys="x"))).find(
        "textarea", id="reason").get_text()  # what was typed is kept
    assert arch.get("/ui/holds/999").status_code == 404
    assert arch.get("/ui/holds/abc").status_code == 422
    assert arch.get("/ui/holds?status=nope").status_code == 422


def test_holds_need_hold_manage(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a = make_item(ctx)
    clerk = ui("clerk01", ["clerk"])
    assert clerk.get("/ui/holds").status_code == 403
    r = clerk.post("/ui/holds", htmx=False, data=hold_form(scope="codes", keys=a))
    assert r.status_code == 403 and holds_count(ctx) == 0
    assert {e.target_id for e in events(ctx, "permission.denied")} >= {"GET /ui/holds", "POST /ui/holds"}


def test_schedule_versions_dry_run_and_apply_as_a_job(ctx: Context, ui: Callable[..., UiClient],
                                                      tmp_path: Path) -> None:
    a = make_item(ctx, expiry=date(2039, 1, 1))
    ctx.schedule = variant(ctx, tmp_path, "2026.2-test", (TQ01, TQ01.replace("D30", "Y")))
    arch = ui("arch", ["archivist"], None)
    r = arch.get("/ui/schedules")
    assert r.status_code == 200 and "2026.2-test" in text(r) and "现行" in text(r)
    r = arch.get("/ui/schedules/reapply?business_type=TQ01")
    assert r.status_code == 200
    row = soup(r).select_one("table.reapply tbody tr")
    assert row is not None and a in row.get_text() and "定期30年" in row.get_text() and "永久" in row.get_text()
    digest = soup(r).find("input", attrs={"name": "plan_digest"})["value"]
    with ctx.catalogue.session() as s:  # nothing changed by the preview
        assert s.scalar(select(ArchiveItem.current_retention).where(ArchiveItem.archival_code == a)) is None
    r = arch.post("/ui/schedules/reapply", htmx=False, data={"plan_digest": digest, "business_type": "TQ01",
                                                             "reason": " "})
    assert r.status_code == 422 and "missing_reason" in text(r)
    r = arch.post("/ui/schedules/reapply", htmx=False, data={"plan_digest": digest, "business_type": "TQ01",
                                                             "reason": "按2026年新版保管期限表调整"},
                  follow_redirects=False)
    assert r.status_code == 303
    with ctx.catalogue.session() as s:
        job_id = s.scalar(select(Job.id).where(Job.key == "schedule:reapply"))
    assert job_id is not None and jobs.wait(ctx, job_id).status == "done"
    with ctx.catalogue.session() as s:
        assert s.scalar(select(ArchiveItem.current_retention).where(ArchiveItem.archival_code == a)) == "Y"
    assert "已重新适用 1 件" in text(arch.get("/ui/schedules"))
    assert [e.outcome for e in events(ctx, "schedule.reapply")] == ["success"]


def test_a_stale_plan_fails_the_job_with_its_reason(ctx: Context, ui: Callable[..., UiClient],
                                                    tmp_path: Path) -> None:
    make_item(ctx, expiry=date(2039, 1, 1))
    ctx.schedule = variant(ctx, tmp_path, "2026.2-test", (TQ01, TQ01.replace("D30", "Y")))
    arch = ui("arch", ["archivist"], None)
    r = arch.post("/ui/schedules/reapply", htmx=False, data={"plan_digest": "0" * 64, "reason": "调整"},
                  follow_redirects=False)
    assert r.status_code == 303
    with ctx.catalogue.session() as s:
        job_id = s.scalar(select(Job.id).where(Job.key == "schedule:reapply"))
    assert job_id is not None and jobs.wait(ctx, job_id).status == "failed"
    assert "plan_changed" in text(arch.get("/ui/schedules"))
    assert arch.post("/ui/schedules/reapply", htmx=False, data={"reason": "调整"}).status_code == 422
    r = arch.get("/ui/schedules/reapply?business_type=NOPE")
    assert r.status_code == 422 and "unknown_business_type" in text(r)


def test_schedules_need_retention_manage(ctx: Context, ui: Callable[..., UiClient]) -> None:
    head = ui("head", ["archive_head"], None)
    for path in ("/ui/schedules", "/ui/schedules/reapply", "/ui/retention/pending"):
        assert head.get(path).status_code == 403, path
    r = head.post("/ui/schedules/reapply", htmx=False, data={"plan_digest": "0" * 64, "reason": "调整"})
    assert r.status_code == 403
    with ctx.catalogue.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_items_waiting_for_their_trigger(ctx: Context, ui: Callable[..., UiClient]) -> None:
    code = make_item(ctx, expiry=None, trigger_date=None, category="DK", business_type="DK01",
                     trigger="LOAN_SETTLED")
    make_item(ctx)
    arch = ui("arch", ["archivist"], None)
    r = arch.get("/ui/retention/pending")
    assert r.status_code == 200 and code in text(r) and "贷款" in text(r)
    r = arch.get("/ui/retention/pending?trigger=ACCOUNT_CLOSED")
    assert "没有待起算的档案" in text(r)
    r = arch.get("/ui/retention/pending?trigger=NOPE")
    assert r.status_code == 422 and "unknown_trigger" in text(r)
