"""鉴定与销毁 pages: the queue with selection across pages, decisions, 销毁清册 built, approved by two people or
rejected, executed as a job, its signed PDF."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import func, select

from archive import jobs
from archive.catalogue.models import AppraisalDecision, ArchiveItem, DestructionList, Job
from archive.context import Context
from archive.errors import InvalidInput, PermissionDenied
from archive.permissions import Principal, permissions_of_roles
from archive.retention import appraisal, destruction
from tests.retention.test_holds import events, expire_locks, keys_of, make_item
from tests.web.html import UiClient, soup, text


def decisions(ctx: Context) -> list[tuple[str, str]]:
    with ctx.catalogue.session() as s:
        return [(d.decision, d.status) for d in s.scalars(select(AppraisalDecision).order_by(AppraisalDecision.id))]


def destroy_form(**over: object) -> dict[str, object]:
    return {"scope": "checked", "decision": "destroy", "reason": "保管期满，经鉴定无继续保存价值", **over}


def test_the_queue_lists_expired_items_masked_and_paged(ctx: Context, ui: Callable[..., UiClient]) -> None:
    codes = [make_item(ctx, expiry=date(2019, 1, n + 1)) for n in range(3)]
    make_item(ctx, expiry=date(2099, 1, 1))
    r = ui("arch", ["archivist"], None).get("/ui/appraisal")
    assert r.status_code == 200
    page = soup(r)
    assert [c["value"] for c in page.select("input[name=code]")] == codes
    assert "共 3 件" in text(r) and "张三" in text(r)
    # filtered: nothing of 2010
    r = ui("arch", ["archivist"], None).get("/ui/appraisal?year=2010")
    assert "共 0 件" in text(r) and "没有待鉴定的档案" in text(r)


def test_bad_filters_are_a_chinese_422(ctx: Context, ui: Callable[..., UiClient]) -> None:
    person = ui("arch", ["archivist"], None)
    for query, code in (("year=abc", "invalid_filter_value"), ("category=QQ", "unknown_category"),
                        ("expired_before=2020-13-01", "invalid_date"), ("business_type=NOPE", "unknown_business_type")):
        r = person.get(f"/ui/appraisal?{query}")
        assert r.status_code == 422 and code in text(r), query
    assert person.get("/ui/appraisal?page=0").status_code == 422


def test_the_queue_needs_retention_manage_and_an_approver_goes_to_the_lists(ctx: Context,
                                                                            ui: Callable[..., UiClient]) -> None:
    r = ui("clerk01", ["clerk"]).get("/ui/appraisal")
    assert r.status_code == 403 and "permission_denied" in text(r)
    assert any(e.target_id == "GET /ui/appraisal" for e in events(ctx, "permission.denied"))
    r = ui("head", ["archive_head"], None).get("/ui/appraisal", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/appraisal/lists"
    r = ui("head", ["archive_head"], None).post("/ui/appraisal/decisions", data=destroy_form(code=["x"]))
    assert r.status_code == 403 and decisions(ctx) == []


def test_ticked_rows_are_proposed_for_destruction(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a, b = make_item(ctx), make_item(ctx)
    person = ui("arch", ["archivist"], None)
    r = person.post("/ui/appraisal/decisions", htmx=False, data=destroy_form(code=[a]), follow_redirects=False)
    assert r.status_code == 303 and "decided=1" in r.headers["location"]
    assert decisions(ctx) == [("destroy", "proposed")]
    r = person.get(r.headers["location"])
    assert "已记录 1 件拟销毁" in text(r) and [c["value"] for c in soup(r).select("input[name=code]")] == [b]
    # a second click: already decided, nothing more recorded
    r = person.post("/ui/appraisal/decisions", htmx=False, data=destroy_form(code=[a]))
    assert r.status_code == 409 and "already_decided" in text(r) and len(decisions(ctx)) == 1


def test_keep_with_a_new_period(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a = make_item(ctx, trigger_date=date(2009, 6, 1))
    person = ui("arch", ["archivist"], None)
    r = person.post("/ui/appraisal/decisions", htmx=False, follow_redirects=False,
                    data=destroy_form(code=[a], decision="keep", retention_code="D30", reason="涉及诉讼"))
    assert r.status_code == 303 and "kept=1" in r.headers["location"]
    assert decisions(ctx) == [("keep", "applied")]
    b = make_item(ctx, trigger_date=date(2009, 6, 1))
    r = person.post("/ui/appraisal/decisions", htmx=False, data=destroy_form(code=[b], decision="keep", reason="x"))
    assert r.status_code == 422 and "invalid_retention_code" in text(r)


def test_bad_decisions_change_nothing(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a = make_item(ctx)
    person = ui("arch", ["archivist"], None)
    cases = [(destroy_form(code=[a], reason="  "), 422, "appraisal_reason_required"),
             (destroy_form(), 422, "appraisal_selection_empty"),
             (destroy_form(code=["J001-NOPE"]), 404, "unknown_archival_code"),
             (destroy_form(code=[a], decision="burn"), 422, "invalid_decision"),
             (destroy_form(code=[a], reason="长" * 501), 422, "invalid_request"),
             (destroy_form(scope="all", year="1999"), 422, "appraisal_selection_empty")]
    for form, status, code in cases:
        r = person.post("/ui/appraisal/decisions", htmx=False, data=form)
        assert r.status_code == status and code in r.text, (form, r.text[:300])
    assert decisions(ctx) == []


def test_all_matching_across_pages_less_the_rows_left_out(ctx: Context, ui: Callable[..., UiClient]) -> None:
    """60 items of 2009 (two pages) and 2 of 2010: "all matching" year 2009, one row of the page unticked and one
    档号 typed as excluded, decides 58, found on the server."""
    codes = [make_item(ctx, year=2009) for _ in range(60)]
    other = [make_item(ctx, year=2010) for _ in range(2)]
    person = ui("arch", ["archivist"], None)
    page = soup(person.get("/ui/appraisal?year=2009"))
    shown = [c["value"] for c in page.select("input[name=shown]")]
    assert len(shown) == 50 and "共 60 件" in page.get_text() and page.select_one("a[rel=next]")
    r = person.post("/ui/appraisal/decisions", htmx=False, follow_redirects=False, data=destroy_form(
        scope="all", year="2009", shown=shown, code=shown[1:], exclude=codes[55]))
    assert r.status_code == 303, r.text
    with ctx.catalogue.session() as s:
        decided = set(s.scalars(select(ArchiveItem.archival_code).join(
            AppraisalDecision, AppraisalDecision.item_id == ArchiveItem.id)))
    assert decided == set(codes) - {shown[0], codes[55]} and not decided & set(other)
    # nothing ticked: "all matching" means all of them
    r = person.post("/ui/appraisal/decisions", htmx=False, follow_redirects=False, data=destroy_form(
        scope="all", year="2010", shown=other))
    assert r.status_code == 303 and "decided=2" in r.headers["location"]


def test_matching_codes_is_refused_past_the_maximum(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    """The domain's filter-based selection: the queue's order, excluded 档号 left out, refused past the maximum."""
    codes = [make_item(ctx, expiry=date(2019, 1, n + 1)) for n in range(3)]
    me = Principal("user", 1, "arch", permissions_of_roles(["archivist"]), ("archivist",))
    with ctx.catalogue.session() as s:
        assert appraisal.matching_codes(ctx, s, me, appraisal.QueueFilter()) == codes
        assert appraisal.matching_codes(ctx, s, me, appraisal.QueueFilter(), [codes[1]]) == [codes[0], codes[2]]
        monkeypatch.setattr(appraisal, "MAX_DECISIONS", 2)
        with pytest.raises(InvalidInput) as refused:
            appraisal.matching_codes(ctx, s, me, appraisal.QueueFilter())
        assert refused.value.code == "appraisal_selection_too_large"
    clerk = Principal("user", 2, "c", permissions_of_roles(["clerk"]), ("clerk",))
    with ctx.catalogue.session() as s, pytest.raises(PermissionDenied):
        appraisal.matching_codes(ctx, s, clerk, appraisal.QueueFilter())


def test_a_large_decision_runs_as_one_job(ctx: Context, ui: Callable[..., UiClient],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from archive.web.routes import appraisal as view

    monkeypatch.setattr(view, "JOB_OVER", 2)
    for _ in range(3):
        make_item(ctx)
    person = ui("arch", ["archivist"], None)
    r = person.post("/ui/appraisal/decisions", htmx=False, follow_redirects=False, data=destroy_form(scope="all"))
    assert r.status_code == 303
    with ctx.catalogue.session() as s:
        job_id = s.scalar(select(Job.id).where(Job.kind == "appraisal.decide"))
    assert job_id is not None
    job = jobs.wait(ctx, job_id)
    assert job.status == "done", job.error
    assert decisions(ctx) == [("destroy", "proposed")] * 3
    r = person.get("/ui/appraisal")
    assert "已记录 3 件拟销毁的鉴定意见" in text(r)


def _proposed(ctx: Context, person: UiClient, *codes: str) -> int:
    r = person.post("/ui/appraisal/decisions", htmx=False, data=destroy_form(code=list(codes)),
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    r = person.post("/ui/appraisal/lists", htmx=False, data={"title": ""}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_list_built_approved_by_two_executed_and_pdf_shown(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a, b = make_item(ctx), make_item(ctx)
    arch, head = ui("arch", ["archivist"], None), ui("head", ["archive_head"], None)
    list_id = _proposed(ctx, arch, a, b)
    r = arch.get(f"/ui/appraisal/lists/{list_id}")
    assert r.status_code == 200 and "待审批" in text(r) and a in text(r) and b in text(r)
    assert head.get("/ui/appraisal/lists").status_code == 200
    # the head sees names masked
    assert "张*" in text(head.get(f"/ui/appraisal/lists/{list_id}"))
    r = arch.post(f"/ui/appraisal/lists/{list_id}/approve", htmx=False, data={"opinion": "同意"},
                  follow_redirects=False)
    assert r.status_code == 303
    r = arch.post(f"/ui/appraisal/lists/{list_id}/approve", htmx=False, data={"opinion": "再同意"})
    assert r.status_code == 409 and "duplicate_approver" in text(r)
    r = arch.post(f"/ui/appraisal/lists/{list_id}/execute", htmx=False)
    assert r.status_code == 409 and "destruction_not_approved" in text(r)
    assert arch.get(f"/ui/appraisal/lists/{list_id}/pdf").status_code == 409
    r = head.post(f"/ui/appraisal/lists/{list_id}/approve", htmx=False, data={"opinion": "同意销毁"},
                  follow_redirects=False)
    assert r.status_code == 303
    r = head.post(f"/ui/appraisal/lists/{list_id}/execute", htmx=False)
    assert r.status_code == 403  # the head approves; the archivist executes
    for code in (a, b):
        expire_locks(ctx, keys_of(ctx, code))
    r = arch.post(f"/ui/appraisal/lists/{list_id}/execute", htmx=False, follow_redirects=False)
    assert r.status_code == 303
    with ctx.catalogue.session() as s:
        job_id = s.scalar(select(Job.id).where(Job.key == f"destruction:execute:{list_id}"))
    assert job_id is not None and jobs.wait(ctx, job_id).status == "done"
    r = arch.get(f"/ui/appraisal/lists/{list_id}")
    assert "已执行" in text(r) and "已销毁 2 件" in text(r) and text(r).count("已销毁") >= 3
    pdf = arch.get(f"/ui/appraisal/lists/{list_id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and "inline" in pdf.headers["content-disposition"]
    # a second click on execute does not start a second job
    arch.post(f"/ui/appraisal/lists/{list_id}/execute", htmx=False)
    with ctx.catalogue.session() as s:
        assert (s.scalar(select(func.count()).select_from(Job).where(Job.kind == "destruction.execute")) or 0) <= 2


def test_a_rejection_needs_a_reason_and_sends_items_back(ctx: Context, ui: Callable[..., UiClient]) -> None:
    a = make_item(ctx)
    arch, head = ui("arch", ["archivist"], None), ui("head", ["archive_head"], None)
    list_id = _proposed(ctx, arch, a)
    r = head.post(f"/ui/appraisal/lists/{list_id}/reject", htmx=False, data={"reason": " "})
    assert r.status_code == 422 and "rejection_reason_required" in text(r)
    r = ui("clerk01", ["clerk"]).post(f"/ui/appraisal/lists/{list_id}/reject", htmx=False, data={"reason": "不同意"})
    assert r.status_code == 403
    r = head.post(f"/ui/appraisal/lists/{list_id}/reject", htmx=False, data={"reason": "涉及未结诉讼，需重新鉴定"},
                  follow_redirects=False)
    assert r.status_code == 303
    r = head.get(f"/ui/appraisal/lists/{list_id}")
    assert "已驳回" in text(r) and "涉及未结诉讼" in text(r)
    r = head.post(f"/ui/appraisal/lists/{list_id}/approve", htmx=False, data={})
    assert r.status_code == 409 and "list_not_pending" in text(r)
    assert a in text(arch.get("/ui/appraisal"))  # back in the queue


def test_unknown_lists_and_bad_input(ctx: Context, ui: Callable[..., UiClient]) -> None:
    arch = ui("arch", ["archivist"], None)
    assert arch.get("/ui/appraisal/lists/999").status_code == 404
    assert arch.get("/ui/appraisal/lists/abc").status_code == 422
    assert arch.get("/ui/appraisal/lists?status=nope").status_code == 422
    r = arch.post("/ui/appraisal/lists", htmx=False, data={"title": "x"})
    assert r.status_code == 409 and "nothing_to_list" in text(r)
    r = arch.post("/ui/appraisal/lists", htmx=False, data={"codes": "J001-NOPE"})
    assert r.status_code == 409 and "no_destroy_decision" in text(r)
    with ctx.catalogue.session() as s:
        assert s.scalar(select(func.count()).select_from(DestructionList)) == 0
    assert arch.post("/ui/appraisal/lists/999/approve", htmx=False, data={}).status_code == 404


def test_a_second_click_on_execute_answers_the_running_job(ctx: Context, ui: Callable[..., UiClient],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    arch, head = ui("arch", ["archivist"], None), ui("head", ["archive_head"], None)
    list_id = _proposed(ctx, arch, make_item(ctx))
    for person in (arch, head):
        assert person.post(f"/ui/appraisal/lists/{list_id}/approve", htmx=False, data={}).status_code in (200, 303)
    release = threading.Event()

    def slow(*args: object, **kw: object) -> destruction.ExecutionReport:
        release.wait(10)
        return destruction.ExecutionReport("XH")

    monkeypatch.setattr(destruction, "execute", slow)
    for _ in range(2):
        assert arch.post(f"/ui/appraisal/lists/{list_id}/execute", htmx=False,
                         follow_redirects=False).status_code == 303
    page = soup(arch.get(f"/ui/appraisal/lists/{list_id}"))
    assert page.select_one("section.job[hx-get]") is not None  # the page polls the running job
    assert page.find("button", string="执行销毁") is None
    with ctx.catalogue.session() as s:
        job_ids = list(s.scalars(select(Job.id).where(Job.kind == "destruction.execute")))
    release.set()
    assert len(job_ids) == 1 and jobs.wait(ctx, job_ids[0]).status == "done"
