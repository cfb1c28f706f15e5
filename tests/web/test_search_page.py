"""检索 page: the one box (text, 档号, 业务流水号, 证件号码), facets, date ranges, cursor paging, masking, branch
visibility, the 证件号码 audit as in the API, saved searches; refusals and bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from archive import indexing
from archive.catalogue.models import AuditEvent, SavedSearch
from archive.context import Context
from tests.factories import add_case, file_case_row
from tests.web.html import UiClient, soup, text

ID_ZHANG = "110105196501150019"
CODE = "J001-YW·2025-D30-TQ-000001"


@pytest.fixture
def corpus(ctx: Context) -> None:
    """张三 (BR01, filed), 张三丰 (BR02, open), 李四 (BR01, open), indexed."""
    add_case(ctx, "YW000001", name="张三", business_type="TQ03", branch="BR01", id_number=ID_ZHANG,
             accepted=datetime(2025, 3, 1, 1, tzinfo=UTC))
    file_case_row(ctx, "YW000001")
    add_case(ctx, "YW000002", name="张三丰", business_type="TQ09", branch="BR02", id_number="110105195504040057",
             accepted=datetime(2025, 3, 31, 15, 30, tzinfo=UTC))
    add_case(ctx, "YW000003", name="李四", business_type="TQ07", branch="BR01", id_number="110105199002020046",
             accepted=datetime(2025, 4, 2, 2, tzinfo=UTC))
    indexing.IndexWorker(ctx).drain()


def events(ctx: Context, action: str) -> list[Any]:
    with ctx.catalogue.reading() as s:
        return list(s.execute(select(AuditEvent.actor, AuditEvent.target_id, AuditEvent.detail)
                              .where(AuditEvent.action == action).order_by(AuditEvent.seq)))


def serials(r: Any) -> list[str]:
    return [a.get_text() for a in soup(r).select("table.results a.mono.small")]


def test_text_search_shows_hits_masked_with_facets(ctx: Context, corpus: None, ui: Callable[..., UiClient]) -> None:
    """Given an archivist without pii.read, When searching 张三, Then both 张三 hits come back with names and ID
    numbers masked, facets with counts, the 档号 linking to the item page."""
    r = ui("head01", ["archive_head"], None).get("/ui/search", params={"q": "张三"})
    assert r.status_code == 200, r.text
    assert sorted(serials(r)) == ["YW000001", "YW000002"]
    shown = text(r)
    assert "张*" in shown and "张三丰" not in shown and ID_ZHANG not in shown and "110105********0019" in shown
    assert soup(r).find("a", href=f"/ui/items/{quote(CODE)}") is not None
    facets = soup(r).select_one("section.facets")
    assert facets is not None and "办理网点" in facets.get_text() and "BR02" in facets.get_text()
    assert events(ctx, "search.person") == []


def test_facet_and_date_range_narrow_the_results(corpus: None, ui: Callable[..., UiClient]) -> None:
    """Given three cases, When choosing the BR01 facet, Then only BR01's; with an acceptance range in April (center
    time), Then only 李四's; an impossible range is a clear 422."""
    archivist = ui("arch01", ["archivist"], None)
    r = archivist.get("/ui/search", params={"q": "张三"})
    link = next(a["href"] for a in soup(r).select("section.facets a") if a.get_text() == "BR01")
    assert serials(archivist.get(link)) == ["YW000001"]
    r = archivist.get("/ui/search", params={"accepted_from": "2025-04-01", "accepted_to": "2025-04-30"})
    assert r.status_code == 200 and serials(r) == ["YW000003"]
    bad = archivist.get("/ui/search", params={"accepted_from": "2025-05-01", "accepted_to": "2025-04-01"})
    assert bad.status_code == 422 and "起点晚于终点" in text(bad) and "invalid_range" in text(bad)
    bad = archivist.get("/ui/search", params={"closed_from": "2025-13-45"})
    assert bad.status_code == 422 and "不是有效日期" in text(bad) and "invalid_date" in text(bad)
    long = archivist.get("/ui/search", params={"q": "字" * 201})
    assert long.status_code == 422 and "search_input_too_long" in text(long)


def test_exact_keys_from_the_one_box(corpus: None, ui: Callable[..., UiClient]) -> None:
    """Given the box holding a 档号, a 业务流水号, Then each is looked up exactly in the catalogue."""
    archivist = ui("arch01", ["archivist"], None)
    r = archivist.get("/ui/search", params={"q": CODE})
    assert serials(r) == ["YW000001"] and "按档号精确查找" in text(r)
    r = archivist.get("/ui/search", params={"q": "YW000003"})
    assert serials(r) == ["YW000003"] and "按业务流水号精确查找" in text(r)


def test_id_number_search_is_audited_as_in_the_api(ctx: Context, corpus: None, ui: Callable[..., UiClient]) -> None:
    """Given a 证件号码 typed into the box, Then it is looked up exactly and a search.person event keeps it masked,
    as the API's search does; a phone number typed as text is audited too."""
    archivist = ui("arch01", ["archivist"], None)
    r = archivist.get("/ui/search", params={"q": ID_ZHANG})
    assert r.status_code == 200 and serials(r) == ["YW000001"] and "按证件号码精确查找" in text(r)
    [(actor, _, detail)] = events(ctx, "search.person")
    assert actor == "arch01" and detail["id_number"] == "110105********0019" and detail["hits"] == 1
    assert ID_ZHANG not in str(detail)
    archivist.get("/ui/search", params={"q": "13812345678"})
    assert events(ctx, "search.person")[-1][2]["q"] == "138****5678"


