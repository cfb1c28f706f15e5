"""移交 pages: export a selection as a job with progress (a second click answers the running job), download the
package and its 登记表, receive a package and read its YJ results; permissions twice, bad input on purpose."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from archive import jobs
from archive.catalogue.models import AuditEvent, Job, TransferPackage, TransferReceipt
from archive.context import Context
from archive.permissions import Permission, Principal, permissions_of_roles
from archive.web.routes.transfers import EXPORT_KEY
from signing.fixity import digest_bytes
from tests import samples
from tests.factories import stored_item
from tests.web.html import UiClient, soup, text

Ui = Callable[..., UiClient]


@pytest.fixture
def codes(ctx: Context) -> list[str]:
    """Two filed items whose renditions are PDFs (the YJ format check reads them)."""
    return [stored_item(ctx, rendition=samples.pdf(n)).archival_code for n in (1, 2)]


def count(ctx: Context, model: type) -> int:
    with ctx.catalogue.reading() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def last_job(ctx: Context) -> Job | None:
    with ctx.catalogue.reading() as s:
        job = s.scalar(select(Job).where(Job.key == EXPORT_KEY).order_by(Job.id.desc()).limit(1))
        if job is not None:
            s.expunge(job)
        return job


def refused(ctx: Context, action: str) -> list[str]:
    with ctx.catalogue.reading() as s:
        return [e.detail["code"] for e in s.scalars(select(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.outcome == "refused").order_by(AuditEvent.seq))]


def chinese(r: object, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, text(r)[:400])  # type: ignore[attr-defined]
    alert = soup(r).select_one(".alert.error")  # type: ignore[arg-type]
    assert alert is not None and code in alert.get_text(), text(r)[:400]  # type: ignore[arg-type]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in alert.get_text())


def export(ctx: Context, arch: UiClient, **form: str) -> Job:
    r = arch.post("/ui/transfers/export", htmx=False, data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/transfers?done=started", text(r)[:300]
    job = last_job(ctx)
    assert job is not None
    return jobs.wait(ctx, job.id)


def test_export_with_progress_download_and_receive_it(ctx: Context, ui: Ui, codes: list[str]) -> None:
    arch = ui("arch01", ["archivist"], None)
    job = export(ctx, arch, archival_codes="\n".join(codes), receiver="市档案馆")
    assert job.status == "done" and job.done == job.total == 2, job.error
    page = arch.get("/ui/transfers?done=started")
    section = soup(page).find("section", id=f"job-{job.id}")
    assert section is not None and "已完成" in section.get_text() and "共 2 件，通过移交检测" in section.get_text()
    assert "已处理 2 / 2" in section.get_text() and "已开始生成移交信息包" in text(page)
    with ctx.catalogue.reading() as s:
        package = s.scalars(select(TransferPackage)).one()
        s.expunge(package)
    assert section.find("a", string="查看结果")["href"] == f"/ui/transfers/{package.id}"

    detail = arch.get(f"/ui/transfers/{package.id}")
    assert detail.status_code == 200 and "全部通过" in text(detail) and "市档案馆" in text(detail)
    assert len(soup(detail).select("table.yj tbody tr")) == len(package.check_results)
    zipped = arch.get(f"/ui/transfers/{package.id}/package.zip")
    assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
    assert digest_bytes(zipped.content).sha256 == package.zip_sha256
    register = arch.get(f"/ui/transfers/{package.id}/register.pdf")
    assert register.status_code == 200 and register.content.startswith(b"%PDF")

    r = arch.post("/ui/transfers/receipts", htmx=False, files={"file": ("package.zip", zipped.content,
                                                                        "application/zip")},
                  data={"sender_sha256": package.zip_sha256}, follow_redirects=False)
    assert r.status_code == 303, text(r)[:300]
    receipt = arch.get(r.headers["location"])
    assert "信息包通过移交与接收检测，已登记接收" in text(receipt) and package.package_no in text(receipt)
    assert "全部通过" in text(receipt)
    assert "接收" in text(arch.get("/ui/transfers/receipts")) and count(ctx, TransferReceipt) == 1

    tampered = io.BytesIO()  # the same package with its 目录文件 changed: the manifests no longer agree
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as src, zipfile.ZipFile(tampered, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            out.writestr(info, data.replace(b'"year": 2026', b'"year": 2025') if info.filename.endswith(
                "items.json") else data)
    r = arch.post("/ui/transfers/receipts", htmx=False, files={"file": ("t.zip", tampered.getvalue(),
                                                                        "application/zip")})
    assert r.status_code == 200 and "应退回移交单位" in text(r)
    failed = soup(r).select("table.yj tr.failed")
    assert failed and all("不通过" in tr.get_text() for tr in failed)


def test_a_second_click_answers_the_running_export(ctx: Context, ui: Ui, codes: list[str]) -> None:
    arch = ui("arch01", ["archivist"], None)
    me = Principal("user", 1, "arch02", permissions_of_roles(["archivist"]), ("archivist",))
    release = threading.Event()

    def work(progress: jobs.Progress) -> jobs.Outcome:
        progress(1, 2)
        release.wait(10)
        return jobs.Outcome()

    job_id, _ = jobs.start(ctx, me, kind="transfer.export", key=EXPORT_KEY, title="生成移交信息包（2 件）",
                           permission=Permission.TRANSFER_MANAGE, work=work, total=2)
    try:
        r = arch.post("/ui/transfers/export", htmx=False, data={"archival_codes": codes[0]}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/transfers?done=running"
        page = arch.get("/ui/transfers?done=running")  # a reload shows the running job, polling
        section = soup(page).find("section", id=f"job-{job_id}")
        assert section is not None and section["hx-get"] == f"/ui/jobs/{job_id}" and "已处理 1 / 2" in text(page)
        assert "已有移交信息包正在生成" in text(page)
    finally:
        release.set()
        jobs.wait(ctx, job_id)
    assert count(ctx, Job) == 1 and count(ctx, TransferPackage) == 0


@pytest.mark.parametrize(("form", "status", "code"), [
    ({"archival_codes": "J001-YW·2026-D30-TQ-999999"}, 404, "item_not_found"),
    ({}, 422, "invalid_request"),
    ({"archival_codes": "X", "category": "TQ"}, 422, "invalid_request"),
    ({"year": "二〇二六"}, 422, "invalid_request"),
    ({"retention_code": "D99"}, 422, "invalid_request"),
    ({"category": "TQ", "receiver": "馆" * 201}, 422, "invalid_request"),
])
def test_a_bad_selection_is_refused_at_once_and_starts_no_job(ctx: Context, ui: Ui, codes: list[str],
                                                             form: dict[str, str], status: int, code: str) -> None:
    arch = ui("arch01", ["archivist"], None)
    r = arch.post("/ui/transfers/export", htmx=False, data=form)
    if code == "invalid_request" and "receiver" in form:  # over the form's own limit: the shared 422 page
        assert r.status_code == 422 and "invalid_request" in text(r)
    else:
        chinese(r, status, code)
        assert soup(r).find("textarea", attrs={"name": "archival_codes"}) is not None
        assert refused(ctx, "transfer.export")[-1] == code
    assert count(ctx, Job) == 0 and count(ctx, TransferPackage) == 0


def test_an_empty_filter_fails_the_job_with_a_chinese_message(ctx: Context, ui: Ui, codes: list[str]) -> None:
    arch = ui("arch01", ["archivist"], None)
    job = export(ctx, arch, category="ZZ")
    assert job.status == "failed" and job.error == {"code": "selection_empty", "message": "没有符合条件的已归档档案"}
    assert "没有符合条件的已归档档案" in text(arch.get("/ui/transfers"))
    assert refused(ctx, "transfer.export") == ["selection_empty"]


@pytest.mark.parametrize(("files", "code"), [
    ({"file": ("a.zip", b"not a zip at all", "application/zip")}, "transfer_not_zip"),
    ({"file": ("empty.zip", b"", "application/zip")}, "transfer_not_zip"),
    ({}, "transfer_not_zip"),
])
def test_a_file_that_is_no_package_is_refused_and_audited(ctx: Context, ui: Ui, files: dict[str, object],
                                                           code: str) -> None:
    arch = ui("arch01", ["archivist"], None)
    r = arch.post("/ui/transfers/receipts", htmx=False, files=files or {"x": ("", b"", "text/plain")},
                  data={"sender_sha256": ""})
    chinese(r, 422, code)
    assert count(ctx, TransferReceipt) == 0 and refused(ctx, "transfer.receive") == [code]


def test_a_bad_sender_digest_is_refused(ctx: Context, ui: Ui, codes: list[str]) -> None:
    arch = ui("arch01", ["archivist"], None)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("p/bagit.txt", "BagIt-Version: 1.0\n")
    r = arch.post("/ui/transfers/receipts", htmx=False, files={"file": ("p.zip", zipped.getvalue(), "application/zip")},
                  data={"sender_sha256": "xyz"})
    chinese(r, 422, "invalid_sender_digest")
    assert count(ctx, TransferReceipt) == 0


def test_who_may_open_the_transfer_pages(ctx: Context, ui: Ui) -> None:
    arch = ui("arch01", ["archivist"], None)
    for who, roles in (("clerk01", ["clerk"]), ("head01", ["archive_head"])):
        person = ui(who, roles, None)
        for path in ("/ui/transfers", "/ui/transfers/receipts", "/ui/transfers/1/package.zip"):
            r = person.get(path)
            assert r.status_code == 403 and "permission_denied" in text(r), (who, path)
        assert person.post("/ui/transfers/export", htmx=False, data={"category": "TQ"}).status_code == 403
    with ctx.catalogue.reading() as s:
        denied = list(s.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "permission.denied")))
    assert "GET /ui/transfers" in denied and "POST /ui/transfers/export" in denied
    assert count(ctx, Job) == 0
    assert arch.get("/ui/transfers").status_code == 200 and arch.get("/ui/transfers/receipts").status_code == 200
    chinese(arch.get("/ui/transfers/999"), 404, "transfer_not_found")
    chinese(arch.get("/ui/transfers/receipts/999"), 404, "receipt_not_found")
    assert arch.get("/ui/transfers/abc").status_code == 422
    assert arch.get("/ui/transfers/receipts/0").status_code == 422


def test_a_large_package_is_received_by_a_job(ctx: Context, ui: Ui, codes: list[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from archive.audit import Actor
    from archive.retention import transfer
    from archive.retention.transfer import Selection
    from archive.web.routes import transfers as view

    with ctx.catalogue.session() as s:
        row = transfer.export(ctx, s, Actor("user", "arch02"), Selection(archival_codes=codes))
        key = row.zip_key
    data = ctx.store.get(key or "").read()
    monkeypatch.setattr(view, "RECEIVE_JOB_BYTES", 1)  # every package counts as large
    arch = ui("arch01", ["archivist"], None)
    r = arch.post("/ui/transfers/receipts", htmx=False, files={"file": ("big.zip", data, "application/zip")},
                  follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/transfers/receipts?done=started"
    with ctx.catalogue.reading() as s:
        job_id = s.scalar(select(Job.id).where(Job.key == view.RECEIVE_KEY))
    assert job_id is not None
    job = jobs.wait(ctx, job_id)
    assert job.status == "done" and job.link == "/ui/transfers/receipts/1", job.error
    page = arch.get("/ui/transfers/receipts")
    assert "信息包通过移交与接收检测，已登记接收" in text(page) and soup(page).find("a", string="查看结果") is not None
    assert count(ctx, TransferReceipt) == 1
    assert list((ctx.settings.data_dir / "tmp").iterdir()) == []  # the job removed the upload
