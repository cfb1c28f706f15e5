"""The Elasticsearch backend without a server: template, analysis, query translation, the requests it
sends (to a scripted fake transport), and a cluster that is down. The live run is the contract suite."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig, Transport
from elasticsearch import Elasticsearch

from search.base import Range, SearchQuery, Visibility, encode_cursor
from search.elasticsearch import ElasticsearchIndex, from_source, index_template, to_dsl, to_source
from search.embedded import to_fields
from search.errors import SearchUnavailable
from tests.search.support import BJ, corpus, serial

EVERYTHING = Visibility.everything()


def test_template_is_strict_with_keyword_keys_and_the_shared_cjk_analysis() -> None:
    """Given the prefix, When building the index template, Then mappings are strict, keys are keywords,
    text uses the whitespace analyzer over pre-analysed CJK terms, and one shard keeps counts exact."""
    body = index_template("hpf")
    assert body["index_patterns"] == ["hpf-items-*"]
    mappings, settings = body["template"]["mappings"], body["template"]["settings"]
    assert mappings["dynamic"] == "strict"
    props = mappings["properties"]
    for key in ("serial", "archival_code", "applicant_id_number", "unit_uscc", "loan_contract_no", "branch"):
        assert props[key] == {"type": "keyword"}
    assert props["tokens"]["analyzer"] == "archive_cjk_tokens"
    assert settings["analysis"]["analyzer"]["archive_cjk_tokens"] == {"type": "custom", "tokenizer": "whitespace"}
    assert props["sort_accepted_at"] == {"type": "unsigned_long"}
    assert mappings["_source"] == {"excludes": ["tokens"]}
    assert settings["number_of_shards"] == 1


def test_both_backends_index_the_same_terms_for_a_document() -> None:
    """Given a corpus document, When converted for each backend, Then the analysed terms are identical."""
    doc = corpus()[1]
    assert to_source(doc)["tokens"] == to_fields(doc)["tokens"]
    assert "娜娜" in to_source(doc)["tokens"].split()


def test_source_round_trips_to_the_same_document() -> None:
    """Given a corpus document, When written as _source and read back, Then it is the same document minus text."""
    for doc in corpus():
        back = from_source(json.loads(json.dumps(to_source(doc))))
        doc.text = ""
        assert back == doc


def test_query_translation_puts_visibility_keys_filters_and_ranges_in_filter_context() -> None:
    """Given a full query and a BR01 caller, When translated, Then filters do not score and text terms do."""
    q = SearchQuery(text="提取 -张三", keys={"id_number": "11010519880808002x"},
                    filters={"category": ["TQ"], "year": [2025]},
                    ranges={"accepted_at": Range(datetime(2025, 3, 1, tzinfo=BJ)),
                            "amount": Range(Decimal("10.5"), Decimal("100"))},
                    facets=["branch"], sort="-closed_at", page_size=10,
                    cursor=encode_cursor("-closed_at", 42))
    body = to_dsl(q, Visibility(frozenset({"BR01"}), frozenset({"case", "item"})))
    b = body["query"]["bool"]
    assert {"terms": {"branch": ["BR01"]}} in b["filter"]
    assert not any("kind" in f.get("terms", {}) for f in b["filter"])  # both kinds visible: no filter needed
    assert {"term": {"applicant_id_number": "11010519880808002X"}} in b["filter"]
    assert {"terms": {"year": [2025]}} in b["filter"]
    assert {"range": {"accepted_at": {"gte": "2025-02-28T16:00:00Z"}}} in b["filter"]
    assert {"range": {"amount_cents": {"gte": 1050, "lt": 10000}}} in b["filter"]
    assert b["must"] == [{"term": {"tokens": "提取"}}]
    assert b["must_not"] == [{"bool": {"filter": [{"term": {"tokens": "张三"}}]}}]
    assert body["sort"] == [{"sort_closed_at": {"order": "desc"}}]
    assert body["search_after"] == [42]
    assert body["size"] == 11 and body["track_total_hits"] is True
    assert body["aggs"] == {"branch": {"terms": {"field": "branch", "size": 100}}}


def test_relevance_pages_by_offset_and_nothing_visible_matches_nothing() -> None:
    """Given relevance sort with a cursor, Then 'from' is the offset; a caller who may see nothing gets match-none."""
    body = to_dsl(SearchQuery(text="提取", sort="relevance", cursor=encode_cursor("relevance", 40)), EVERYTHING)
    assert body["sort"] == ["_score"] and body["from"] == 40
    items = to_dsl(SearchQuery(text="提取"), Visibility(None, frozenset({"item"})))
    assert items["query"]["bool"]["filter"] == [{"terms": {"kind": ["item"]}}]
    none = to_dsl(SearchQuery(text="提取"), Visibility(frozenset(), frozenset({"item"})))
    assert none["query"] == {"bool": {"must_not": [{"match_all": {}}]}}


class FakeCluster(Transport):
    """Answers the few Elasticsearch APIs the backend uses, recording each request (no network)."""

    def __init__(self) -> None:
        super().__init__([NodeConfig("http", "localhost", 9200)])
        self.requests: list[tuple[str, str, Any]] = []
        self.indices: dict[str, dict[str, Any]] = {}
        self.templates: dict[str, Any] = {}

    def _resolve(self, name: str) -> list[str]:
        return [i for i, v in self.indices.items() if i == name or name in v["aliases"]
                or (name.endswith("*") and i.startswith(name[:-1]))]

    def perform_request(self, method: str, target: str, *, body: Any = None,  # type: ignore[override]
                        **_: Any) -> tuple[Any, Any]:
        path = target.split("?")[0]
        self.requests.append((method, target, body))
        status, out = 200, self._answer(method, path, body)
        if out is None:
            status, out = 404, {"error": {"type": "not_found"}}
        meta = ApiResponseMeta(status=status, http_version="1.1", duration=0.0,
                               headers=HttpHeaders({"x-elastic-product": "Elasticsearch"}),
                               node=NodeConfig("http", "localhost", 9200))
        return meta, out

    def _answer(self, method: str, path: str, body: Any) -> Any:
        if m := re.fullmatch(r"/_index_template/([^/]+)", path):
            self.templates[m[1]] = body
            return {"acknowledged": True}
        if m := re.fullmatch(r"/_alias/([^/]+)", path):
            found = self._resolve(m[1])
            if not found:
                return None
            return {i: {"aliases": {a: {} for a in self.indices[i]["aliases"]}} for i in found}
        if path == "/_bulk":
            return self._bulk(body)
        if path == "/_aliases":
            for action in body["actions"]:
                (op, spec), = action.items()
                aliases = self.indices[spec["index"]]["aliases"]
                aliases.add(spec["alias"]) if op == "add" else aliases.discard(spec["alias"])
            return {"acknowledged": True}
        if path == "/_cluster/health":
            return {"status": "green"}
        if m := re.fullmatch(r"/([^/_][^/]*)/_search", path):
            docs = [d for i in self._resolve(m[1]) for d in self.indices[i]["docs"].values()]
            return {"hits": {"total": {"value": len(docs)}, "hits": [{"_source": d} for d in docs[:body["size"]]]}}
        if m := re.fullmatch(r"/([^/_][^/]*)/_count", path):
            return {"count": sum(len(self.indices[i]["docs"]) for i in self._resolve(m[1]))}
        if re.fullmatch(r"/[^/_][^/]*/(_refresh|_settings)", path):
            return {"acknowledged": True}
        if m := re.fullmatch(r"/([^/_][^/]*)", path):
            if method == "PUT":
                self.indices[m[1]] = {"aliases": set((body or {}).get("aliases", {})), "docs": {},
                                      "settings": (body or {}).get("settings")}
                return {"acknowledged": True, "index": m[1]}
            if method == "DELETE":
                for i in self._resolve(m[1]):
                    del self.indices[i]
                return {"acknowledged": True}
            found = self._resolve(m[1])
            return {i: {} for i in found} if found else {}
        raise AssertionError(f"unexpected request {method} {path}")

    def _bulk(self, lines: list[Any]) -> dict[str, Any]:
        items, it = [], iter(json.loads(line) if isinstance(line, bytes | str) else line for line in lines)
        for action in it:
            (op, meta), = action.items()
            (index,) = self._resolve(meta["_index"])
            docs = self.indices[index]["docs"]
            if op == "index":
                docs[meta["_id"]] = next(it)
                items.append({op: {"_id": meta["_id"], "status": 201}})
            else:
                found = docs.pop(meta["_id"], None) is not None
                items.append({op: {"_id": meta["_id"], "status": 200 if found else 404}})
        return {"errors": False, "items": items}


@pytest.fixture
def fake() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def es(fake: FakeCluster) -> ElasticsearchIndex:
    client = Elasticsearch("http://localhost:9200", _transport=fake)  # type: ignore[arg-type]
    return ElasticsearchIndex("http://localhost:9200", prefix="hpf", refresh="wait_for", client=client)


def test_first_write_installs_the_template_and_a_versioned_index_behind_the_alias(
        es: ElasticsearchIndex, fake: FakeCluster) -> None:
    """Given an empty cluster, When the first documents are written, Then the template, a v1 index with the
    alias, and one bulk request with the serial as _id and the refresh policy are sent."""
    assert es.upsert(corpus()[:2]) == {}
    assert "hpf-items" in fake.templates
    assert fake.indices["hpf-items-v1-initial"]["aliases"] == {"hpf-items"}
    assert set(fake.indices["hpf-items-v1-initial"]["docs"]) == {serial(1), serial(2)}
    bulk = [r for r in fake.requests if r[1].startswith("/_bulk")]
    assert len(bulk) == 1 and "refresh=wait_for" in bulk[0][1]
    assert es.count() == 2


def test_delete_of_a_missing_document_is_not_an_error(es: ElasticsearchIndex, fake: FakeCluster) -> None:
    """Given one indexed document, When deleting it and a serial never indexed, Then no error and it is gone."""
    es.upsert(corpus()[:1])
    es.delete([serial(1), "YW-NEVER"])
    assert fake.indices["hpf-items-v1-initial"]["docs"] == {}


def test_search_parses_hits_back_into_documents(es: ElasticsearchIndex) -> None:
    """Given two indexed documents, When searching, Then hits come back as SearchDocuments with total."""
    es.upsert(corpus()[:2])
    result = es.search(SearchQuery(page_size=1), EVERYTHING)
    assert result.total == 2 and len(result.hits) == 1 and result.next_cursor is not None
    assert result.hits[0].serial == serial(1) and result.hits[0].accepted_at.tzinfo is not None


def test_rebuild_fills_a_new_index_then_moves_the_alias_in_one_call(es: ElasticsearchIndex, fake: FakeCluster) -> None:
    """Given a live index, When rebuilding twice, Then each time a new index gets the documents, the alias
    moves atomically, the previous index is kept and older ones are deleted."""
    es.upsert(corpus()[:1])
    ticks: list[int] = []
    assert es.rebuild(corpus()[:3], progress=ticks.append) == 3
    assert sum(ticks) == 3
    time.sleep(0.002)
    es.rebuild(corpus()[:4])
    live = [i for i, v in fake.indices.items() if "hpf-items" in v["aliases"]]
    assert len(live) == 1 and len(fake.indices[live[0]]["docs"]) == 4
    assert len(fake.indices) == 2  # the live one and the previous one
    swaps = [r[2]["actions"] for r in fake.requests if r[1].startswith("/_aliases")]
    assert all(len(a) == 2 and "remove" in a[0] and "add" in a[1] for a in swaps)
    created = [r for r in fake.requests if r[0] == "PUT" and re.fullmatch(r"/hpf-items-v1-\d.*", r[1])]
    assert created[0][2]["settings"] == {"refresh_interval": "-1"}


def test_a_cluster_that_is_down_is_index_unavailable_quickly() -> None:
    """Given no Elasticsearch listening, When searching or writing, Then SearchUnavailable(index_unavailable)
    names the setting to check, within a second."""
    index = ElasticsearchIndex("http://127.0.0.1:9", retries=0, timeout=1)
    started = time.monotonic()
    for call in (lambda: index.search(SearchQuery(text="提取"), EVERYTHING), lambda: index.upsert(corpus()[:1])):
        with pytest.raises(SearchUnavailable) as caught:
            call()
        assert caught.value.code == "index_unavailable" and caught.value.kind == "unavailable"
        assert "ARCHIVE_ES_URL" in caught.value.message
    assert time.monotonic() - started < 2
    index.close()


def test_dates_are_sent_as_utc_iso_strings() -> None:
    """Given a document accepted at 09:30 Beijing time, When converted, Then Elasticsearch gets 01:30Z."""
    source = to_source(corpus()[1])
    assert source["accepted_at"] == "2025-01-15T01:30:00Z"
    assert source["expiry_date"] == "2056-01-01T00:00:00Z"
    assert datetime.fromisoformat(source["accepted_at"]).astimezone(UTC).hour == 1


class _Version8(FakeCluster):
    """An Elasticsearch 8 server refusing the 9.x client's compatible-with=9 headers."""

    def perform_request(self, method: str, target: str, *, body: Any = None,  # type: ignore[override]
                        **_: Any) -> tuple[Any, Any]:
        meta = ApiResponseMeta(status=400, http_version="1.1", duration=0.0,
                               headers=HttpHeaders({"x-elastic-product": "Elasticsearch"}),
                               node=NodeConfig("http", "localhost", 9200))
        return meta, {"error": {"type": "media_type_header_exception",
                                "reason": "Accept version must be either version 8 or 7, but found 9"}, "status": 400}


def test_an_elasticsearch_8_server_is_reported_as_incompatible_not_as_a_crash() -> None:
    """Given an 8.x server, When the 9.x client talks to it, Then index_unavailable says a 9.x server is needed."""
    client = Elasticsearch("http://localhost:9200", _transport=_Version8())  # type: ignore[arg-type]
    index = ElasticsearchIndex("http://localhost:9200", client=client)
    with pytest.raises(SearchUnavailable) as caught:
        index.search(SearchQuery(text="提取"), EVERYTHING)
    assert caught.value.code == "index_unavailable" and "Elasticsearch 9.x" in caught.value.message
