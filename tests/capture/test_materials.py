"""Saying which pages are which material: retyping, splitting a scanned document, same bytes twice."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from archive.catalogue.models import AuditEvent, Document
from archive.context import Context
from tests import samples
from tests.capture.test_cases import events
from tests.factories import CLOSE, case_body, upload
from tests.helpers import add_client

S = "YW2026010700001"


@pytest.fixture
def core(ctx: Context, client: TestClient) -> dict[str, str]:
    headers = add_client(ctx, "core", ["cases.write", "data.read"])
    r = client.post("/api/v1/cases", json=case_body(serial=S, business_type="TQ07"), headers=headers)
    assert r.status_code == 201, r.text
    return headers


def attach(client: TestClient, headers: dict[str, str], name: str, data: bytes, material: str = "other") -> Any:
    r = upload(client, headers, S, (name, data, material))
    assert r.status_code == 201, r.text
    return r.json()["results"][0]


def split(client: TestClient, headers: dict[str, str], doc_id: int, *parts: tuple[int, int, str]) -> Any:
    return client.post(f"/api/v1/cases/{S}/documents/{doc_id}/split", headers=headers,
                       json={"parts": [{"first_page": a, "last_page": b, "material_type": m} for a, b, m in parts]})


def test_clerk_sets_the_material_type_of_a_scanned_document(ctx: Context, client: TestClient,
                                                            core: dict[str, str]) -> None:
    """Given a document attached as 其他, when the clerk sets it to 申请表, then the checklist counts it, the change
    is audited, and the original is untouched."""
    doc = attach(client, core, "scan.pdf", samples.pdf(1))["document"]
    r = client.patch(f"/api/v1/cases/{S}/documents/{doc['id']}", json={"material_type": "application_form"},
                     headers=core)
    assert r.status_code == 200, r.text
    assert r.json()["material_type"] == "application_form" and r.json()["sha256"] == doc["sha256"]
    missing = client.get(f"/api/v1/cases/{S}/checklist", headers=core).json()["missing"]
    assert missing == ["id_proof"]
    with ctx.catalogue.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "document.retype"))
        assert event is not None and event.detail == {"document_id": doc["id"], "from": "other",
                                                      "to": "application_form"}


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"material_type": "house_contract"}, 422, "material_not_for_business_type"),
    ({"material_type": "nonsense"}, 422, "unknown_material_type"),
    ({}, 422, "invalid_request"),
])
def test_bad_material_type_changes_are_refused(ctx: Context, client: TestClient, core: dict[str, str],
                                               body: dict[str, str], status: int, code: str) -> None:
    """Given a document typed other, when a bad material type change is sent, then it is refused with its status and
    a code and message, the document stays other and nothing is audited as document.retype."""
    doc = attach(client, core, "scan.pdf", samples.pdf(1))["document"]
    r = client.patch(f"/api/v1/cases/{S}/documents/{doc['id']}", json=body, headers=core)
    assert r.status_code == status and r.json()["code"] == code and r.json()["message"], r.text
    assert client.get(f"/api/v1/cases/{S}", headers=core).json()["documents"][0]["material_type"] == "other"
    assert events(ctx, "document.retype") == 0


def test_material_type_of_a_filed_case_or_missing_document_cannot_change(ctx: Context, client: TestClient,
                                                                         core: dict[str, str]) -> None:
    """Given an unknown document, when it is retyped, then document_not_found; a system with data.read only gets 403;
    once the case is filed, then retyping or splitting its documents is 409 case_not_open."""
    assert client.patch(f"/api/v1/cases/{S}/documents/999", json={"material_type": "id_proof"},
                        headers=core).json()["code"] == "document_not_found"
    reader = add_client(ctx, "reader", ["data.read"])
    form = attach(client, core, "a.jpg", samples.jpeg(), "application_form")["document"]
    assert client.patch(f"/api/v1/cases/{S}/documents/{form['id']}", json={"material_type": "other"},
                        headers=reader).status_code == 403
    attach(client, core, "b.png", samples.png(), "id_proof")
    assert client.post(f"/api/v1/cases/{S}/close", json=CLOSE, headers=core).status_code == 200
    r = client.patch(f"/api/v1/cases/{S}/documents/{form['id']}", json={"material_type": "other"}, headers=core)
    assert r.status_code == 409 and r.json()["code"] == "case_not_open"
    r = split(client, core, form["id"], (1, 1, "other"), (1, 1, "other"))
    assert r.status_code == 409 and r.json()["code"] == "case_not_open"


@pytest.mark.parametrize("kind", ["pdf", "tiff"])
def test_split_makes_one_document_per_material_and_keeps_the_original(ctx: Context, client: TestClient,
                                                                      core: dict[str, str], kind: str) -> None:
    """Given a 3-page scan attached as 其他, when split into page 1 = 申请表 and pages 2-3 = 身份证明, then two new
    documents derived from it exist, the original keeps its object with status split, the audit log names the
    derivation, and the case files."""
    data = samples.pdf(3) if kind == "pdf" else samples.tiff(3)
    source = attach(client, core, f"stack.{kind}", data)["document"]
    r = split(client, core, source["id"], (2, 3, "id_proof"), (1, 1, "application_form"))
    assert r.status_code == 201, r.text
    assert r.json()["source"]["status"] == "split"
    made = r.json()["documents"]
    assert [(d["material_type"], d["page_count"], d["media_type"]) for d in made] == [
        ("application_form", 1, "application/pdf"), ("id_proof", 2, "application/pdf")]
    listed = client.get(f"/api/v1/cases/{S}", headers=core).json()["documents"]
    assert sorted(d["id"] for d in listed) == sorted(d["id"] for d in made)
    with ctx.catalogue.sessions() as s:
        original = s.get(Document, source["id"])
        assert original is not None and original.status == "split"
        assert ctx.store.get(original.original_key).read() == data  # the original, byte for byte
        derived = [s.get(Document, d["id"]) for d in made]
        assert [d.detail["derived_from"] for d in derived if d and d.detail] == [
            {"document_id": source["id"], "sha256": source["sha256"], "pages": [1, 1]},
            {"document_id": source["id"], "sha256": source["sha256"], "pages": [2, 3]}]
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "document.split"))
        assert event is not None and event.detail["method"] == "derived_objects"
        assert [p["pages"] for p in event.detail["parts"]] == [[1, 1], [2, 3]]
    assert client.get(f"/api/v1/cases/{S}/checklist", headers=core).json()["complete"] is True
    assert client.post(f"/api/v1/cases/{S}/close", json=CLOSE, headers=core).status_code == 200
    with ctx.catalogue.sessions() as s:
        original = s.get(Document, source["id"])
        assert original is not None
        assert ctx.store.stat(original.original_key).retain_until is not None  # locked with the item


@pytest.mark.parametrize(("parts", "code", "words"), [
    ([(1, 2, "application_form"), (2, 3, "id_proof")], "split_ranges_overlap", "重叠"),
    ([(1, 1, "application_form"), (2, 4, "id_proof")], "split_range_invalid", "共 3 页"),
    ([(2, 1, "application_form"), (3, 3, "id_proof")], "split_range_invalid", "起始页"),
    ([(0, 1, "application_form"), (2, 3, "id_proof")], "split_range_invalid", "1-3"),
    ([(1, 1, "application_form"), (3, 3, "id_proof")], "split_ranges_incomplete", "第 2 页"),
    ([(1, 3, "application_form")], "split_too_few_parts", "两段"),
    ([], "split_too_few_parts", "两段"),
    ([(1, 1, "application_form"), (2, 3, "house_contract")], "material_not_for_business_type", "house_contract"),
])
def test_bad_splits_are_refused_and_change_nothing(ctx: Context, client: TestClient, core: dict[str, str],
                                                   parts: list[tuple[int, int, str]], code: str, words: str) -> None:
    """Given overlapping, out-of-range, reversed, gapped, single or mistyped ranges, then 422 with a message naming
    the problem, and the document stays as it was with nothing new stored."""
    source = attach(client, core, "stack.pdf", samples.pdf(3))["document"]
    keys = set(ctx.store.list_keys("originals/"))
    r = split(client, core, source["id"], *parts)
    assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert words in r.json()["message"]
    assert [d["id"] for d in client.get(f"/api/v1/cases/{S}", headers=core).json()["documents"]] == [source["id"]]
    assert set(ctx.store.list_keys("originals/")) == keys
    assert events(ctx, "document.split") == 0


def test_single_images_and_unknown_documents_are_not_split(ctx: Context, client: TestClient,
                                                           core: dict[str, str]) -> None:
    """Given a single JPEG, when it is split, then 422 split_unsupported_format; splitting an unknown document is 404
    document_not_found, and parts given as a string are 422 invalid_request."""
    photo = attach(client, core, "photo.jpg", samples.jpeg())["document"]
    r = split(client, core, photo["id"], (1, 1, "application_form"), (1, 1, "id_proof"))
    assert r.status_code == 422 and r.json()["code"] == "split_unsupported_format"
    r = split(client, core, 999, (1, 1, "application_form"), (2, 2, "id_proof"))
    assert r.status_code == 404 and r.json()["code"] == "document_not_found"
    r = client.post(f"/api/v1/cases/{S}/documents/{photo['id']}/split", json={"parts": "1-2"}, headers=core)
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"


def test_same_bytes_as_two_materials_is_accepted_with_a_warning(ctx: Context, client: TestClient,
                                                                core: dict[str, str]) -> None:
    """Given a file attached as 申请表, when the same bytes come as 身份证明, then it is accepted with a
    duplicate_content warning naming the first, and the checklist marks both entries."""
    data = samples.jpeg(text="same")
    first = attach(client, core, "a.jpg", data, "application_form")
    assert first["warnings"] == []
    second = attach(client, core, "b.jpg", data, "id_proof")
    assert second["accepted"] and not second["duplicate"]
    [warning] = second["warnings"]
    assert warning["code"] == "duplicate_content" and "申请表" in warning["message"]
    assert warning["detail"]["same_as"] == [first["document"]["id"]]
    lines = {m["material_type"]: m for m in client.get(f"/api/v1/cases/{S}/checklist", headers=core).json()[
        "materials"]}
    a, b = first["document"]["id"], second["document"]["id"]
    assert lines["application_form"]["duplicates"] == [{"document_id": a, "same_as": b}]
    assert lines["id_proof"]["duplicates"] == [{"document_id": b, "same_as": a}]
    assert lines["other"]["duplicates"] == []
    client.post(f"/api/v1/cases/{S}/documents/{b}/remove", json={"reason": "误传"}, headers=core)
    after = client.get(f"/api/v1/cases/{S}/checklist", headers=core).json()["materials"]
    assert all(m["duplicates"] == [] for m in after)


def test_split_of_a_document_with_a_very_long_name(ctx: Context, client: TestClient, core: dict[str, str]) -> None:
    """Given a scan whose file name fills the 255 characters, then the split documents' names still fit."""
    source = attach(client, core, "扫" * 251 + ".pdf", samples.pdf(2))["document"]
    r = split(client, core, source["id"], (1, 1, "application_form"), (2, 2, "id_proof"))
    assert r.status_code == 201, r.text
    assert all(len(d["filename"]) <= 255 and d["filename"].endswith("-p1-1.pdf") is (i == 0)
               for i, d in enumerate(r.json()["documents"]))
