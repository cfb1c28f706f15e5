"""Observability: /metrics (content, protection, bounded labels, multiprocess mode), JSON logs without personal
data, request ids in headers, error bodies and the UI's error page."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from archive import logs, metrics
from archive.api.app import create_app
from archive.context import _UNSET, Context
from tests.factories import ID, file_case
from tests.helpers import add_client, add_user

LOCAL = ("127.0.0.1", 50000)


@pytest.fixture
def local(ctx: Context) -> Iterator[TestClient]:
    """The API as seen from the loopback address (TestClient's default address is not an IP)."""
    with TestClient(create_app(context=ctx), client=LOCAL, raise_server_exceptions=False) as c:
        yield c


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_a_filing(ctx: Context, local: TestClient) -> None:
    """Given the API, When a case is uploaded and filed, Then /metrics counts the filing by outcome and 类别, the
    render/sign/store stage histograms have samples, upload bytes grew, the request counter has the route
    template, and the catalogue gauges (outbox backlog, index lag, sweep) are there."""
    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    before = samples(local)
    file_case(local, core)
    after = samples(local)
    category = ctx.schedule.business_type("TQ01").category
    assert value(after, "archive_filings_total", outcome="filed", category=category) == \
        value(before, "archive_filings_total", outcome="filed", category=category) + 1
    for stage in ("render", "sign", "store"):
        assert value(after, "archive_filing_stage_duration_seconds_count", stage=stage) >= \
            value(before, "archive_filing_stage_duration_seconds_count", stage=stage) + 1, stage
    assert value(after, "archive_upload_bytes_total", kind="document") > \
        value(before, "archive_upload_bytes_total", kind="document")
    route = "/api/v1/cases/{serial}/close"
    assert value(after, "archive_http_requests_total", method="POST", route=route, status="2xx") >= 1
    assert value(after, "archive_http_request_duration_seconds_count", method="POST", route=route, status="2xx") >= 1
    assert value(after, "archive_index_outbox_pending") >= 1  # no worker runs in this test
    assert value(after, "archive_index_lag_seconds") >= 0
    assert value(after, "archive_catalogue_up") == 1
    assert ("archive_sweep_running", ()) in after


def test_timestamp_stage_and_tsa_errors(ctx: Context, local: TestClient) -> None:
    """Given a TSA, When a case is filed, Then the timestamp stage has a sample; And a TSA that is down counts
    archive_tsa_errors_total{code="tsa_unreachable"} and the filing counts as error."""
    import socket

    import signing.tsa
    from signing.certificates import DevPki

    core = add_client(ctx, "core", ["cases.write", "data.read", "pii.read"])
    with signing.tsa.LocalTsa(DevPki(ctx.settings.pki_path)) as tsa:
        ctx.settings = ctx.settings.model_copy(update={"tsa_url": tsa.url, "tsa_required": True})
        ctx._timestamper = _UNSET  # rebuilt from the new setting on next use
        before = samples(local)
        file_case(local, core, serial="YW2026010500002")
        after = samples(local)
    assert value(after, "archive_filing_stage_duration_seconds_count", stage="timestamp") > \
        value(before, "archive_filing_stage_duration_seconds_count", stage="timestamp")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    ctx.settings = ctx.settings.model_copy(update={"tsa_url": dead})
    ctx._timestamper = _UNSET
    from tests.factories import CLOSE, complete_case

    complete_case(local, core, "YW2026010500003")
    r = local.post("/api/v1/cases/YW2026010500003/close", json=CLOSE, headers=core)
    assert r.status_code == 503, r.text
    final = samples(local)
    assert value(final, "archive_tsa_errors_total", code="tsa_unreachable") >= \
        value(after, "archive_tsa_errors_total", code="tsa_unreachable") + 1
    category = ctx.schedule.business_type("TQ01").category
    assert value(final, "archive_filings_total", outcome="error", category=category) >= \
        value(after, "archive_filings_total", outcome="error", category=category) + 1


def test_metrics_refused_outside_the_allowed_networks(ctx: Context) -> None:
    """Given the default ARCHIVE_METRICS_ALLOW (loopback), When /metrics is asked from 203.0.113.9, Then 403
    metrics_forbidden with a Chinese message; And once that network is allowed, 200."""
    app = create_app(context=ctx)
    with TestClient(app, client=("203.0.113.9", 40000)) as foreign:
        r = foreign.get("/metrics")
        assert r.status_code == 403
        assert r.json()["code"] == "metrics_forbidden" and "监控指标" in r.json()["message"]
        ctx.settings = ctx.settings.model_copy(update={"metrics_allow": ["203.0.113.0/24"]})
        assert foreign.get("/metrics").status_code == 200
    with TestClient(app, client=("::ffff:203.0.113.7", 40000)) as mapped:
        assert mapped.get("/metrics").status_code == 200  # an IPv4-mapped IPv6 address is its IPv4 address


def _request_series(client: TestClient) -> dict[str, float]:
    """archive_http_requests_total's series (labels → value); the registry is the process's, shared by all tests."""
    lines = [line for line in client.get("/metrics").text.splitlines()
             if line.startswith("archive_http_requests_total{")]
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}


