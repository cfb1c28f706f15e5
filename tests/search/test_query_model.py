"""Chinese analysis and the query model: what gets indexed, what a query needs, and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from archive.indexing.documents import visibility_of
from archive.permissions import Permission, Principal
from search.analysis import index_tokens, parse_text, word_terms
from search.base import MAX_PAGE_SIZE, Range, SearchDocument, SearchQuery, Visibility, decode_cursor, encode_cursor
from search.errors import SearchInvalid


def test_cjk_text_is_indexed_as_unigrams_and_bigrams_and_latin_as_words() -> None:
    """Given mixed text, When analysed for indexing, Then CJK runs give unigrams+bigrams, Latin/digits whole words."""
    assert index_tokens("公积金") == ["公", "积", "金", "公积", "积金"]
    assert index_tokens("ＤＫ2025号 John") == ["dk2025", "号", "john"]
    assert index_tokens("离休、退休") == ["离", "休", "离休", "退", "休", "退休"]


def test_query_words_need_their_bigrams_or_their_single_character() -> None:
    """Given query words, When turned into terms, Then 1 char → unigram, longer → every bigram."""
    assert word_terms("张") == ["张"]
    assert word_terms("提取") == ["提取"]
    assert word_terms("欧阳娜娜") == ["欧阳", "阳娜", "娜娜"]
    assert word_terms("DK2025号") == ["dk2025", "号"]


def test_query_syntax_groups_words_and_exclusions() -> None:
    """Given spaces, quotes and a minus, When parsed, Then each word is a required group, minus excludes."""
    parsed = parse_text('提取 "抵押 注销" -张三 ，')
    assert parsed.must == (("提取",), ("抵押", "注销"))
    assert parsed.must_not == (("张三",),)


@pytest.mark.parametrize("text", ['"提取', "提取 -", "，。！", "字" * 201, " ".join(["提取"] * 21)],
                         ids=["unbalanced quote", "bare minus", "punctuation only", "too long", "too many words"])
def test_query_syntax_errors_are_invalid_query(text: str) -> None:
    """Given malformed free text, When building a query, Then SearchInvalid(invalid_query) says what is wrong."""
    with pytest.raises(SearchInvalid) as caught:
        SearchQuery(text=text)
    assert caught.value.code == "invalid_query" and caught.value.kind == "invalid"
    assert caught.value.message


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"page_size": MAX_PAGE_SIZE + 1}, "page_size_too_large"),
    ({"page_size": 0}, "invalid_page_size"),
    ({"filters": {"colour": ["red"]}}, "unknown_filter_field"),
    ({"keys": {"mobile": "13800000000"}}, "unknown_filter_field"),
    ({"ranges": {"weight": Range(1, 2)}}, "unknown_filter_field"),
    ({"facets": ["applicant_name"]}, "unknown_facet_field"),
    ({"sort": "applicant_name"}, "invalid_sort"),
    ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ({"cursor": encode_cursor("accepted_at", 5), "sort": "-accepted_at"}, "invalid_cursor"),
    ({"filters": {"year": ["twenty"]}}, "invalid_filter_value"),
    ({"filters": {"kind": ["draft"]}}, "invalid_filter_value"),
    ({"ranges": {"accepted_at": Range(datetime(2025, 2, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))}},
     "invalid_range"),
    ({"ranges": {"accepted_at": Range(datetime(2025, 2, 1))}}, "invalid_range"),
    ({"ranges": {"expiry_date": Range("2030-01-01")}}, "invalid_range"),
    ({"keys": {"serial": " "}}, "invalid_key"),
])
def test_bad_query_input_is_refused_with_a_stable_code(kwargs: dict[str, Any], code: str) -> None:
    """Given one bad part of a query, When building it, Then SearchInvalid carries that part's stable code."""
    with pytest.raises(SearchInvalid) as caught:
        SearchQuery(**kwargs)
    assert caught.value.code == code and caught.value.kind == "invalid"


def test_keys_are_normalised_and_relevance_without_words_falls_back_to_newest_first() -> None:
    """Given a lower-case ID number and sort=relevance with no text, Then the key is upper-cased and sort is default."""
    q = SearchQuery(keys={"id_number": " 11010519880808002x "}, sort="relevance")
    assert q.keys == {"id_number": "11010519880808002X"}
    assert q.sort == "-accepted_at"
    assert SearchQuery(text="提取", sort="relevance").sort == "relevance"
    assert SearchQuery(text="-提取", sort="relevance").sort == "-accepted_at"


def test_cursor_round_trips_and_relevance_depth_is_limited() -> None:
    """Given an encoded cursor, When decoded, Then the position returns; past 10,000 relevance hits it is refused."""
    assert decode_cursor(encode_cursor("-closed_at", 123), "-closed_at") == 123
    with pytest.raises(SearchInvalid) as caught:
        decode_cursor(encode_cursor("relevance", 10_000), "relevance")
    assert caught.value.code == "page_too_deep"


def test_sort_keys_are_unique_and_follow_the_field() -> None:
    """Given two documents at the same second, When computing sort keys, Then the id breaks the tie and a missing
    date sorts first."""
    at = datetime(2025, 1, 1, 9, 0, 0, 700_000, tzinfo=UTC)
    a = SearchDocument(id=1, serial="A", kind="case", category="TQ", business_type="TQ01", business_type_name="x",
                       status="open", branch="B", accepted_at=at, year=2025)
    b = SearchDocument(id=2, serial="B", kind="case", category="TQ", business_type="TQ01", business_type_name="x",
                       status="open", branch="B", accepted_at=at, year=2025, expiry_date=date(2030, 1, 1))
    assert a.accepted_at.microsecond == 0
    assert a.sort_key("accepted_at") < b.sort_key("accepted_at")
    assert a.sort_key("expiry_date") < b.sort_key("expiry_date")
    assert a.sort_key("closed_at") == 1


def test_visibility_follows_branches_and_read_permissions() -> None:
    """Given principals, When deriving visibility, Then branches carry over and item-only readers see items only."""
    clerk = Principal("user", 1, "c", frozenset({Permission.CASE_READ, Permission.ITEM_READ}),
                      branches=frozenset({"BR01"}))
    reader = Principal("client", 2, "r", frozenset({Permission.ITEM_READ}))
    auditor = Principal("user", 3, "a", frozenset({Permission.AUDIT_READ}))
    assert visibility_of(clerk) == Visibility(frozenset({"BR01"}), frozenset({"case", "item"}))
    assert visibility_of(reader) == Visibility(None, frozenset({"item"}))
    assert visibility_of(auditor).nothing


def test_amount_ranges_take_yuan_with_cents() -> None:
    """Given an amount range in yuan, When building the query, Then Decimal bounds are kept exactly."""
    q = SearchQuery(ranges={"amount": Range(Decimal("0.01"), Decimal("100.00"))})
    assert q.ranges["amount"] == Range(Decimal("0.01"), Decimal("100.00"))
