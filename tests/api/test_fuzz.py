"""Schema fuzzing: every operation of the OpenAPI schema gets generated requests, and none may answer 5xx.

Bounded and deterministic so that it can run in CI: a fixed number of examples per operation, hypothesis
derandomized (the same requests every run), no example database, SQLite only. The catalogue holds the demo data
and the callers are valid users and API clients, so the requests get past authentication into the handlers.
Set ARCHIVE_TEST_FUZZ_EXAMPLES to fuzz harder locally (e.g. 200, with --timeout=0: the suite allows 300 s a test).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from archive.api.app import create_app
from archive.context import Context
from archive.demo import load_demo
from archive.settings import load_settings
from tests.helpers import add_client, add_user, login

EXAMPLES = int(os.environ.get("ARCHIVE_TEST_FUZZ_EXAMPLES", "20"))
CREDENTIALS = {"authorization", "x-api-key"}
SLOW = {  # operations that file, sign, render or package: fewer examples keep the run within CI's budget
    "POST /api/v1/cases/{serial}/close": 4,
    "POST /api/v1/transfers": 3,
    "POST /api/v1/transfer-receipts": 4,
    "POST /api/v1/checks/items/{archival_code}": 3,
    "GET /api/v1/items/{archival_code}/package.eep": 4,
}


@dataclass
class Fuzzed:
    schema: Any
    callers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, pki_template: Path) -> Iterator[Fuzzed]:
    """One app over a demo catalogue on SQLite, shared by every operation (the run is long enough as it is)."""
    from argon2 import PasswordHasher

    from archive import identity
    from archive.commands.common import ensure_fonds

    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    shutil.copyfile(sqlite_template, data / "catalogue.db")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("ARCHIVE_") and not name.startswith("ARCHIVE_TEST_"):
                mp.delenv(name)
        mp.setattr(identity, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        settings = load_settings(data_dir=data, database_url=f"sqlite:///{data / 'catalogue.db'}")
        shutil.copytree(pki_template, settings.pki_path)
        ctx = Context.build(settings)
        ensure_fonds(ctx)
        load_demo(ctx)
        app = create_app(context=ctx)
        add_user(ctx, "fuzz-staff", ["clerk", "archivist", "archive_head"])
        add_user(ctx, "fuzz-admin", ["admin"])
        add_user(ctx, "fuzz-security", ["security_officer"])
        add_user(ctx, "fuzz-auditor", ["auditor"])
        add_user(ctx, "fuzz-leaver", ["clerk"])  # logs out: its token must not be one the others use
        with TestClient(app) as client:
            callers = {name: login(client, f"fuzz-{name}") for name in ("staff", "admin", "security", "auditor",
                                                                             "leaver")}
        callers["system"] = add_client(ctx, "fuzz-system", ["data.read", "images.read", "files.read",
                                                             "cases.write", "pii.read", "events.write"])
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield Fuzzed(schema, callers)
        ctx.close()


def caller_for(method: str, path: str) -> str:
    """The caller whose role the operation is meant for, so that the request reaches the handler."""
    if path == "/api/v1/auth/logout":
        return "leaver"
    if path.startswith(("/api/v1/users", "/api/v1/clients")):
        return "security" if path.endswith("/roles") else "admin"
    if path.startswith("/api/v1/audit"):
        return "auditor"
    if path.startswith(("/api/v1/events", "/api/v1/documents", "/api/v1/cases/lookup")) or (
            path.startswith("/api/v1/items") and method == "GET"):
        return "system"
    return "staff"


def fuzz(op: Any, headers: dict[str, str], count: int) -> Callable[[], int]:
    """A hypothesis run of ``count`` generated requests (valid and invalid) to ``op``; returns how many it sent."""
    sent = 0
    strategy = st.one_of(op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE))

    @settings(max_examples=count, derandomize=True, database=None, deadline=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        for name in [h for h in case.headers or {} if h.lower() in CREDENTIALS]:
            del case.headers[name]  # generated credentials would only test the 401 answers again
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    def counted() -> int:
        run()
        return sent

    return counted


def test_no_operation_answers_5xx(fuzzed: Fuzzed) -> None:
    """Given the demo catalogue and valid callers, When every operation gets generated valid and invalid requests,
    Then no answer is a 5xx (an invalid request is a 4xx with a code, the server stays up)."""
    failures: list[str] = []
    examples = 0
    operations = [r.ok() for r in fuzzed.schema.get_all_operations()]
    assert len(operations) > 60
    for op in operations:
        label = f"{op.method.upper()} {op.path}"
        run = fuzz(op, fuzzed.callers[caller_for(op.method.upper(), op.path)], SLOW.get(label, EXAMPLES))
        try:
            examples += run()
        except (Exception, BaseExceptionGroup) as exc:  # one run reports every operation that fails
            failures.append(f"{label}: {type(exc).__name__}: {exc}")
    print(f"schema fuzzing: {len(operations)} operations, {examples} requests")
    assert examples >= len(operations)
    assert not failures, "\n\n".join(failures)
