"""Login throttling: accounts lock after consecutive wrong passwords, addresses after many failures; all audited,
held in the catalogue (shared by every API process), and lifted by an administrator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from archive.api.app import create_app
from archive.catalogue.models import AuditEvent, LoginLock
from archive.catalogue.types import utcnow
from archive.cli import app as cli_app
from archive.context import Context
from tests.helpers import PASSWORD, add_user, login

WRONG = "wrong-password"


@pytest.fixture
def throttled(ctx: Context) -> Context:
    ctx.settings = ctx.settings.model_copy(update={"login_max_failures": 3, "login_lock_minutes": 15,
                                                   "login_max_failures_per_address": 50})
    return ctx


@pytest.fixture
def client(throttled: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context=throttled), raise_server_exceptions=False) as c:
        yield c


def attempt(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def events(ctx: Context, *actions: str) -> list[tuple[str, str | None, dict[str, Any]]]:
    with ctx.catalogue.sessions() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action.in_(actions)).order_by(AuditEvent.seq))
        return [(e.action, e.target_id, e.detail) for e in rows]


def test_wrong_passwords_lock_the_account_even_against_the_right_one(throttled: Context, client: TestClient) -> None:
    """Given ARCHIVE_LOGIN_MAX_FAILURES=3, When a clerk's password is wrong three times and then right, Then the
    first two are 401, the third and the right one 429 account_locked with Retry-After and a Chinese message
    saying when to retry; each failure and the lock are audited with the address, never the password."""
    add_user(throttled, "clerk01", ["clerk"])
    answers = [attempt(client, "clerk01", WRONG) for _ in range(3)] + [attempt(client, "clerk01", PASSWORD)]
    assert [(r.status_code, r.json()["code"]) for r in answers] == [
        (401, "bad_credentials"), (401, "bad_credentials"), (429, "account_locked"), (429, "account_locked")]
    locked = answers[-1]
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "锁定" in locked.json()["message"] and "系统管理员" in locked.json()["message"]
    assert locked.json()["detail"]["retry_after"] == int(locked.headers["retry-after"])
    found = events(throttled, "auth.login", "auth.login.failed", "auth.account.locked")
    assert [(a, t, d.get("code")) for a, t, d in found] == [
        ("auth.login.failed", "clerk01", "bad_credentials"), ("auth.login.failed", "clerk01", "bad_credentials"),
        ("auth.login.failed", "clerk01", "bad_credentials"), ("auth.account.locked", "clerk01", None),
        ("auth.login.failed", "clerk01", "account_locked")]
    assert all(d["address"] == "testclient" for _, _, d in found)
    assert found[3][2]["failures"] == 3
    assert WRONG not in str(found) and PASSWORD not in str(found)


def test_an_unknown_user_name_gets_the_same_answers_as_a_known_one(throttled: Context, client: TestClient) -> None:
    """Given one existing and one unknown user name, When each gets four wrong passwords, Then the answers (codes,
    statuses, messages but for the time) are the same: the lock does not reveal whether an account exists."""
    add_user(throttled, "clerk01", ["clerk"])
    known = [attempt(client, "clerk01", WRONG) for _ in range(4)]
    unknown = [attempt(client, "nobody", WRONG) for _ in range(4)]
    assert [(r.status_code, r.json()["code"]) for r in known] == [(r.status_code, r.json()["code"]) for r in unknown]
    assert unknown[-1].status_code == 429 and "retry-after" in unknown[-1].headers


def test_the_lock_ends_after_the_lock_time_and_a_success_clears_the_count(throttled: Context,
                                                                         client: TestClient) -> None:
    """Given a locked account, When its lock time has passed, Then the right password logs in; And the count starts
    again from zero, so two more wrong passwords do not lock it."""
    add_user(throttled, "clerk01", ["clerk"])
    for _ in range(3):
        attempt(client, "clerk01", WRONG)
    with throttled.catalogue.session() as s:  # the clock moves on: the lock ended a second ago
        s.execute(update(LoginLock).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert attempt(client, "clerk01", PASSWORD).status_code == 200
    assert [attempt(client, "clerk01", WRONG).status_code for _ in range(2)] == [401, 401]
    assert attempt(client, "clerk01", PASSWORD).status_code == 200


def test_two_api_processes_over_one_catalogue_share_the_lock(throttled: Context) -> None:
    """Given two separately built contexts and apps over one catalogue, When an account is locked through the first,
    Then the second refuses its right password; And when an administrator unlocks it through the second, the first
    lets it log in, the unlock audited with the administrator's name."""
    add_user(throttled, "clerk01", ["clerk"])
    add_user(throttled, "admin01", ["admin"])
    other = Context.build(throttled.settings)
    try:
        with TestClient(create_app(context=throttled)) as one, TestClient(create_app(context=other)) as two:
            admin = login(two, "admin01")
            assert [attempt(one, "clerk01", WRONG).status_code for _ in range(3)] == [401, 401, 429]
            assert attempt(two, "clerk01", PASSWORD).json()["code"] == "account_locked"
            users = {u["username"]: u for u in two.get("/api/v1/users", headers=admin).json()}
            assert users["clerk01"]["locked_until"] is not None and users["admin01"]["locked_until"] is None
            r = two.post("/api/v1/users/clerk01/unlock", headers=admin)
            assert r.status_code == 200 and r.json()["locked_until"] is None
            assert attempt(one, "clerk01", PASSWORD).status_code == 200
    finally:
        other.close()
    unlocked = events(throttled, "auth.account.unlocked")
    assert len(unlocked) == 1 and unlocked[0][1] == "clerk01" and unlocked[0][2]["failures"] == 3
    with throttled.catalogue.sessions() as s:
        actor = s.scalar(select(AuditEvent.actor).where(AuditEvent.action == "auth.account.unlocked"))
    assert actor == "admin01"


