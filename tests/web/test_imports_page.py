"""The console page of historical imports (/ui/imports): jobs with state counts and progress, reports to read
and approve; only for those who manage transfers and imports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from archive.audit import Actor
from archive.context import Context
from archive.imports import job
from archive.imports.approval import make_report
from archive.imports.profile import load_profile
from archive.imports.scan import scan
from tests.imports.delivery import PROFILE, make_delivery, row
from tests.web.html import UiClient, soup, text

ACTOR = Actor("system", "cli:tester")


def _report(ctx: Context, tmp_path: Path, name: str, rows: list[dict[str, str]]) -> int:
    (tmp_path / f"{name}.toml").write_text(PROFILE, encoding="utf-8")
    delivery = make_delivery(tmp_path / name, rows, pages=1)
    csv_ = delivery / "目录.csv"
    csv_.write_text(csv_.read_text(encoding="gb18030").replace(",3,", ",1,"), encoding="gb18030")
    prof, digest = load_profile(tmp_path / f"{name}.toml")
    scan(prof, digest, delivery, tmp_path / f"{name}.manifest.jsonl")
    return make_report(ctx, ACTOR, tmp_path / f"{name}.manifest.jsonl", workers=1).id


def test_the_imports_page_lists_jobs_and_approves_reports(ctx: Context, ui: Callable[..., UiClient],
                                                          tmp_path: Path) -> None:
    clerk = ui("clerk01", ["clerk"])
    assert clerk.get("/ui/imports").status_code == 403
    archivist = ui("arch01", ["archivist"], None)
    page = archivist.get("/ui/imports")
    assert page.status_code == 200 and "还没有导入任务" in text(page)
    assert any(a.get("href") == "/ui/imports" for a in soup(page).select("nav a"))

    first = _report(ctx, tmp_path, "one", [row(1), row(2, YS="4")])
    pdf = archivist.get(f"/ui/imports/reports/{first}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert archivist.get(f"/ui/imports/reports/{first}.xlsx").content.startswith(b"PK")
    assert archivist.get("/ui/imports/reports/999.pdf").status_code == 404
    assert archivist.client.post(f"/ui/imports/reports/{first}/approve").status_code == 403  # no CSRF: refused
    approved = archivist.post(f"/ui/imports/reports/{first}/approve", htmx=False, follow_redirects=True)
    assert approved.status_code == 200 and f"预检报告 {first} 已批准" in text(approved)
    again = archivist.post(f"/ui/imports/reports/{first}/approve", htmx=False)
    assert again.status_code == 409 and "已于先前批准" in text(again)

    job_id = job.start(ctx, ACTOR, tmp_path / "one.manifest.jsonl", first)
    job.run(ctx, ACTOR, job_id, pool=False)
    _report(ctx, tmp_path, "two", [row(3)])  # a second delivery's report, still a draft
    page = soup(archivist.get("/ui/imports"))
    jobs_row = page.select("table.list")[0].select("tbody tr")[0]
    cells = [td.get_text(" ", strip=True) for td in jobs_row.select("td")]
    assert cells[0] == str(job_id) and "已完成" in cells[2] and "1 / 2" not in cells[3] and "2 / 2" in cells[3]
    assert "已入索引 1" in cells[4] and "已排除 1" in cells[4]
    reports = page.select("table.list")[1].select("tbody tr")
    assert len(reports) == 2 and "审核批准" in reports[0].get_text() and "已批准" in reports[1].get_text()
