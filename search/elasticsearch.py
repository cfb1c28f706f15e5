"""The Elasticsearch backend: an index template, a versioned index behind an alias, bulk writes.

Names (prefix ``ARCHIVE_ES_INDEX_PREFIX``, default ``archive``): template ``archive-items`` for
indices ``archive-items-*``; the alias ``archive-items`` points at the live ``archive-items-v<schema>-<time>``.
``rebuild`` fills a new index and moves the alias in one atomic ``_aliases`` call, keeping the
previous index for a rollback and deleting older ones.

Text arrives pre-analysed (search/analysis.py: CJK unigrams + bigrams) in the ``tokens`` field, whose
analyzer only splits on whitespace, so Elasticsearch indexes exactly the terms the embedded backend
indexes. Keys are ``keyword`` fields; ``dynamic: strict`` refuses any field the mapping does not name.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch, helpers

from search.analysis import index_text
from search.base import (
    ALL_KINDS,
    DATE_FIELDS,
    FACET_SIZE,
    KEY_FIELDS,
    MAX_RELEVANCE_DEPTH,
    RELEVANCE,
    SORT_FIELDS,
    SearchDocument,
    SearchIndex,
    SearchQuery,
    SearchResult,
    Visibility,
    amount_cents,
    finish,
    flatten,
)
from search.errors import SearchError, SearchUnavailable

SCHEMA_VERSION = 1
ANALYZER = "archive_cjk_tokens"
KEYWORDS = ("serial", "kind", "category", "business_type", "status", "branch", "archival_code", "retention_code",
            "applicant_id_number", "unit_uscc", "loan_contract_no", "applicant_name")
NOT_SEARCHED = ("business_type_name", "unit_name")
DATES = DATE_FIELDS


def mappings() -> dict[str, Any]:
    props: dict[str, Any] = {"id": {"type": "long"}, "year": {"type": "integer"}, "amount_cents": {"type": "long"}}
    props |= {name: {"type": "keyword"} for name in KEYWORDS}
    props |= {name: {"type": "keyword", "index": False, "doc_values": False} for name in NOT_SEARCHED}
    props |= {name: {"type": "date", "format": "strict_date_optional_time"} for name in DATES}
    props |= {f"sort_{name}": {"type": "unsigned_long"} for name in SORT_FIELDS}
    props["tokens"] = {"type": "text", "analyzer": ANALYZER, "index_options": "freqs"}
    return {"dynamic": "strict", "_source": {"excludes": ["tokens"]}, "properties": props}


def settings(refresh_interval: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number_of_shards": 1,  # one shard: exact facet counts and the same BM25 statistics everywhere
        "auto_expand_replicas": "0-1",
        "max_result_window": MAX_RELEVANCE_DEPTH + 200,
        "analysis": {"analyzer": {ANALYZER: {"type": "custom", "tokenizer": "whitespace"}}},
    }
    if refresh_interval is not None:
        out["refresh_interval"] = refresh_interval
    return out


def index_template(prefix: str) -> dict[str, Any]:
    """Body of ``PUT _index_template/<prefix>-items``."""
    return {
        "index_patterns": [f"{prefix}-items-*"],
        "priority": 200,
        "template": {"settings": settings(), "mappings": mappings()},
        "meta": {"schema_version": SCHEMA_VERSION, "owner": "hpf-archive search/"},
    }


def to_source(doc: SearchDocument) -> dict[str, Any]:
    return flatten(doc, (*KEYWORDS, *NOT_SEARCHED), _iso, index_text(doc.text))


def from_source(src: dict[str, Any]) -> SearchDocument:
    def when(name: str) -> datetime | None:
        v = src.get(name)
        return datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(UTC) if v else None

    expiry = when("expiry_date")
    cents = src.get("amount_cents")
    return SearchDocument(
        id=src["id"], serial=src["serial"], kind=src["kind"], category=src["category"],
        business_type=src["business_type"], business_type_name=src.get("business_type_name", ""),
        # the ignore below: accepted_at is always set
        status=src["status"], branch=src["branch"], accepted_at=when("accepted_at"),  # type: ignore[arg-type]
        year=src["year"], archival_code=src.get("archival_code"), retention_code=src.get("retention_code"),
        applicant_name=src.get("applicant_name"), applicant_id_number=src.get("applicant_id_number"),
        unit_name=src.get("unit_name"), unit_uscc=src.get("unit_uscc"), loan_contract_no=src.get("loan_contract_no"),
        closed_at=when("closed_at"), expiry_date=expiry.date() if expiry else None,
        amount=(Decimal(cents) / 100).quantize(Decimal("0.01")) if cents is not None else None,
    )


def _iso(value: date | datetime) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{value:%Y-%m-%d}T00:00:00Z"


def _bound(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "amount":
        return amount_cents(value)
    if isinstance(value, date):
        return _iso(value)
    return value


def to_dsl(query: SearchQuery, visibility: Visibility) -> dict[str, Any]:
    """The search request body for ``query`` as seen by ``visibility`` (tested without a server)."""
    if visibility.nothing:
        bool_query: dict[str, Any] = {"must_not": [{"match_all": {}}]}
    else:
        filters: list[dict[str, Any]] = []
        if visibility.kinds != ALL_KINDS:
            filters.append({"terms": {"kind": sorted(visibility.kinds)}})
        if visibility.branches is not None:
            filters.append({"terms": {"branch": sorted(visibility.branches)}})
        for key, value in query.keys.items():
            filters.append({"term": {KEY_FIELDS[key]: value}})
        for name, values in query.filters.items():
            filters.append({"terms": {name: list(values)}})
        for name, r in query.ranges.items():
            field = "amount_cents" if name == "amount" else name
            bounds = {k: _bound(name, v) for k, v in (("gte", r.gte), ("lt", r.lt)) if v is not None}
            filters.append({"range": {field: bounds}})
        bool_query = {"filter": filters}
        if query.parsed:
            must = [{"term": {"tokens": t}} for group in query.parsed.must for t in group]
            must_not = [{"bool": {"filter": [{"term": {"tokens": t}} for t in group]}}
                        for group in query.parsed.must_not]
            if must:
                bool_query["must"] = must
            if must_not:
                bool_query["must_not"] = must_not
    body: dict[str, Any] = {"query": {"bool": bool_query}, "size": query.page_size + 1, "track_total_hits": True}
    if query.sort == RELEVANCE:
        body["sort"] = ["_score"]
        if query.offset:
            body["from"] = query.offset
    else:
        body["sort"] = [{f"sort_{query.sort_field}": {"order": "desc" if query.descending else "asc"}}]
        if query.after_key is not None:
            body["search_after"] = [query.after_key]
    if query.facets:
        body["aggs"] = {name: {"terms": {"field": name, "size": FACET_SIZE}} for name in query.facets}
    return body


class ElasticsearchIndex(SearchIndex):
    backend = "elasticsearch"
    bulk_prepare = staticmethod(to_source)

    def __init__(self, url: str, *, prefix: str = "archive", username: str = "", password: str = "",
                 ca_file: str | None = None, refresh: bool | str = False, timeout: float = 10.0,
                 retries: int = 2, client: Elasticsearch | None = None) -> None:
        self.url, self.prefix, self.refresh_policy = url, prefix, refresh
        self.alias = self.template = f"{prefix}-items"
        self.client = client or Elasticsearch(
            url, basic_auth=(username, password) if username else None, ca_certs=ca_file,  # type: ignore[arg-type]  # None: no CA bundle
            request_timeout=timeout, max_retries=retries, retry_on_timeout=False)
        self._ready = False

    # --- plumbing -------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run a client call; a cluster that is down or refuses us is SearchUnavailable, with a reason."""
        try:
            return fn()
        except (AuthenticationException, AuthorizationException) as exc:
            raise SearchUnavailable(
                "Elasticsearch 拒绝了访问，请检查 ARCHIVE_ES_USERNAME / ARCHIVE_ES_PASSWORD 及该用户的索引权限",
                code="index_unavailable", detail={"url": self.url, "status": exc.meta.status}) from None
        except TransportError as exc:
            raise SearchUnavailable(
                f"无法连接检索服务 Elasticsearch（{self.url}），请检查 ARCHIVE_ES_URL 与服务状态；归档不受影响，"
                "索引积压将在服务恢复后自动补齐", code="index_unavailable",
                detail={"url": self.url, "reason": type(exc).__name__}) from None
        except ApiError as exc:
            if "media_type_header_exception" in str(exc.message):  # a 9.x client talking to an 8.x server
                raise SearchUnavailable(
                    f"Elasticsearch（{self.url}）的版本与客户端不兼容：elasticsearch 客户端 9.x "
                    "需要 Elasticsearch 9.x 服务",
                    code="index_unavailable", detail={"url": self.url, "status": exc.meta.status}) from None
            if exc.meta.status >= 500 or exc.meta.status == 429:
                raise SearchUnavailable(f"检索服务 Elasticsearch 暂时不可用（HTTP {exc.meta.status}）",
                                         code="index_unavailable",
                                         detail={"url": self.url, "status": exc.meta.status}) from None
            raise SearchError(f"检索服务拒绝了请求（HTTP {exc.meta.status}）：{exc.message}", code="index_error",
                              kind="failed", detail={"status": exc.meta.status, "error": str(exc.body)[:500]}) from None

    def _ensure(self) -> None:
        """Put the template, and create the first index behind the alias if there is none."""
        if self._ready:
            return
        body = index_template(self.prefix)
        self._call(lambda: self.client.indices.put_index_template(name=self.template, **body))
        if not self._call(lambda: self.client.indices.exists_alias(name=self.alias)):
            name = f"{self.prefix}-items-v{SCHEMA_VERSION}-initial"
            try:
                self._call(lambda: self.client.indices.create(index=name, aliases={self.alias: {}}))
            except SearchError as exc:  # another process created it first
                if "resource_already_exists" not in str(exc.detail):
                    raise
        live = self._live_indices()
        if not any(n.startswith(f"{self.prefix}-items-v{SCHEMA_VERSION}-") for n in live):
            raise SearchUnavailable(
                f"Elasticsearch 索引 {', '.join(live)} 的结构版本与程序不符，请运行 `archive index rebuild`",
                code="index_outdated", detail={"alias": self.alias, "indices": live})
        self._ready = True

    def _live_indices(self) -> list[str]:
        return sorted(self._call(lambda: self.client.indices.get_alias(name=self.alias)).body)

    def _bulk(self, actions: Iterable[dict[str, Any]], refresh: bool | str | None = None,
              ignore_status: tuple[int, ...] = ()) -> dict[str, str]:
        """Send actions in chunks of 500 (429s retried with backoff); returns {id: reason} of refused ones."""
        failures: dict[str, str] = {}
        refresh = self.refresh_policy if refresh is None else refresh

        def run() -> None:
            for ok, item in helpers.streaming_bulk(
                    self.client, actions, chunk_size=500, max_retries=3, initial_backoff=1, max_backoff=30,
                    raise_on_error=False, raise_on_exception=True, refresh=refresh):
                result = next(iter(item.values()))
                if not ok and result.get("status") not in ignore_status:
                    failures[str(result.get("_id"))] = str(result.get("error", result.get("status")))[:500]

        self._call(run)
        return failures

    # --- writes ---------------------------------------------------------------------------------

    def upsert(self, docs: Iterable[SearchDocument]) -> dict[str, str]:
        self._ensure()
        actions = ({"_op_type": "index", "_index": self.alias, "_id": d.serial, "_source": to_source(d)} for d in docs)
        return self._bulk(actions)

    def delete(self, serials: Iterable[str]) -> None:
        self._ensure()
        actions = ({"_op_type": "delete", "_index": self.alias, "_id": s} for s in serials)
        self._bulk(actions, ignore_status=(404,))

    def rebuild(self, docs: Iterable[SearchDocument | dict[str, Any]],
                progress: Callable[[int], None] | None = None) -> int:
        self._ensure()
        name = f"{self.prefix}-items-v{SCHEMA_VERSION}-{time.strftime('%Y%m%d%H%M%S')}-{time.time_ns() % 10**6:06d}"
        self._call(lambda: self.client.indices.create(index=name, settings={"refresh_interval": "-1"}))
        counted = 0

        def actions() -> Iterator[dict[str, Any]]:
            nonlocal counted
            for d in docs:
                counted += 1
                if progress is not None and counted % 1000 == 0:
                    progress(1000)
                source = d if isinstance(d, dict) else to_source(d)
                yield {"_op_type": "index", "_index": name, "_id": source["serial"], "_source": source}

        failures = self._bulk(actions(), refresh=False)
        if progress is not None and counted % 1000:
            progress(counted % 1000)
        if failures:
            self._call(lambda: self.client.indices.delete(index=name))
            raise SearchError(f"重建索引时有 {len(failures)} 件文档被拒绝，未切换到新索引",
                               code="index_rebuild_failed", kind="failed", detail=dict(list(failures.items())[:20]))
        self._call(lambda: self.client.indices.put_settings(index=name, settings={"refresh_interval": None}))
        self._call(lambda: self.client.indices.refresh(index=name))
        old = self._live_indices()
        actions_ = [{"remove": {"index": o, "alias": self.alias}} for o in old]
        actions_.append({"add": {"index": name, "alias": self.alias}})
        self._call(lambda: self.client.indices.update_aliases(actions=actions_))
        keep = set(old[-1:]) | {name}
        every = self._call(lambda: self.client.indices.get(index=f"{self.prefix}-items-*")).body
        for stale in sorted(set(every) - keep):
            self._call(functools.partial(self.client.indices.delete, index=stale))
        return counted

    # --- reads ----------------------------------------------------------------------------------

    def search(self, query: SearchQuery, visibility: Visibility) -> SearchResult:
        self._ensure()
        body = to_dsl(query, visibility)
        resp = self._call(lambda: self.client.search(index=self.alias, body=body))
        hits = [from_source(h["_source"]) for h in resp["hits"]["hits"]]
        aggs = resp.get("aggregations", {})
        facets = {name: [(b["key"], b["doc_count"]) for b in aggs.get(name, {}).get("buckets", [])]
                  for name in query.facets}
        return finish(query, resp["hits"]["total"]["value"], hits, facets)

    def count(self) -> int:
        self._ensure()
        return int(self._call(lambda: self.client.count(index=self.alias))["count"])

    def health(self) -> dict[str, Any]:
        self._ensure()
        cluster = self._call(lambda: self.client.cluster.health())
        return {"backend": self.backend, "url": self.url, "alias": self.alias, "indices": self._live_indices(),
                "cluster_status": cluster["status"], "documents": self.count()}

    def refresh(self) -> None:
        self._ensure()
        self._call(lambda: self.client.indices.refresh(index=self.alias))

    def close(self) -> None:
        self.client.close()
