"""Prometheus metrics of the archive (``GET /metrics``): what the process does, and figures read from the catalogue.

Counters and histograms are module globals of the default registry, updated where the work happens (request
middleware, filing, capture, GD reports, logins, the object store and the TSA client). The catalogue figures
(index outbox backlog and lag, progress of the latest storage sweep) are gauges computed at scrape time by
archive.api.observe.CatalogueCollector with a few cheap queries, so every process reports the same values.

Several processes (``archive serve --workers N``): prometheus_client's multiprocess mode. Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory *before* the processes start (``archive serve`` does when it
forks workers); each process then writes its samples to files there and a scrape of any process sums them
(:func:`registry`). Empty the directory at every start (:func:`prepare_multiprocess_dir`), else counters of a
previous run are added in.

Labels never carry identifiers: routes are templates (``/api/v1/items/{archival_code}``), stages, outcomes,
categories and error codes are closed sets.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import REGISTRY, Collector

from archive.errors import PermissionDenied

log = logging.getLogger("archive.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# Latency buckets: requests are mostly tens of ms; filings and uploads take seconds.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

HTTP_REQUESTS = Counter("archive_http_requests", "HTTP requests, by route template, method and status class.",
                        ["method", "route", "status"])
HTTP_DURATION = Histogram("archive_http_request_duration_seconds", "HTTP request latency (until the response "
                          "is sent), by route template, method and status class.", ["method", "route", "status"],
                          buckets=_REQUEST_BUCKETS)
FILINGS = Counter("archive_filings", "Filings (办结归档), by outcome (filed, refused: GD checks failed, "
                  "error: any other refusal or failure) and 类别.", ["outcome", "category"])
FILING_STAGE = Histogram("archive_filing_stage_duration_seconds", "Duration of the filing stages: render "
                         "(PDF/A rendition), sign (PAdES, including the time stamp), timestamp (the TSA round "
                         "trip alone), store (object store put).", ["stage"], buckets=_STAGE_BUCKETS)
UPLOADS = Counter("archive_uploads", "Files accepted into the object store, by kind (document, scan).", ["kind"])
UPLOAD_BYTES = Counter("archive_upload_bytes", "Bytes of files accepted, by kind (document, scan).", ["kind"])
CHECK_FAILURES = Counter("archive_check_failures", "四性检测 results failed or in error, by stage (gd, yj, "
                         "bc) and item code (GD-…, BC-…).", ["stage", "code"])
STORE_ERRORS = Counter("archive_object_store_errors", "Object store operations that raised, by operation and "
                       "error code (object not found is not counted).", ["operation", "code"])
TSA_ERRORS = Counter("archive_tsa_errors", "Time-stamp requests that failed, by code (tsa_unreachable, "
                     "tsa_error).", ["code"])
LOGIN_FAILURES = Counter("archive_login_failures", "Failed logins, by code (invalid_credentials, account_locked, "
                         "login_throttled, …).", ["code"])
ACCOUNT_LOCKS = Counter("archive_account_locks", "User names locked after too many wrong passwords.")

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
UNMATCHED = "(unmatched)"  # a path no route matched: the raw path would be unbounded (and may carry ids)


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "5xx"


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    labels = (method if method in _METHODS else "OTHER", route, status_class(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_DURATION.labels(*labels).observe(seconds)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one filing stage (render, sign, timestamp, store), also when it raises."""
    start = time.perf_counter()
    try:
        yield
    finally:
        FILING_STAGE.labels(name).observe(time.perf_counter() - start)


def uploaded(kind: str, size: int) -> None:
    UPLOADS.labels(kind).inc()
    UPLOAD_BYTES.labels(kind).inc(size)


def filing(outcome: str, category: str | None) -> None:
    FILINGS.labels(outcome, category or "unknown").inc()


def check_failures(stage_name: str, codes: Iterable[str]) -> None:
    for code in codes:
        CHECK_FAILURES.labels(stage_name, code).inc()


def login_failed(code: str) -> None:
    LOGIN_FAILURES.labels(code).inc()


def account_locked() -> None:
    ACCOUNT_LOCKS.inc()


# --- the object store and the TSA client, instrumented where they are built (archive/context.py) -------------

_STORE_OPERATIONS = ("put", "get", "stat", "list_keys", "set_retention", "set_legal_hold", "delete",
                     "extend_retentions")
F = TypeVar("F", bound=Callable[..., Any])


def instrument_store(store: Any) -> Any:
    """Count the errors of ``store``'s operations (on the instance, so isinstance checks still hold)."""
    from storage.errors import StorageError, StorageNotFound

    def counted(operation: str, fn: F) -> F:
        @wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except StorageNotFound:
                raise  # an answer, not a fault (exists() asks this way)
            except StorageError as exc:
                STORE_ERRORS.labels(operation, exc.code).inc()
                raise
            except OSError:
                STORE_ERRORS.labels(operation, "os_error").inc()
                raise

        return call  # type: ignore[return-value]

    for operation in _STORE_OPERATIONS:
        method = getattr(store, operation, None)
        if method is not None:
            setattr(store, operation, counted(operation, method))
    return store


def instrument_timestamper(timestamper: Any) -> Any:
    """Time each time-stamp request (stage ``timestamp``) and count its failures by code."""
    if timestamper is None:
        return None
    from pyhanko.sign.timestamps import TimestampRequestError  # an OSError

    inner = timestamper.async_timestamp

    async def timed(message_digest: Any, md_algorithm: str) -> Any:
        start = time.perf_counter()
        try:
            return await inner(message_digest, md_algorithm)
        except TimestampRequestError as exc:  # as signing.pades.sign_pdf names it
            TSA_ERRORS.labels("tsa_unreachable" if isinstance(exc.__cause__, OSError) else "tsa_error").inc()
            raise
        except OSError:
            TSA_ERRORS.labels("tsa_unreachable").inc()
            raise
        finally:
            FILING_STAGE.labels("timestamp").observe(time.perf_counter() - start)

    timestamper.async_timestamp = timed
    return timestamper


def registry(*extra: Collector) -> CollectorRegistry:
    """What a scrape reports: this process (or, in multiprocess mode, every process) plus ``extra`` collectors
    (the catalogue figures, archive/api/observe.py)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
    else:
        reg = CollectorRegistry()
        reg.register(_Default())
    for collector in extra:
        reg.register(collector)
    return reg


class _Default(Collector):
    """The process's own metrics (default registry), re-exposed in a per-scrape registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def render(*extra: Collector) -> bytes:
    return generate_latest(registry(*extra))


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty (create) the multiprocess directory and point prometheus_client at it; call before the workers
    start and before prometheus_client is first imported in them (it reads the variable at import)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)


# --- who may scrape -------------------------------------------------------------------------------------------

def parse_networks(values: Iterable[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip()]


def require_scraper(host: str | None, allow: Iterable[str]) -> None:
    """Refuse a scrape from outside ARCHIVE_METRICS_ALLOW. A network rule, not a person's permission: there is no
    principal to audit (archive.authorization.require is for those), so it is refused here."""
    if not address_allowed(host, parse_networks(allow)):
        raise PermissionDenied("监控指标只对允许的网络开放（ARCHIVE_METRICS_ALLOW）", code="metrics_forbidden",
                               detail={"setting": "ARCHIVE_METRICS_ALLOW"})


def address_allowed(host: str | None, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the client address ``host`` lies in one of ``networks`` (a non-address, e.g. a Unix socket: no)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)