def test_branch_archivist_sees_only_her_branch(corpus: None, ui: Callable[..., UiClient]) -> None:
    """Given an archivist of BR02, Then searching 张三 shows 张三丰 only, and the BR01 档号 finds nothing."""
    other = ui("arch02", ["archivist"], "BR02")
    assert serials(other.get("/ui/search", params={"q": "张三"})) == ["YW000002"]
    r = other.get("/ui/search", params={"q": CODE})
    assert r.status_code == 200 and serials(r) == [] and "没有找到" in text(r)


def test_cursor_paging(ctx: Context, ui: Callable[..., UiClient]) -> None:
    """Given 25 cases, Then the first page shows 20 and a next link whose page shows the other 5."""
    for n in range(25):
        add_case(ctx, f"YW1{n:05d}", name="王五", accepted=datetime(2025, 1, 1 + n, tzinfo=UTC))
    indexing.IndexWorker(ctx).drain()
    archivist = ui("arch01", ["archivist"], None)
    first = archivist.get("/ui/search", params={"q": "王五"})
    nxt = soup(first).select_one("nav.pager a[rel=next]")
    assert len(serials(first)) == 20 and nxt is not None
    second = archivist.get(nxt["href"])
    assert len(serials(second)) == 5 and not set(serials(first)) & set(serials(second))
    assert soup(second).select_one("nav.pager a[rel=next]") is None
    bad = archivist.get("/ui/search", params={"q": "王五", "cursor": "!!garbage"})
    assert bad.status_code == 422 and "alert" in bad.text


def test_permission_is_checked_and_refusal_audited(ctx: Context, corpus: None, ui: Callable[..., UiClient]) -> None:
    """Given an auditor (no item.read), Then the page is 403 and a permission.denied event is written."""
    r = ui("aud01", ["auditor"], None).get("/ui/search", params={"q": "张三"})
    assert r.status_code == 403
    assert [e[0] for e in events(ctx, "permission.denied")] == ["aud01"]
    assert ui("arch01", ["archivist"], None).get("/ui/search").status_code == 200


def saved(ctx: Context) -> list[tuple[str, str, Any]]:
    with ctx.catalogue.reading() as s:
        return [tuple(r) for r in s.execute(select(SavedSearch.owner, SavedSearch.name, SavedSearch.query))]


def test_saved_searches_are_per_person(ctx: Context, client: TestClient, corpus: None,
                                       ui: Callable[..., UiClient]) -> None:
    """Given an archivist saving a search, Then it is listed for her only, opens the same search, the same name twice
    replaces it, an empty name is 422 with nothing saved, another person cannot open or delete it (404)."""
    archivist = ui("arch01", ["archivist"], None)
    q = "q=%E5%BC%A0%E4%B8%89&branch=BR01"
    r = archivist.post("/ui/search/saved", htmx=False, data={"name": "本网点张三", "query": q},
                       follow_redirects=False)
    assert r.status_code == 303
    assert archivist.post("/ui/search/saved", htmx=False, data={"name": "本网点张三", "query": q}).status_code == 200
    assert saved(ctx) == [("arch01", "本网点张三", {"params": [["q", "张三"], ["branch", "BR01"]]})]
    [(_, sid, _)] = events(ctx, "search.save")[:1]
    page = archivist.get("/ui/search")
    link = soup(page).find("a", string="本网点张三")
    assert link is not None
    assert serials(archivist.get(link["href"])) == ["YW000001"]
    empty = archivist.post("/ui/search/saved", htmx=False, data={"name": "  ", "query": q})
    assert empty.status_code == 422 and "请为检索条件起个名称" in text(empty)
    long = archivist.post("/ui/search/saved", htmx=False, data={"name": "名" * 101, "query": q})
    assert long.status_code == 422 and "saved_search_name_too_long" in text(long)
    nothing = archivist.post("/ui/search/saved", htmx=False, data={"name": "空", "query": ""})
    assert nothing.status_code == 422 and "saved_search_empty" in text(nothing)
    assert len(saved(ctx)) == 1
    other = ui("arch02", ["archivist"], None)
    assert soup(other.get("/ui/search")).find("a", string="本网点张三") is None
    assert other.get(link["href"]).status_code == 404
    assert other.post(f"/ui/search/saved/{sid}/delete", htmx=False).status_code == 404
    assert other.get("/ui/search/saved/abc").status_code == 422
    assert len(saved(ctx)) == 1
    assert archivist.post(f"/ui/search/saved/{sid}/delete", htmx=False, follow_redirects=False).status_code == 303
    with ctx.catalogue.reading() as s:
        assert s.scalar(select(func.count()).select_from(SavedSearch)) == 0
    assert archivist.client.post("/ui/search/saved", data={"name": "x", "query": q}).status_code == 403  # no CSRF


def test_search_page_carries_no_inline_script_or_style(corpus: None, ui: Callable[..., UiClient]) -> None:
    r = ui("arch01", ["archivist"], None).get("/ui/search", params={"q": "张三"})
    page = soup(r)
    assert all(tag.get("src") for tag in page.find_all("script")) and not page.find_all(style=True)
    for field in page.find_all(["input", "select"]):
        if field.get("type") not in ("hidden", "search", "submit") and field.get("id"):
            assert page.find("label", attrs={"for": field["id"]}) is not None, field["id"]
