"""Cases and filed items for tests, made one of two ways.

Through the API (``case_body``, ``upload``, ``complete_case``, ``close_case``, ``file_case``, ``file_cases``): the
real pipeline (capture, 四性检测, rendition, signature, 档号). Use it when the test is about what filing produces.

Straight into the catalogue and the store (``add_case``, ``file_case_row``, ``stored_item``): the rows filing
would write, without running it. Use it when a test needs many items fast or items filed years ago.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from archive import indexing
from archive.catalogue.models import ArchiveItem, Case, Document, Fonds
from archive.context import Context
from signing.fixity import Digests, digest_bytes
from storage.base import ObjectStore, content_key
from tests import samples

# --- through the API ---------------------------------------------------------------------------

ID = "11010519491231002X"
SERIAL = "YW2026010500001"
TRAIL = [{"action": "受理", "person": "clerk01", "at": "2026-01-05T09:30:00+08:00"},
         {"action": "审批", "person": "chief01", "at": "2026-01-05T15:00:00+08:00", "opinion": "同意"},
         {"action": "办结", "person": "clerk01", "at": "2026-01-05T16:00:00+08:00"}]
CLOSE = {"outcome": "approved", "closed_at": "2026-01-05T16:00:00+08:00", "trail": TRAIL}
TQ01_FILES = [("申请表.jpg", "application_form"), ("身份证.png", "id_proof"), ("婚姻.tif", "marriage_proof"),
              ("合同.pdf", "house_contract")]


def case_body(serial: str = SERIAL, business_type: str = "TQ01", **over: Any) -> dict[str, Any]:
    """The JSON a business system sends to open a case; ``over`` replaces top-level fields."""
    body = {"serial": serial, "business_type": business_type,
            "applicant": {"name": "张三", "id_number": ID, "mobile": "13800138000"},
            "branch": "BR01", "clerk": "clerk01", "accepted_at": "2026-01-05T09:30:00+08:00"}
    body.update(over)
    return body


def upload(client: TestClient, headers: dict[str, str], serial: str, *files: tuple[str, bytes, str]) -> Any:
    """Attach ``(file name, bytes, material type)`` files to a case; the response, unchecked."""
    return client.post(f"/api/v1/cases/{serial}/documents", headers=headers,
                       files=[("files", (name, data, "application/octet-stream")) for name, data, _ in files],
                       data={"material_type": [m for _, _, m in files]})


def close_body(day: str) -> dict[str, Any]:
    """Closing on ``day`` (YYYY-MM-DD), Beijing time."""
    trail = [{"action": "受理", "person": "clerk01", "at": f"{day}T09:30:00+08:00"},
             {"action": "办结", "person": "clerk01", "at": f"{day}T16:00:00+08:00"}]
    return {"outcome": "approved", "closed_at": f"{day}T16:00:00+08:00", "trail": trail}


def complete_case(client: TestClient, headers: dict[str, str], serial: str = SERIAL, **over: Any) -> None:
    """Open a TQ01 提取 case with every required material: JPEG form, PNG id, 2-page TIFF, 2-page PDF."""
    assert client.post("/api/v1/cases", json=case_body(serial=serial, **over), headers=headers).status_code == 201
    makers = {"application_form": samples.jpeg, "id_proof": samples.png, "marriage_proof": lambda: samples.tiff(2),
              "house_contract": lambda: samples.pdf(2)}
    files = [(name, makers[m](), m) for name, m in TQ01_FILES]
    assert upload(client, headers, serial, *files).status_code == 201


def close_case(client: TestClient, headers: dict[str, str], serial: str = SERIAL,
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Close (and so file) a case that must file; the response body (``item``, ``documents`` …)."""
    r = client.post(f"/api/v1/cases/{serial}/close", json=CLOSE if body is None else body, headers=headers)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def file_case(client: TestClient, headers: dict[str, str], serial: str = SERIAL, **over: Any) -> str:
    """A TQ01 case opened, completed and filed through the API; its 档号."""
    complete_case(client, headers, serial, **over)
    return str(close_case(client, headers, serial)["item"]["archival_code"])


def file_cases(client: TestClient, headers: dict[str, str], serials: Sequence[str]) -> list[str]:
    """``file_case`` for each serial; the 档号 in order."""
    return [file_case(client, headers, serial) for serial in serials]


# --- straight into the catalogue and the store ------------------------------------------------

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Stored:
    serial: str
    archival_code: str
    rendition_key: str
    original_keys: list[str]


def put_object(store: ObjectStore, prefix: str, data: bytes, retain_until: datetime | None = None,
               ) -> tuple[str, Digests]:
    """Store ``data`` under its content key; the key and its digests."""
    d = digest_bytes(data)
    key = content_key(prefix, d.sha256)
    store.put(key, io.BytesIO(data), size=d.size, sha256=d.sha256, sm3=d.sm3, retain_until=retain_until)
    return key, d