def test_label_cardinality_is_bounded(ctx: Context, local: TestClient) -> None:
    """Given 1,000 requests to distinct item URLs and 1,000 to distinct unknown paths, Then each adds at most one
    series: the route template and (unmatched) with a status class, never a 档号 or a path."""
    reader = add_client(ctx, "portal", ["data.read"])
    before = _request_series(local)
    for n in range(1000):
        local.get(f"/api/v1/items/J001-YW·2026-D30-TQ-{n:06d}", headers=reader)
        local.get(f"/nowhere/{n}")
    after = _request_series(local)
    assert not any("J001-YW" in labels or "/nowhere/" in labels for labels in after)
    grown = {labels: value - before.get(labels, 0.0) for labels, value in after.items()
             if value > before.get(labels, 0.0)}
    items = [labels for labels in grown
             if 'route="/api/v1/items/{archival_code}"' in labels and 'method="GET"' in labels]
    unmatched = [labels for labels in grown if 'route="(unmatched)"' in labels]
    assert len(items) == 1 and grown[items[0]] >= 1000
    assert len(unmatched) == 1 and grown[unmatched[0]] >= 1000
    assert len([labels for labels in set(after) - set(before) if 'route="/metrics"' not in labels]) <= 2


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The JSON log of the process, captured."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("json", "INFO", stream)
    yield stream
    for h in root.handlers[:]:
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])
    logging.getLogger("uvicorn.access").disabled = False


def test_json_access_log_has_no_id_number(ctx: Context, local: TestClient, captured: io.StringIO) -> None:
    """Given JSON logs, When a search by 证件号码 is made (in the query string), Then every log line is JSON with
    ts, level and request_id; the access line names the route template, status, duration and the client; and
    neither the 证件号码 nor the query string appears anywhere."""
    reader = add_client(ctx, "portal", ["data.read", "pii.read"])
    r = local.get("/api/v1/search", params={"id_number": ID}, headers={**reader, "X-Request-ID": "req-42"})
    assert r.status_code in (200, 503), r.text
    logging.getLogger("archive.test").warning("customer %s called from 13800138000", ID)  # an app log, masked
    text = captured.getvalue()
    assert ID not in text and "id_number=" not in text and "13800138000" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"ts", "level", "request_id", "msg"} <= set(line) for line in lines)
    access = [line for line in lines if line.get("kind") == "access"]
    assert access[-1] | {"duration_ms": 0, "ts": ""} == access[-1] | {
        "duration_ms": 0, "ts": "", "request_id": "req-42", "method": "GET", "route": "/api/v1/search",
        "status": r.status_code, "user": "client:portal", "level": "info", "logger": "archive.access"}
    assert isinstance(access[-1]["duration_ms"], float)


def test_request_id_round_trip_in_header_and_error_body(ctx: Context, local: TestClient) -> None:
    """Given X-Request-ID: abc.DEF_1-2, When a request fails (401, 404, 422), Then the response header and the
    error body's request_id are that id; And without one a fresh id is made and the two agree."""
    sent = {"X-Request-ID": "abc.DEF_1-2"}
    for r in (local.get("/api/v1/items/x", headers=sent), local.get("/api/v1/nowhere", headers=sent),
              local.get("/api/v1/search", params={"year": "x"}, headers=sent)):
        assert r.headers["X-Request-ID"] == "abc.DEF_1-2"
        assert r.json()["request_id"] == "abc.DEF_1-2", r.json()
    r = local.get("/api/v1/nowhere")
    assert len(r.headers["X-Request-ID"]) == 16 and r.json()["request_id"] == r.headers["X-Request-ID"]
    assert local.get("/healthz").headers["X-Request-ID"]