def test_concurrent_wrong_passwords_lock_once(throttled: Context) -> None:
    """Given eight wrong passwords for one name at the same moment (separate connections), When they are counted,
    Then every one is refused and audited, and the name is locked exactly once after exactly three failures."""
    import threading

    from archive import logins
    from archive.errors import ArchiveError

    add_user(throttled, "clerk01", ["clerk"])
    start, codes = threading.Barrier(8), []

    def one() -> None:
        start.wait()
        try:
            logins.login(throttled, "clerk01", WRONG, address="10.0.0.9", via="api", hours=1)
        except ArchiveError as exc:
            codes.append(exc.code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(codes) == 8 and set(codes) <= {"bad_credentials", "account_locked"} and "account_locked" in codes
    assert len(events(throttled, "auth.login.failed")) == 8
    assert len(events(throttled, "auth.account.locked")) == 1
    with throttled.catalogue.sessions() as s:
        lock = s.get(LoginLock, "clerk01")
        assert lock is not None and lock.failures == 3 and lock.locked_until is not None


def test_unlock_needs_the_administrator_and_names_an_existing_user(throttled: Context, client: TestClient) -> None:
    """Given a clerk and an administrator, When the clerk asks to unlock, Then 403; When the administrator unlocks
    an unknown name, Then 404 user_not_found; When the account is not locked, Then 200 and nothing is audited."""
    add_user(throttled, "clerk01", ["clerk"])
    add_user(throttled, "admin01", ["admin"])
    r = client.post("/api/v1/users/admin01/unlock", headers=login(client, "clerk01"))
    assert r.status_code == 403 and r.json()["code"] == "permission_denied"
    admin = login(client, "admin01")
    r = client.post("/api/v1/users/nobody/unlock", headers=admin)
    assert r.status_code == 404 and r.json()["code"] == "user_not_found"
    assert client.post("/api/v1/users/clerk01/unlock", headers=admin).status_code == 200
    assert events(throttled, "auth.account.unlocked") == []


def test_one_address_is_throttled_after_many_failures_across_names(throttled: Context) -> None:
    """Given ARCHIVE_LOGIN_MAX_FAILURES_PER_ADDRESS=4, When one address fails four times under four names, Then its
    next attempt, even a right password, is 429 login_throttled with Retry-After; another address still logs in."""
    throttled.settings = throttled.settings.model_copy(update={"login_max_failures_per_address": 4})
    add_user(throttled, "clerk01", ["clerk"])
    app = create_app(context=throttled)
    with TestClient(app, client=("10.0.0.7", 50000)) as bad, TestClient(app, client=("10.0.0.8", 50000)) as good:
        assert [attempt(bad, f"guess{n}", WRONG).status_code for n in range(4)] == [401] * 4
        r = attempt(bad, "clerk01", PASSWORD)
        assert r.status_code == 429 and r.json()["code"] == "login_throttled"
        assert 0 < int(r.headers["retry-after"]) <= 15 * 60 and "分钟后重试" in r.json()["message"]
        assert attempt(good, "clerk01", PASSWORD).status_code == 200
    refused = [d for a, _, d in events(throttled, "auth.login.failed") if d["code"] == "login_throttled"]
    assert refused == [{"via": "api", "address": "10.0.0.7", "code": "login_throttled"}]


def test_cli_logins_count_towards_the_lock_and_the_cli_unlocks(throttled: Context, client: TestClient,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Given the CLI over the same catalogue, When `--user` is given wrong passwords three times, Then the account is
    locked for the API too; And `archive user unlock NAME` lifts it."""
    add_user(throttled, "archivist", ["archivist"])
    monkeypatch.setenv("ARCHIVE_DATA_DIR", str(throttled.settings.data_dir))
    monkeypatch.setenv("ARCHIVE_DATABASE_URL", throttled.catalogue.url)
    monkeypatch.setenv("ARCHIVE_LOGIN_MAX_FAILURES", "3")
    runner = CliRunner()
    codes = [runner.invoke(cli_app, ["appraisal", "queue", "--user", "archivist", "--password", WRONG]).output
             for _ in range(3)]
    assert "bad_credentials" in codes[0] and "account_locked" in codes[2], codes
    assert attempt(client, "archivist", PASSWORD).json()["code"] == "account_locked"
    r = runner.invoke(cli_app, ["user", "unlock", "archivist"])
    assert r.exit_code == 0 and "已解除" in r.output, r.output
    assert attempt(client, "archivist", PASSWORD).status_code == 200
    assert [d.get("via") for _, _, d in events(throttled, "auth.login.failed")] == ["cli", "cli", "cli", "api"]