def stored_item(ctx: Context, number: int | None = None, *, serial: str | None = None, year: int = 2026,
                category: str = "TQ", business_type: str = "TQ01", branch: str = "BR01",
                originals: Sequence[bytes] | None = None, rendition: bytes | None = None,
                signature: dict[str, str] | None = None, status: str = "filed", trigger: str = "BUSINESS_CLOSED",
                trigger_date: date | None = None, expiry: date | None = None,
                retain_until: datetime | None = None) -> Stored:
    """A filed item written as filing writes it: case, documents and item rows, originals and rendition stored.

    Nothing is rendered, checked or signed here: ``rendition`` defaults to placeholder bytes (pass a signed PDF
    and its ``signature`` when the test validates it); ``originals`` default to two small distinct files.
    ``number`` is the item number in the 档号 (the next free one of this test run if not given).
    """
    n = next(_numbers) if number is None else number
    serial = serial or f"YW{year}0105{n:05d}"
    code = f"J001-YW·{year}-D30-{category}-{n:06d}"
    if originals is None:
        originals = [f"original {code} {i}".encode() for i in range(2)]
    rkey, rd = put_object(ctx.store, "renditions", f"rendition {code}".encode() if rendition is None else rendition,
                          retain_until)
    stored = [put_object(ctx.store, "originals", data, retain_until) for data in originals]
    with ctx.catalogue.session() as s:
        fonds = s.scalar(select(Fonds))
        assert fonds is not None
        case = Case(serial=serial, fonds_id=fonds.id, category=category, business_type=business_type,
                    status="destroyed" if status == "destroyed" else "filed", applicant_name="张三",
                    applicant_id_number="110101199003071234", applicant_mobile="13800138000", branch=branch,
                    clerk="clerk01", accepted_at=datetime(year, 1, 1, tzinfo=UTC),
                    closed_at=datetime(year, 1, 2, tzinfo=UTC), outcome="approved")
        s.add(case)
        s.flush()
        for i, (key, d) in enumerate(stored, 1):
            s.add(Document(case_id=case.id, sequence=i, material_type="other", filename=f"{i}.pdf", original_key=key,
                           sha256=d.sha256, sm3=d.sm3, size=d.size, media_type="application/pdf", page_count=2,
                           created_by="clerk01"))
        s.add(ArchiveItem(case_id=case.id, archival_code=code, fonds_code="J001", year=year, retention_code="D30",
                          category=category, number=n, trigger=trigger, trigger_date=trigger_date,
                          expiry_date=expiry, schedule_version="test", status=status, rendition_key=rkey,
                          rendition_sha256=rd.sha256, rendition_sm3=rd.sm3, signature=signature))
    return Stored(serial, code, rkey, [key for key, _ in stored])


def add_case(ctx: Context, serial: str, *, name: str = "张三", business_type: str = "TQ03", branch: str = "BR01",
             id_number: str = "110105196501150019", accepted: datetime | None = None, enqueue: bool = True) -> int:
    """Open a case the way capture does, without documents: the row and its outbox message in one transaction."""
    bt = ctx.schedule.business_type(business_type)
    with ctx.catalogue.session() as s:
        fonds = s.scalar(select(Fonds).where(Fonds.code == ctx.settings.fonds_code))
        assert fonds is not None
        case = Case(serial=serial, fonds_id=fonds.id, category=bt.category, business_type=business_type,
                    applicant_name=name, applicant_id_number=id_number, branch=branch, clerk="clerk01",
                    accepted_at=accepted or datetime(2025, 3, 1, 1, 0, tzinfo=UTC), status="open")
        s.add(case)
        s.flush()
        if enqueue:
            indexing.enqueue(s, serial)
        return case.id


def file_case_row(ctx: Context, serial: str, number: int = 1) -> str:
    """File a case opened by ``add_case`` the way filing does, without rendition: the item, the status, the outbox
    message; its 档号."""
    with ctx.catalogue.session() as s:
        case = s.scalar(select(Case).where(Case.serial == serial))
        assert case is not None
        bt = ctx.schedule.business_type(case.business_type)
        code = f"J001-YW·2025-{bt.retention.value}-{bt.category}-{number:06d}"
        s.add(ArchiveItem(case_id=case.id, archival_code=code, fonds_code=ctx.settings.fonds_code, year=2025,
                          retention_code=bt.retention.value, category=bt.category, number=number,
                          trigger=bt.trigger.value, trigger_date=date(2025, 3, 2), expiry_date=date(2056, 1, 1),
                          schedule_version=ctx.schedule.version))
        case.status, case.closed_at = "filed", datetime(2025, 3, 2, 1, 0, tzinfo=UTC)
        indexing.enqueue(s, serial)
    return code
