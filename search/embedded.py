"""The embedded index: tantivy, in-process, under ``<data_dir>/index``.

Layout: ``CURRENT`` names the live generation, a directory ``v<schema>-<time>`` holding a tantivy
index. ``rebuild`` fills a new generation and then replaces ``CURRENT`` atomically; every process
notices on its next call and reopens, so searches never see a half-built index. The previous
generation is kept until the next rebuild.

Text is analysed by search/analysis.py and indexed with tantivy's whitespace tokenizer, exactly as
the Elasticsearch backend does, so both return the same hits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import tantivy

from search.analysis import index_text
from search.base import (
    ALL_KINDS,
    DATE_FIELDS,
    FACET_SIZE,
    KEY_FIELDS,
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
from search.errors import SearchUnavailable

SCHEMA_VERSION = 1
TOKENIZER = "archive_tokens"
KEYWORDS = ("serial", "kind", "category", "business_type", "status", "branch", "archival_code", "retention_code",
            "applicant_id_number", "unit_uscc", "loan_contract_no")
FAST_KEYWORDS = ("kind", "category", "business_type", "status", "branch", "retention_code")
STORED_ONLY = ("business_type_name", "applicant_name", "unit_name")
DATES = DATE_FIELDS
REBUILD_HEAP_BYTES = 256_000_000  # a rebuild's writer: tantivy flushes a segment each time this fills
REBUILD_THREADS = 1  # one tantivy indexing thread while Python builds documents: two cores; more contend


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    for name in KEYWORDS:
        sb.add_text_field(name, stored=True, fast=name in FAST_KEYWORDS, tokenizer_name="raw")
    for name in STORED_ONLY:
        sb.add_text_field(name, stored=True, tokenizer_name="raw")
    for name in DATES:
        sb.add_date_field(name, stored=True, indexed=True, fast=True)
    sb.add_integer_field("year", stored=True, indexed=True, fast=True)
    sb.add_integer_field("amount_cents", stored=True, indexed=True, fast=True)
    for name in SORT_FIELDS:
        sb.add_unsigned_field(f"sort_{name}", indexed=True, fast=True)
    sb.add_text_field("tokens", stored=False, tokenizer_name=TOKENIZER, index_option="freq")
    return sb.build()


SCHEMA = build_schema()


def _analyzer() -> tantivy.TextAnalyzer:
    return tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build()


def to_fields(doc: SearchDocument) -> dict[str, Any]:
    return flatten(doc, (*KEYWORDS, *STORED_ONLY), _datetime, index_text(doc.text))


def from_fields(d: dict[str, list[Any]]) -> SearchDocument:
    def one(name: str) -> Any:
        values = d.get(name)
        return values[0] if values else None

    expiry = one("expiry_date")
    cents = one("amount_cents")
    return SearchDocument(
        id=one("id"), serial=one("serial"), kind=one("kind"), category=one("category"),
        business_type=one("business_type"), business_type_name=one("business_type_name"), status=one("status"),
        branch=one("branch"), accepted_at=one("accepted_at"), year=one("year"), archival_code=one("archival_code"),
        retention_code=one("retention_code"), applicant_name=one("applicant_name"),
        applicant_id_number=one("applicant_id_number"), unit_name=one("unit_name"), unit_uscc=one("unit_uscc"),
        loan_contract_no=one("loan_contract_no"), closed_at=one("closed_at"),
        expiry_date=expiry.date() if expiry is not None else None,
        amount=(Decimal(cents) / 100).quantize(Decimal("0.01")) if cents is not None else None,
    )


def _datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


# tantivy stores dates as i64 nanoseconds since 1970: a range bound outside them is no bound at all.
_DATE_MIN = datetime(1678, 1, 1, tzinfo=UTC)
_DATE_MAX = datetime(2262, 1, 1, tzinfo=UTC)


def _bound(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "amount":
        return amount_cents(value)
    if isinstance(value, date):
        return min(max(_datetime(value), _DATE_MIN), _DATE_MAX)
    return value


_FIELD_TYPES = {"accepted_at": tantivy.FieldType.Date, "closed_at": tantivy.FieldType.Date,
                "expiry_date": tantivy.FieldType.Date, "year": tantivy.FieldType.Integer,
                "amount": tantivy.FieldType.Integer}


def to_tantivy(query: SearchQuery, visibility: Visibility) -> tantivy.Query:
    """Translate the query model; filters score nothing, only free-text terms are ranked."""
    Q, must, must_not = tantivy.Query, tantivy.Occur.Must, tantivy.Occur.MustNot
    if visibility.nothing:
        return Q.empty_query()
    scored: list[tantivy.Query] = []
    filters: list[tantivy.Query] = []
    if visibility.kinds != ALL_KINDS:
        filters.append(Q.term_set_query(SCHEMA, "kind", sorted(visibility.kinds)))
    excluded: list[tantivy.Query] = []
    if visibility.branches is not None:
        filters.append(Q.term_set_query(SCHEMA, "branch", sorted(visibility.branches)))
    if query.parsed:
        for group in query.parsed.must:
            scored.extend(Q.term_query(SCHEMA, "tokens", t) for t in group)
        for group in query.parsed.must_not:
            excluded.append(Q.boolean_query([(must, Q.term_query(SCHEMA, "tokens", t)) for t in group]))
    for key, value in query.keys.items():
        filters.append(Q.term_query(SCHEMA, KEY_FIELDS[key], value))
    for name, values in query.filters.items():
        filters.append(Q.term_set_query(SCHEMA, name, list(values)))
    for name, r in query.ranges.items():
        field = "amount_cents" if name == "amount" else name
        filters.append(Q.range_query(SCHEMA, field, _FIELD_TYPES[name], _bound(name, r.gte), _bound(name, r.lt),
                                     include_lower=True, include_upper=r.lt is None))  # unbounded sides: inclusive
    if query.after_key is not None:
        field = f"sort_{query.sort_field}"
        if query.descending:
            after = Q.range_query(SCHEMA, field, tantivy.FieldType.Unsigned, None, query.after_key,
                                  include_upper=False)
        else:
            after = Q.range_query(SCHEMA, field, tantivy.FieldType.Unsigned, query.after_key, None,
                                  include_lower=False)
        filters.append(after)
    clauses = [(must, q) for q in scored]
    clauses += [(must, Q.const_score_query(q, 0.0)) for q in filters]
    if not clauses:  # a boolean query needs something that matches; exclusions alone match nothing
        clauses.append((must, Q.all_query()))
    clauses += [(must_not, q) for q in excluded]
    return Q.boolean_query(clauses)


class EmbeddedIndex(SearchIndex):
    backend = "embedded"
    bulk_prepare = staticmethod(to_fields)

    def __init__(self, path: Path, *, heap_bytes: int = 64_000_000, threads: int = 1) -> None:
        self.path = Path(path)
        self.heap_bytes, self.threads = heap_bytes, threads
        self._lock = threading.RLock()
        self._generation: str | None = None
        self._index: tantivy.Index | None = None
        self._writer: tantivy.IndexWriter | None = None

    # --- generations ---------------------------------------------------------------------------

    def _current(self) -> str | None:
        try:
            return (self.path / "CURRENT").read_text(encoding="ascii").strip() or None
        except FileNotFoundError:
            return None

    def _open(self) -> tantivy.Index:
        """The live index, reopened when another process has switched generations."""
        current, index = self._current(), self._index
        if index is not None and current is not None and current == self._generation:
            return index  # fast path: searches do not wait for a writer's commit
        with self._lock:
            current = self._current()
            if current is None:
                current = self._new_generation()
                tantivy.Index(SCHEMA, path=str(self.path / current))
                self._switch_to(current)
            if current != self._generation or self._index is None:
                if not current.startswith(f"v{SCHEMA_VERSION}-"):
                    raise SearchUnavailable(
                        f"嵌入式检索索引 {self.path} 的结构版本与程序不符，请运行 `archive index rebuild` 重建",
                        code="index_outdated", detail={"path": str(self.path), "generation": current})
                self._drop_writer()
                try:
                    index = tantivy.Index.open(str(self.path / current))
                except (ValueError, OSError) as exc:
                    raise SearchUnavailable(
                        f"无法打开嵌入式检索索引 {self.path / current}：{exc}；可运行 `archive index rebuild` 重建",
                        code="index_unavailable", detail={"path": str(self.path)}) from None
                index.register_tokenizer(TOKENIZER, _analyzer())
                self._index, self._generation = index, current
            return self._index

    def _new_generation(self) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        name = f"v{SCHEMA_VERSION}-{time.time_ns()}"
        (self.path / name).mkdir()
        return name

    def _switch_to(self, generation: str) -> None:
        tmp = self.path / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(generation, encoding="ascii")
        os.replace(tmp, self.path / "CURRENT")

    def _writer_for(self, index: tantivy.Index) -> tantivy.IndexWriter:
        if self._writer is None:
            try:
                self._writer = index.writer(heap_size=self.heap_bytes, num_threads=self.threads)
            except ValueError as exc:
                raise SearchUnavailable(
                    "嵌入式检索索引正被另一个进程写入（同一数据目录只能运行一个索引进程："
                    "`archive serve` 自带的索引线程或 `archive worker`，二选一）",
                    code="index_locked", detail={"path": str(self.path), "reason": str(exc)}) from None
        return self._writer

    def _drop_writer(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            with contextlib.suppress(ValueError):
                writer.rollback()
            del writer  # releases the directory lock

    # --- writes --------------------------------------------------------------------------------

    def upsert(self, docs: Iterable[SearchDocument]) -> dict[str, str]:
        failures: dict[str, str] = {}
        with self._lock:
            index = self._open()
            writer = self._writer_for(index)
            for doc in docs:
                try:
                    tdoc = tantivy.Document.from_dict(to_fields(doc), SCHEMA)
                except (ValueError, TypeError) as exc:
                    failures[doc.serial] = f"文档无法写入索引：{exc}"
                    continue
                writer.delete_documents_by_term("serial", doc.serial)
                writer.add_document(tdoc)
            self._commit(index, writer)
        return failures

    def delete(self, serials: Iterable[str]) -> None:
        with self._lock:
            index = self._open()
            writer = self._writer_for(index)
            for serial in serials:
                writer.delete_documents_by_term("serial", serial)
            self._commit(index, writer)

    def _commit(self, index: tantivy.Index, writer: tantivy.IndexWriter) -> None:
        try:
            writer.commit()
        except (ValueError, OSError) as exc:
            self._drop_writer()
            raise SearchUnavailable(f"写入嵌入式检索索引失败：{exc}", code="index_unavailable",
                                     detail={"path": str(self.path)}) from None
        index.reload()

    def rebuild(self, docs: Iterable[SearchDocument | dict[str, Any]],
                progress: Callable[[int], None] | None = None) -> int:
        generation = self._new_generation()
        index = tantivy.Index(SCHEMA, path=str(self.path / generation))
        index.register_tokenizer(TOKENIZER, _analyzer())
        writer = index.writer(heap_size=max(self.heap_bytes, REBUILD_HEAP_BYTES), num_threads=REBUILD_THREADS)
        n = 0
        for doc in docs:
            fields = doc if isinstance(doc, dict) else to_fields(doc)
            writer.add_document(tantivy.Document.from_dict(fields, SCHEMA))
            n += 1
            if progress is not None and n % 1000 == 0:
                progress(1000)
        writer.commit()
        writer.wait_merging_threads()
        if progress is not None and n % 1000:
            progress(n % 1000)
        with self._lock:
            previous = self._current()
            self._switch_to(generation)
            for old in self.path.iterdir():
                if old.is_dir() and old.name not in (generation, previous):
                    shutil.rmtree(old, ignore_errors=True)
            self._open()
        return n

    # --- reads ---------------------------------------------------------------------------------

    def search(self, query: SearchQuery, visibility: Visibility) -> SearchResult:
        index = self._open()
        searcher = index.searcher()
        tq = to_tantivy(query, visibility)
        limit = query.page_size + 1
        if query.sort == RELEVANCE:
            result = searcher.search(tq, limit, count=True, offset=query.offset)
        else:
            order = tantivy.Order.Desc if query.descending else tantivy.Order.Asc
            result = searcher.search(tq, limit, count=True, order_by_field=f"sort_{query.sort_field}", order=order)
        hits = [from_fields(searcher.doc(addr).to_dict()) for _, addr in result.hits]
        total = result.count or 0  # type: ignore[attr-defined]  # tantivy's stub lacks count (set with count=True)
        if query.after_key is not None or query.offset:
            without_cursor = SearchQuery(query.text, query.keys, query.filters, query.ranges, (), query.sort)
            counted = searcher.search(to_tantivy(without_cursor, visibility), 1, count=True)
            total = counted.count or 0  # type: ignore[attr-defined]  # as above
        facets: dict[str, list[tuple[Any, int]]] = {}
        if query.facets:
            base = to_tantivy(SearchQuery(query.text, query.keys, query.filters, query.ranges, (), query.sort),
                              visibility)
            aggs = {name: {"terms": {"field": name, "size": FACET_SIZE}} for name in query.facets}
            raw = searcher.aggregate(base, aggs)
            facets = {name: [(b["key"], b["doc_count"]) for b in raw.get(name, {}).get("buckets", [])]
                      for name in query.facets}
        return finish(query, total, hits, facets)

    def count(self) -> int:
        return self._open().searcher().num_docs

    def health(self) -> dict[str, Any]:
        index = self._open()
        return {"backend": self.backend, "path": str(self.path), "generation": self._generation,
                "documents": index.searcher().num_docs}

    def refresh(self) -> None:
        self._open().reload()

    def close(self) -> None:
        with self._lock:
            self._drop_writer()
            self._index = None
            self._generation = None
