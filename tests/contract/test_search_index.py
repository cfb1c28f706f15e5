"""The SearchIndex contract: the embedded (tantivy) and Elasticsearch backends, the same documents,
the same queries, the same hits, facets and permission filtering.

Elasticsearch runs when ARCHIVE_TEST_ES_URL is set (optionally ARCHIVE_TEST_ES_USERNAME/PASSWORD/CA_FILE);
each test uses its own index prefix and removes it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from search.base import Range, SearchIndex, SearchQuery, Visibility
from search.embedded import EmbeddedIndex
from tests.search.support import BJ, ID_OUYANG, ID_ZHANG_SAN, USCC_KEJI, archival_code, corpus, serial, serials

ES_URL = os.environ.get("ARCHIVE_TEST_ES_URL")
EVERYTHING = Visibility.everything()


def _new_index(kind: str, path: Path) -> SearchIndex:
    if kind == "embedded":
        return EmbeddedIndex(path)
    if not ES_URL:
        pytest.skip("ARCHIVE_TEST_ES_URL not set")
    from search.elasticsearch import ElasticsearchIndex

    return ElasticsearchIndex(
        ES_URL, prefix=f"archive-test-{uuid.uuid4().hex[:10]}", refresh=True,
        username=os.environ.get("ARCHIVE_TEST_ES_USERNAME", ""),
        password=os.environ.get("ARCHIVE_TEST_ES_PASSWORD", ""),
        ca_file=os.environ.get("ARCHIVE_TEST_ES_CA_FILE") or None)


def _drop(index: SearchIndex) -> None:
    from search.elasticsearch import ElasticsearchIndex

    if isinstance(index, ElasticsearchIndex):
        index.client.indices.delete(index=f"{index.prefix}-items-*", ignore_unavailable=True)
        index.client.indices.delete_index_template(name=index.template)
    index.close()


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchIndex]:
    """Each backend holding the corpus; read-only tests share it."""
    index = _new_index(request.param, tmp_path_factory.mktemp("index"))
    assert index.upsert(corpus()) == {}
    index.refresh()
    yield index
    _drop(index)


@pytest.fixture(params=["embedded", "elasticsearch"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchIndex]:
    """Each backend holding the corpus, for tests that change it."""
    index = _new_index(request.param, tmp_path / "index")
    assert index.upsert(corpus()) == {}
    index.refresh()
    yield index
    _drop(index)


def _serials(index: SearchIndex, visibility: Visibility = EVERYTHING, **query: Any) -> list[str]:
    return [h.serial for h in index.search(SearchQuery(page_size=100, **query), visibility).hits]


# The expected hits are written out by hand; default order is newest accepted first.
TEXT_CASES = [
    ("two-character word", "提取", [13, 11, 6, 5, 2, 1]),
    ("one-character word", "张", [13, 6, 1]),
    ("two-character name", "张三", [13, 6, 1]),
    ("compound surname, out of any dictionary", "欧阳娜娜", [2]),
    ("end of a name", "娜娜", [2]),
    ("word inside a unit name", "科技", [4]),
    ("word before a Chinese enumeration comma", "离休", [1]),
    ("characters split by punctuation do not form a word", "休退", []),
    ("Latin name, any case", "smith", [11]),
    ("full-width Latin is folded", "ＳＭＩＴＨ", [11]),
    ("two words must both match", "提取 租房", [5]),
    ("an excluded word removes hits", "提取 -张三", [11, 5, 2]),
    ("an exclusion alone keeps everything else", "-提取", [12, 10, 9, 8, 7, 4, 3]),
    ("quoted group", '"抵押 注销"', [7]),
    ("category name is searchable", "贷款", [13, 12, 7, 3]),
    ("word nobody wrote", "公积金贷款逾期", []),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_free_text_matches_chinese_words_of_any_length(loaded: SearchIndex, text: str, expected: list[int]) -> None:
    """Given the corpus, When searching free text, Then exactly the documents containing the word match."""
    result = loaded.search(SearchQuery(text=text, page_size=100), EVERYTHING)
    assert [h.serial for h in result.hits] == serials(*expected)
    assert result.total == len(expected)


KEY_CASES = [
    ("serial", {"serial": serial(5)}, [5]),
    ("archival code", {"archival_code": archival_code(2, "TQ", "D30", 2025)}, [2]),
    ("ID number shared by two cases", {"id_number": ID_ZHANG_SAN}, [13, 1]),
    ("ID number typed with a lower-case x", {"id_number": ID_OUYANG.lower()}, [2]),
    ("unit credit code", {"uscc": USCC_KEJI}, [4]),
    ("loan contract", {"loan_contract_no": "DK2025001"}, [3]),
    ("unknown serial", {"serial": "YW999999"}, []),
]


@pytest.mark.parametrize(("keys", "expected"), [c[1:] for c in KEY_CASES], ids=[c[0] for c in KEY_CASES])
def test_exact_keys_find_exactly_their_documents(loaded: SearchIndex, keys: dict[str, str],
                                                 expected: list[int]) -> None:
    """Given the corpus, When looking up an exact key, Then only documents with that key are returned."""
    assert _serials(loaded, keys=keys) == serials(*expected)


FILTER_CASES = [
    ("category", {"filters": {"category": ["TQ"]}}, [13, 11, 6, 5, 2, 1]),
    ("category and branch", {"filters": {"category": ["TQ"], "branch": ["BR02"]}}, [6, 2]),
    ("two business types", {"filters": {"business_type": ["TQ01", "TQ07"]}}, [5, 2]),
    ("retention code", {"filters": {"retention_code": ["Y"]}}, [12]),
    ("status", {"filters": {"status": ["open"]}}, [10, 6, 3]),
    ("year", {"filters": {"year": [2024]}}, [1]),
    ("kind", {"filters": {"kind": ["case"]}}, [10, 6, 3]),
    ("accepted in April, Beijing time", {"ranges": {"accepted_at": Range(datetime(2025, 4, 1, tzinfo=BJ),
                                                                         datetime(2025, 5, 1, tzinfo=BJ))}}, [7]),
    ("accepted on 31 March, Beijing time", {"ranges": {"accepted_at": Range(datetime(2025, 3, 31, tzinfo=BJ),
                                                                            datetime(2025, 4, 1, tzinfo=BJ))}}, [6]),
    ("closed before 2025", {"ranges": {"closed_at": Range(lt=datetime(2025, 1, 1, tzinfo=BJ))}}, [1]),
    ("closed from August on", {"ranges": {"closed_at": Range(gte=datetime(2025, 8, 1, tzinfo=BJ))}}, [13, 12]),
    ("amount range in yuan", {"ranges": {"amount": Range(Decimal("150000.50"), Decimal("800000"))}}, [12, 2]),
    ("expiry before 2040", {"ranges": {"expiry_date": Range(lt=date(2040, 1, 1))}}, [8]),
    ("year range", {"ranges": {"year": Range(2024, 2025)}}, [1]),
    ("two-character text with a date range", {"text": "提取", "ranges": {"accepted_at": Range(
        datetime(2025, 3, 1, tzinfo=BJ), datetime(2025, 8, 1, tzinfo=BJ))}}, [11, 6, 5]),
    ("text with a key", {"text": "提取", "keys": {"id_number": ID_ZHANG_SAN}}, [13, 1]),
]


@pytest.mark.parametrize(("query", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES])
def test_filters_and_ranges_narrow_the_hits(loaded: SearchIndex, query: dict[str, Any], expected: list[int]) -> None:
    """Given the corpus, When filtering and bounding ranges (half-open), Then exactly the expected hits remain."""
    assert _serials(loaded, **query) == serials(*expected)


def test_facets_count_every_hit_of_the_query(loaded: SearchIndex) -> None:
    """Given the corpus, When asking 提取 with facets, Then each facet counts all hits, largest first."""
    result = loaded.search(SearchQuery(text="提取", facets=["category", "branch", "kind", "year"], page_size=2),
                           EVERYTHING)
    facets = {name: [(b.value, b.count) for b in buckets] for name, buckets in result.facets.items()}
    assert facets == {
        "category": [("TQ", 6)],
        "branch": [("BR01", 3), ("BR02", 2), ("BR03", 1)],
        "kind": [("item", 5), ("case", 1)],
        "year": [("2025", 5), ("2024", 1)],
    }
    assert result.total == 6 and len(result.hits) == 2


VISIBILITY_CASES = [
    ("one branch", Visibility(frozenset({"BR01"}), frozenset({"case", "item"})), {"text": "提取"}, [13, 11, 1]),
    ("two branches", Visibility(frozenset({"BR02", "BR03"}), frozenset({"case", "item"})), {}, [12, 10, 9, 6, 5, 2]),
    ("filed items only", Visibility(None, frozenset({"item"})), {"filters": {"status": ["open"]}}, []),
    ("filed items only, by name", Visibility(None, frozenset({"item"})), {"text": "张三"}, [13, 1]),
    ("no branch at all", Visibility(frozenset(), frozenset({"case", "item"})), {}, []),
    ("key outside the caller's branch", Visibility(frozenset({"BR02"}), frozenset({"case", "item"})),
     {"keys": {"id_number": ID_ZHANG_SAN}}, []),
    ("filter cannot widen visibility", Visibility(frozenset({"BR01"}), frozenset({"case", "item"})),
     {"filters": {"branch": ["BR02"]}}, []),
]


@pytest.mark.parametrize(("visibility", "query", "expected"), [c[1:] for c in VISIBILITY_CASES],
                         ids=[c[0] for c in VISIBILITY_CASES])
def test_visibility_is_applied_inside_the_index(loaded: SearchIndex, visibility: Visibility, query: dict[str, Any],
                                                expected: list[int]) -> None:
    """Given a caller limited to branches or to filed items, When searching, Then nothing else comes back."""
    result = loaded.search(SearchQuery(page_size=100, **query), visibility)
    assert [h.serial for h in result.hits] == serials(*expected)
    assert result.total == len(expected)


def test_facets_count_only_what_the_caller_may_see(loaded: SearchIndex) -> None:
    """Given a BR01 caller, When asking for branch facets, Then only BR01 is counted."""
    result = loaded.search(SearchQuery(facets=["branch", "category"]),
                           Visibility(frozenset({"BR01"}), frozenset({"case", "item"})))
    assert [(b.value, b.count) for b in result.facets["branch"]] == [("BR01", 7)]
    assert [(b.value, b.count) for b in result.facets["category"]] == [("TQ", 3), ("DK", 2), ("GJ", 1), ("ZJ", 1)]


SORT_CASES = [
    ("accepted_at", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    ("-closed_at", [13, 12, 11, 9, 8, 7, 5, 4, 2, 1, 10, 6, 3]),  # open cases (no date) last
    ("expiry_date", [3, 6, 7, 10, 12, 8, 1, 2, 4, 5, 9, 11, 13]),  # no expiry first, then by date, then id
]


@pytest.mark.parametrize(("sort", "expected"), SORT_CASES, ids=[c[0] for c in SORT_CASES])
def test_cursor_pages_through_every_hit_once_in_order(loaded: SearchIndex, sort: str, expected: list[int]) -> None:
    """Given the corpus, When paging 5 at a time with the cursor, Then all hits come once, in sort order."""
    seen, cursor, pages = [], None, 0
    while True:
        result = loaded.search(SearchQuery(sort=sort, page_size=5, cursor=cursor), EVERYTHING)
        assert result.total == 13
        seen += [h.serial for h in result.hits]
        pages += 1
        cursor = result.next_cursor
        if cursor is None:
            break
    assert seen == serials(*expected)
    assert pages == 3


def test_relevance_pages_cover_the_hits_without_repeats(loaded: SearchIndex) -> None:
    """Given the corpus, When paging 提取 by relevance 4 at a time, Then the pages hold each hit exactly once."""
    seen, cursor = [], None
    while True:
        result = loaded.search(SearchQuery(text="提取", sort="relevance", page_size=4, cursor=cursor), EVERYTHING)
        seen += [h.serial for h in result.hits]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == serials(1, 2, 5, 6, 11, 13)


def test_hits_carry_the_stored_fields_unmasked(loaded: SearchIndex) -> None:
    """Given the corpus, When fetching one document, Then every stored field round-trips (masking is the API's job)."""
    hit = loaded.search(SearchQuery(keys={"serial": serial(2)}), EVERYTHING).hits[0]
    expected = replace(corpus()[1], text="")
    assert hit == expected
    assert hit.applicant_id_number == ID_OUYANG and hit.amount == Decimal("150000.50")


def test_upsert_replaces_by_serial_and_is_idempotent(fresh: SearchIndex) -> None:
    """Given the corpus, When a document is upserted changed and then again, Then it is replaced, not doubled."""
    changed = replace(corpus()[4], applicant_name="李小四", text="李小四 租房提取 提取", branch="BR09")
    assert fresh.upsert([changed]) == {}
    assert fresh.upsert([changed]) == {}
    fresh.refresh()
    assert fresh.count() == 13
    assert _serials(fresh, text="李四") == []
    assert _serials(fresh, text="小四") == serials(5)
    assert _serials(fresh, filters={"branch": ["BR03"]}) == serials(10)


def test_delete_removes_documents_and_ignores_unknown_serials(fresh: SearchIndex) -> None:
    """Given the corpus, When deleting a serial and one never indexed, Then only that document is gone."""
    fresh.delete([serial(4), "YW-NEVER-INDEXED"])
    fresh.refresh()
    assert fresh.count() == 12
    assert _serials(fresh, keys={"uscc": USCC_KEJI}) == []
    assert _serials(fresh, text="科技") == []


def test_rebuild_switches_to_exactly_the_new_documents(fresh: SearchIndex) -> None:
    """Given the corpus, When rebuilding from three documents, Then the index holds exactly those three."""
    ticks: list[int] = []
    assert fresh.rebuild(corpus()[:3], progress=ticks.append) == 3
    fresh.refresh()
    assert sum(ticks) == 3
    assert fresh.count() == 3
    assert _serials(fresh, text="提取") == serials(2, 1)
    assert fresh.upsert([corpus()[12]]) == {}  # writes go to the new index
    fresh.refresh()
    assert _serials(fresh, text="提取") == serials(13, 2, 1)


def test_health_reports_the_backend_and_document_count(loaded: SearchIndex) -> None:
    """Given the corpus, When asking for health, Then the backend and its 13 documents are reported."""
    info = loaded.health()
    assert info["backend"] == loaded.backend and info["documents"] == 13
