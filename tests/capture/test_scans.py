"""Batch scans: a stack is split at its cover sheets; what cannot be matched waits for a clerk."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive.capture import scans
from archive.catalogue.models import Document, ScanPart
from archive.context import Context
from tests import samples
from tests.factories import case_body
from tests.helpers import add_client

A, B = "YW2026010500001", "YW2026010500002"


@pytest.fixture
def core(ctx: Context, client: TestClient) -> dict[str, str]:
    headers = add_client(ctx, "core", ["cases.write", "data.read"])
    for serial in (A, B):
        assert client.post("/api/v1/cases", json=case_body(serial=serial), headers=headers).status_code == 201
    return headers


def the_stack() -> list[Any]:
    """loose page | cover A | 2 pages | cover B askew 7° | 1 page | cover of an unknown serial | 1 page"""
    page = samples.page_image
    return [page("loose"), samples.cover_image(A), page("a1"), page("a2"), samples.cover_image(B, rotate=7),
            page("b1"), samples.cover_image("YW2099123199999"), page("x1")]


def send(client: TestClient, headers: dict[str, str], data: bytes, name: str = "stack.pdf") -> Any:
    return client.post("/api/v1/scans", headers=headers, files={"file": (name, data, "application/pdf")})


@pytest.mark.parametrize("kind", ["pdf", "tiff"])
def test_stack_is_split_at_cover_sheets(ctx: Context, client: TestClient, core: dict[str, str], kind: str) -> None:
    """Given an 8-page stack, then A gets pages 3-4, B gets page 6, and the rest waits for assignment."""
    data = samples.stack_pdf(the_stack()) if kind == "pdf" else samples.stack_tiff(the_stack())
    r = send(client, core, data, f"stack.{kind}")
    assert r.status_code == 202, r.text
    batch = client.get(f"/api/v1/scans/{r.json()['id']}", headers=core).json()
    assert batch["status"] == "done" and batch["pages_done"] == batch["pages_total"] == 8
    parts = [(p["first_page"], p["last_page"], p["serial"], p["status"], p["reason"]) for p in batch["parts"]]
    assert parts == [(1, 1, None, "unassigned", "before_first_cover"), (3, 4, A, "attached", None),
                     (6, 6, B, "attached", None), (8, 8, "YW2099123199999", "unassigned", "unknown_serial")]
    docs_a = client.get(f"/api/v1/cases/{A}", headers=core).json()["documents"]
    assert len(docs_a) == 1 and docs_a[0]["page_count"] == 2 and docs_a[0]["media_type"] == "application/pdf"
    assert client.get(f"/api/v1/cases/{B}", headers=core).json()["documents"][0]["page_count"] == 1
    waiting = client.get("/api/v1/scans/unassigned", headers=core).json()
    assert [(p["first_page"], p["reason"]) for p in waiting] == [(1, "before_first_cover"), (8, "unknown_serial")]


def test_clerk_assigns_a_waiting_part(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a stack whose loose first page waits for a clerk, when it is assigned to case B as id_proof, then it is
    attached there next to B's scanned part; assigning it again is 409 and an unknown part is 404."""
    send(client, core, samples.stack_pdf(the_stack()))
    loose = client.get("/api/v1/scans/unassigned", headers=core).json()[0]
    r = client.post(f"/api/v1/scans/parts/{loose['id']}/assign", json={"serial": B, "material_type": "id_proof"},
                    headers=core)
    assert r.status_code == 200 and r.json()["status"] == "attached"
    materials = {d["material_type"] for d in client.get(f"/api/v1/cases/{B}", headers=core).json()["documents"]}
    assert materials == {"other", "id_proof"}
    again = client.post(f"/api/v1/scans/parts/{loose['id']}/assign", json={"serial": A}, headers=core)
    assert again.status_code == 409
    missing = client.post("/api/v1/scans/parts/99999/assign", json={"serial": A}, headers=core)
    assert missing.status_code == 404


def test_crash_mid_stack_resumes_without_duplicating_pages(ctx: Context, client: TestClient, core: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the worker dies on page 6, when resumed, then it goes on from page 6 and attaches each part once."""
    real = scans.read_mark
    seen: list[int] = []

    def dies_on_sixth(image: Any) -> Any:
        seen.append(1)
        if len(seen) == 6:
            raise RuntimeError("power cut")
        return real(image)

    monkeypatch.setattr(scans, "read_mark", dies_on_sixth)
    with pytest.raises(RuntimeError):
        with ctx.catalogue.session() as s:
            from archive.capture.documents import Received
            from archive.permissions import Principal
            from signing.fixity import digest_bytes

            data = samples.stack_pdf(the_stack())
            d = digest_bytes(data)
            batch = scans.receive(ctx, s, Principal("client", 1, "core", frozenset()),
                                  Received("stack.pdf", data, d.sha256, d.sm3))
            batch_id = batch.id
        scans.process(ctx, batch_id)
    state = client.get(f"/api/v1/scans/{batch_id}", headers=core).json()
    assert state["status"] == "running" and state["pages_done"] == 5
    monkeypatch.setattr(scans, "read_mark", real)
    assert scans.resume_all(ctx) == 1
    assert scans.resume_all(ctx) == 0
    state = client.get(f"/api/v1/scans/{batch_id}", headers=core).json()
    assert state["status"] == "done" and len(state["parts"]) == 4
    with ctx.catalogue.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 2
        assert s.scalar(select(func.count()).select_from(ScanPart)) == 4


@pytest.mark.parametrize(("data", "code"), [
    (lambda: samples.jpeg(), "scan_format_unsupported"),
    (lambda: samples.pdf(3)[:200], "scan_unreadable"),
    (lambda: b"", "file_empty"),
])
def test_bad_scan_uploads(ctx: Context, client: TestClient, core: dict[str, str], data: Any, code: str) -> None:
    """Given a scan upload that is a JPEG, a truncated PDF or empty, when it is sent, then 422 with
    scan_format_unsupported, scan_unreadable or file_empty."""
    r = send(client, core, data())
    assert r.status_code == 422 and r.json()["code"] == code


def test_page_cap(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a cap of 3 pages per scan, when a 4-page PDF is sent, then 422 scan_too_many_pages saying 4 页."""
    ctx.settings.scan_page_cap = 3
    r = send(client, core, samples.pdf(4))
    assert r.status_code == 422 and r.json()["code"] == "scan_too_many_pages" and "4 页" in r.json()["message"]


def test_scans_need_write_permission(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a system with data.read only, when it uploads a scan or lists the waiting parts, then 403 both."""
    reader = add_client(ctx, "reader", ["data.read"])
    assert send(client, reader, samples.pdf(1)).status_code == 403
    assert client.get("/api/v1/scans/unassigned", headers=reader).status_code == 403