@pytest.mark.parametrize("hostile", ["<script>alert(1)</script>", "a" * 65, "id with spaces", "名字", ""])
def test_hostile_request_id_is_replaced(local: TestClient, hostile: str) -> None:
    """Given an X-Request-ID that is too long or has characters outside [A-Za-z0-9._-], Then it is replaced by a
    generated one (never echoed)."""
    r = local.get("/api/v1/nowhere", headers={"X-Request-ID": hostile.encode("utf-8")})
    rid = r.headers["X-Request-ID"]
    assert rid != hostile and len(rid) == 16 and rid.isalnum()
    assert r.json()["request_id"] == rid


def test_internal_error_carries_the_request_id(ctx: Context, captured: io.StringIO) -> None:
    """Given an unexpected exception, Then the 500 body and header carry the request id the caller sent; And the
    application's own log line about it (written by the 500 handler) carries the same id, as JSON."""
    def boom() -> None:
        raise RuntimeError("boom")

    app = create_app(context=ctx)
    app.router.add_api_route("/boom", boom)
    app.router.add_api_route("/ui/boom", boom)
    with TestClient(app, client=LOCAL, raise_server_exceptions=False) as c:
        page = c.get("/ui/boom", headers={"X-Request-ID": "trace-ui-500"})
        r = c.get("/boom", headers={"X-Request-ID": "trace-500"})
    assert page.status_code == 500 and "trace-ui-500" in page.text  # the UI's error page, small
    assert page.headers["X-Request-ID"] == "trace-ui-500"
    assert r.status_code == 500 and r.json()["request_id"] == "trace-500"
    assert r.headers["X-Request-ID"] == "trace-500"
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    error = [line for line in lines if line["logger"] == "archive.api" and line["level"] == "error"]
    assert [e["request_id"] for e in error] == ["trace-ui-500", "trace-500"] and "RuntimeError: boom" in error[1]["exc"]


def test_ui_error_page_shows_the_request_id(ctx: Context, local: TestClient) -> None:
    """Given a person logged into the UI, When a page is not found, Then the error page shows the request id."""
    from tests.web.html import UiClient

    add_user(ctx, "arch", ["archivist"], "BR01")
    person = UiClient(local)
    person.login("arch")
    page = person.get("/ui/items/J001-nope", headers={"X-Request-ID": "ui-req-7"})
    assert page.status_code == 404
    assert "ui-req-7" in page.text and "请求编号" in page.text


def test_login_failures_and_locks_are_counted(ctx: Context, local: TestClient) -> None:
    """Given login_max_failures wrong passwords, Then login failures and one account lock are counted."""
    add_user(ctx, "clerk9", ["clerk"])
    before = samples(local)
    for _ in range(ctx.settings.login_max_failures):
        local.post("/api/v1/auth/login", json={"username": "clerk9", "password": "wrong-password"})
    after = samples(local)
    failed = sum(v for (name, _), v in after.items() if name == "archive_login_failures_total") - \
        sum(v for (name, _), v in before.items() if name == "archive_login_failures_total")
    assert failed == ctx.settings.login_max_failures
    assert value(after, "archive_account_locks_total") == value(before, "archive_account_locks_total") + 1


def test_object_store_errors_are_counted_by_operation_and_code() -> None:
    """Given a store whose backend is unavailable, Then its errors are counted by operation and code; a missing
    object (an answer, not a fault) is not."""
    from storage.errors import StorageNotFound, StorageUnavailable

    class Down:
        def stat(self, key: str) -> None:
            raise StorageNotFound("无此对象", code="object_not_found")

        def put(self, key: str, *_: object, **__: object) -> None:
            raise StorageUnavailable("对象存储不可用", code="storage_unavailable")

    store = metrics.instrument_store(Down())
    before = metrics.STORE_ERRORS.labels("put", "storage_unavailable")._value.get()
    with pytest.raises(StorageUnavailable):
        store.put("k")
    with pytest.raises(StorageNotFound):
        store.stat("k")
    assert metrics.STORE_ERRORS.labels("put", "storage_unavailable")._value.get() == before + 1
    assert ("stat", "object_not_found") not in {k for k in metrics.STORE_ERRORS._metrics}


