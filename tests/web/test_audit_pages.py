"""The auditor's pages: the audit log (keyset pages, filters by who, action, target and day), the chain's
verification as a background job with its last result, and the access register (利用登记)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from archive import audit, jobs
from archive.audit import Actor
from archive.catalogue.models import AuditEvent, Job
from archive.context import Context
from archive.web.routes.audit import PAGE_SIZE
from tests.test_audit import _disable_guard
from tests.web.html import UiClient, soup, text


def _events(ctx: Context, n: int, action: str = "hold.set", actor: str = "arch01") -> None:
    with ctx.catalogue.session() as s:
        for i in range(n):
            audit.record(s, Actor("user", actor), action, target_type="item", target_id=f"J001-{i:04d}",
                         detail={"reason": f"理由 {i}"})


def test_the_log_pages_by_seq_and_filters(ctx: Context, ui: Callable[..., UiClient]) -> None:
    _events(ctx, PAGE_SIZE + 5)
    _events(ctx, 2, action="user.create", actor="admin01")
    auditor = ui("audit01", ["auditor"], None)
    first = auditor.get("/ui/audit")
    assert first.status_code == 200 and "冻结档案" in text(first) and "创建用户" in text(first)
    rows = soup(first).select("table.audit-events tbody tr")
    assert len(rows) == PAGE_SIZE
    more = soup(first).find("a", rel="next")["href"]
    second = auditor.get("/ui/audit" + more)
    seqs = [int(r.find("td").get_text()) for r in soup(second).select("table.audit-events tbody tr")]
    assert seqs and max(seqs) < int(rows[-1].find("td").get_text())  # older than the first page's last
    by_action = auditor.get("/ui/audit?action=user.create")
    assert len(soup(by_action).select("table.audit-events tbody tr")) == 3  # with audit01's own account
    by_actor = auditor.get("/ui/audit?actor=admin01&action=user.create")
    assert len(soup(by_actor).select("table.audit-events tbody tr")) == 2
    by_target = auditor.get("/ui/audit?target=J001-0003")
    assert len(soup(by_target).select("table.audit-events tbody tr")) == 1
    assert "没有符合条件" in text(auditor.get("/ui/audit?actor=nobody"))


def test_a_day_filter_is_a_seq_range(ctx: Context, ui: Callable[..., UiClient],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with ctx.catalogue.reading() as s:
        first = (s.scalar(select(func.max(AuditEvent.seq))) or 0) + 1
    monkeypatch.setattr(audit, "utcnow", lambda: datetime.now(UTC) - timedelta(days=2))
    _events(ctx, 2)  # two days ago (the log is in time order)
    monkeypatch.undo()
    _events(ctx, 1)
    auditor = ui("audit01", ["auditor"], None)
    today = datetime.now(ctx.zone).date().isoformat()
    seqs = [int(r.find("td").get_text()) for r in
            soup(auditor.get(f"/ui/audit?since={today}")).select("table.audit-events tbody tr")]
    assert seqs and min(seqs) == first + 2
    earlier = (datetime.now(ctx.zone) - timedelta(days=2)).date().isoformat()
    old = [int(r.find("td").get_text()) for r in
           soup(auditor.get(f"/ui/audit?until={earlier}")).select("table.audit-events tbody tr")]
    assert old[:2] == [first + 1, first] and all(seq <= first + 1 for seq in old)


def test_bad_filters_are_clear_refusals(ui: Callable[..., UiClient]) -> None:
    auditor = ui("audit01", ["auditor"], None)
    r = auditor.get("/ui/audit?since=2026-13-45")
    assert r.status_code == 422 and "格式不对，应为 YYYY-MM-DD" in text(r)
    r = auditor.get("/ui/audit?action=no.such")
    assert r.status_code == 422 and "审计事件类型 no.such 不存在" in text(r)
    assert auditor.get("/ui/audit?before=-1").status_code == 422
    assert auditor.get("/ui/audit?actor=" + "x" * 101).status_code == 422
    assert auditor.get("/ui/audit/access?page=0").status_code == 422


def test_the_chain_is_verified_as_a_job_and_its_result_shown(ctx: Context, ui: Callable[..., UiClient]) -> None:
    _events(ctx, 3)
    auditor = ui("audit01", ["auditor"], None)
    assert "尚未核验过" in text(auditor.get("/ui/audit"))
    r = auditor.post("/ui/audit/verify", htmx=False, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/audit"
    with ctx.catalogue.reading() as s:
        job_id = s.scalar(select(Job.id).where(Job.key == "audit.verify"))
    assert job_id is not None
    jobs.wait(ctx, job_id)
    page = auditor.get("/ui/audit")
    assert "审计日志完整" in text(page) and "链完整" in text(page)
    _disable_guard(ctx)
    with ctx.catalogue.session() as s:  # someone with database access edits an event behind the system's back
        s.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="someone"))
    auditor.post("/ui/audit/verify", htmx=False)
    with ctx.catalogue.reading() as s:
        job_id = s.scalar(select(Job.id).where(Job.key == "audit.verify").order_by(Job.id.desc()))
    jobs.wait(ctx, job_id)
    page = auditor.get("/ui/audit")
    assert "链已断开" in text(page) and "事件 2 的内容与其摘要不符" in text(page)


def test_the_access_register(ctx: Context, ui: Callable[..., UiClient]) -> None:
    with ctx.catalogue.session() as s:
        for who, code in (("clerk01", "J001-YW·2026-D30-TQ-000001"), ("clerk02", "J001-YW·2026-D30-TQ-000002")):
            audit.record(s, Actor("user", who), "access.read", target_type="item", target_id=code,
                         detail={"what": "page", "purpose": "核对贷款材料", "serial": "YW2026120300001"})
    auditor = ui("audit01", ["auditor"], None)
    r = auditor.get("/ui/audit/access")
    assert r.status_code == 200 and "核对贷款材料" in text(r) and "查看影像" in text(r) and "clerk02" in text(r)
    r = auditor.get("/ui/audit/access?actor=clerk01")
    assert "clerk01" in text(r) and "clerk02" not in text(r)
    assert "没有符合条件" in text(auditor.get("/ui/audit/access?target=J001-NONE"))


def test_only_the_auditor_reads_the_log(ctx: Context, ui: Callable[..., UiClient]) -> None:
    for who, role in (("admin01", "admin"), ("clerk01", "clerk"), ("arch01", "archivist")):
        person = ui(who, [role], None)
        for path in ("/ui/audit", "/ui/audit/access"):
            assert person.get(path).status_code == 403
        assert person.post("/ui/audit/verify").status_code == 403
    with ctx.catalogue.reading() as s:
        denied = set(s.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "permission.denied",
                                                                  AuditEvent.actor == "admin01")))
    assert {"GET /ui/audit", "GET /ui/audit/access", "POST /ui/audit/verify"} <= denied
