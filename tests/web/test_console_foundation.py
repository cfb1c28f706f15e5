"""The console's shared parts: navigation by role, each role's first page, and the background-job page."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from archive import jobs
from archive.context import Context
from archive.permissions import Permission, Principal, permissions_of_roles
from archive.web.render import nav_for
from tests.web.html import UiClient, soup, text


@pytest.mark.parametrize(("role", "first"), [("archivist", "/ui/dashboard"), ("archive_head", "/ui/dashboard"),
                                             ("auditor", "/ui/dashboard"), ("admin", "/ui/admin"),
                                             ("security_officer", "/ui/admin")])
def test_people_without_a_counter_desk_land_on_their_first_page(ui: Callable[..., UiClient], role: str,
                                                               first: str) -> None:
    r = ui(f"u-{role}", [role], None).get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == first


def test_the_header_shows_what_the_role_may_open(ui: Callable[..., UiClient]) -> None:
    clerk = soup(ui("clerk01").get("/ui/"))
    labels = [a.get_text() for a in clerk.select("header nav a")]
    assert labels[:3] == ["工作台", "受理", "扫描室"] and "审计" not in labels and "鉴定销毁" not in labels
    audit = Principal("user", 1, "a", permissions_of_roles(["auditor"]), ("auditor",))
    assert [label for label, _ in nav_for(audit)] == ["统计", "四性检测", "数据质量", "审计"]
    admin = Principal("user", 1, "a", permissions_of_roles(["admin"]), ("admin",))
    assert [label for label, _ in nav_for(admin)] == ["用户与系统"]


def test_a_running_job_polls_and_a_finished_one_links_its_result(ctx: Context, ui: Callable[..., UiClient]) -> None:
    person = ui("arch01", ["archivist"], None)
    me = Principal("user", 1, "arch01", permissions_of_roles(["archivist"]), ("archivist",))
    release = threading.Event()

    def work(progress: jobs.Progress) -> jobs.Outcome:
        progress(2, 5)
        release.wait(10)
        return jobs.Outcome({"summary": "已完成 5 件"}, "/ui/transfers")

    job_id, _ = jobs.start(ctx, me, kind="k", key="k:1", title="导出移交包", permission=Permission.TRANSFER_MANAGE,
                           work=work, total=5)
    r = person.get(f"/ui/jobs/{job_id}", headers={"HX-Request": "true"})
    part = soup(r).find("section", id=f"job-{job_id}")
    assert r.status_code == 200 and part is not None and part["hx-get"] == f"/ui/jobs/{job_id}"
    assert "进行中" in text(r)
    release.set()
    jobs.wait(ctx, job_id)
    r = person.get(f"/ui/jobs/{job_id}")
    page = soup(r)
    assert "已完成 5 件" in text(r) and "已处理 5 / 5" in text(r)
    assert page.find("section", id=f"job-{job_id}").get("hx-get") is None  # no more polling
    assert page.find("a", string="查看结果")["href"] == "/ui/transfers"
    assert f"/ui/jobs/{job_id}" in person.get("/ui/jobs").text


def test_another_persons_job_is_not_found(ctx: Context, ui: Callable[..., UiClient]) -> None:
    me = Principal("user", 1, "arch01", permissions_of_roles(["archivist"]), ("archivist",))
    job_id, _ = jobs.start(ctx, me, kind="k", key="k:2", title="导出移交包", permission=Permission.TRANSFER_MANAGE,
                           work=lambda p: jobs.Outcome())
    jobs.wait(ctx, job_id)
    r = ui("clerk01").get(f"/ui/jobs/{job_id}")
    assert r.status_code == 404 and "job_not_found" in text(r)
    assert ui("clerk01").get("/ui/jobs/abc").status_code == 422