def test_multiprocess_mode_sums_the_processes(tmp_path: Path) -> None:
    """Given PROMETHEUS_MULTIPROC_DIR, When two processes count, Then a scrape in a third reports their sum."""
    directory = tmp_path / "prom"
    metrics.prepare_multiprocess_dir(directory)
    os.environ.pop(metrics.MULTIPROC_ENV)  # prepare sets it for this process; the children get it explicitly
    env = {**os.environ, metrics.MULTIPROC_ENV: str(directory)}
    count = "from archive import metrics; metrics.uploaded('scan', 1000)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True, timeout=120)
    scrape = "import sys; from archive import metrics; sys.stdout.write(metrics.render().decode())"
    text = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, capture_output=True, text=True,
                          timeout=120).stdout
    assert 'archive_upload_bytes_total{kind="scan"} 2000.0' in text


def test_gd_failures_by_item_code_and_sweep_progress(ctx: Context, local: TestClient) -> None:
    """Given a saved 四性检测 report with a failed and a passed item, Then only the failed item's code is counted
    (by stage); And the latest storage sweep's progress is reported from the catalogue."""
    from archive.audit import Actor
    from archive.catalogue.models import StorageSweep
    from archive.checks.base import REGISTRY, Outcome, Result, Stage
    from archive.checks.reports import save_report

    failed, passed = sorted(code for code in REGISTRY if code.startswith("GD-"))[:2]
    before = samples(local)
    with ctx.catalogue.session() as s:
        save_report(s, Actor.system("test"), Stage.FILING, "YW1", [
            (REGISTRY[failed], Result(Outcome.FAILED, "坏了")), (REGISTRY[passed], Result(Outcome.PASSED))])
        s.add(StorageSweep(scope="primary", tier="all", status="running", object_count=1234, byte_count=5678,
                           findings=2, options={}, tally={}, started_by="test"))
    after = samples(local)
    assert value(after, "archive_check_failures_total", stage="gd", code=failed) == \
        value(before, "archive_check_failures_total", stage="gd", code=failed) + 1
    assert value(after, "archive_check_failures_total", stage="gd", code=passed) == \
        value(before, "archive_check_failures_total", stage="gd", code=passed)
    assert value(after, "archive_sweep_running") == 1
    assert (value(after, "archive_sweep_objects_checked"), value(after, "archive_sweep_bytes_read"),
            value(after, "archive_sweep_findings")) == (1234, 5678, 2)
    assert value(after, "archive_sweep_last_checkpoint_timestamp_seconds") > 1.7e9


def test_log_settings_and_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given ARCHIVE_LOG_FORMAT=auto, Then json unless on a terminal; an explicit format wins; the level is read in
    any case; And configure() turns uvicorn's own access log off (we write ours)."""
    from archive.settings import load_settings

    auto = load_settings()
    assert (auto.log_format_in_use(terminal=False), auto.log_format_in_use(terminal=True)) == ("json", "text")
    monkeypatch.setenv("ARCHIVE_LOG_FORMAT", "JSON")
    monkeypatch.setenv("ARCHIVE_LOG_LEVEL", "warning")
    chosen = load_settings()
    assert chosen.log_format_in_use(terminal=True) == "json" and chosen.log_level == "WARNING"
    monkeypatch.setenv("ARCHIVE_LOG_FORMAT", "xml")
    with pytest.raises(Exception, match="ARCHIVE_LOG_FORMAT"):
        load_settings()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        stream = io.StringIO()
        logs.configure("text", "WARNING", stream)
        assert logging.getLogger("uvicorn.access").disabled and root.level == logging.WARNING
        token = logs.request_id.set("txt-1")
        logging.getLogger("archive.x").warning("card 6222020200112233445 seen")
        logs.request_id.reset(token)
        assert "[txt-1]" in stream.getvalue() and "6222020200112233445" not in stream.getvalue()
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.getLogger("uvicorn.access").disabled = False
