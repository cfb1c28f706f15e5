"""deploy/s3-policy.json: the least-privilege bucket policy for the application's S3 user covers every call S3Store
makes and nothing broader. It names the bucket ``hpf-archive`` and the user ``hpf-archive-app`` (deploy/README.md §5:
the bucket's owner attaches it with put-bucket-policy; edit both names when others are used)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[2]
POLICY = ROOT / "deploy" / "s3-policy.json"
BUCKET, OBJECTS = "arn:aws:s3:::hpf-archive", "arn:aws:s3:::hpf-archive/*"
APP_USER = "arn:aws:iam:::user/hpf-archive-app"

# The S3 actions each minio call of storage/s3.py needs (HEAD returns the lock headers only with the Get*
# lock permissions; calls naming a version id need the *Version actions).
CALLS: dict[str, set[str]] = {
    "bucket_exists": {"s3:ListBucket"},
    "get_object_lock_config": {"s3:GetBucketObjectLockConfiguration"},
    "list_objects": {"s3:ListBucket", "s3:ListBucketVersions"},
    "stat_object": {"s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectRetention", "s3:GetObjectLegalHold"},
    "get_object": {"s3:GetObject", "s3:GetObjectVersion"},
    "put_object": {"s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectRetention", "s3:PutObjectLegalHold"},
    "set_object_retention": {"s3:PutObjectRetention"},
    "enable_object_legal_hold": {"s3:PutObjectLegalHold"},
    "disable_object_legal_hold": {"s3:PutObjectLegalHold"},
    "remove_object": {"s3:DeleteObject", "s3:DeleteObjectVersion"},
}
# Calls the production user is not allowed: the administrator creates the bucket, with object lock, beforehand.
ADMIN_ONLY = {"make_bucket"}
BUCKET_ACTIONS = {"s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketObjectLockConfiguration"}


def _statements(effect: str) -> list[dict[str, Any]]:
    return [s for s in json.loads(POLICY.read_text(encoding="utf-8"))["Statement"] if s["Effect"] == effect]


def _allowed() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for s in _statements("Allow"):
        for action in s["Action"]:
            out.setdefault(action, set()).update(s["Resource"])
    return out


def test_every_call_the_store_makes_is_allowed() -> None:
    """Given storage/s3.py, When each minio client call it makes is looked up, Then the policy allows its actions;
    a new call fails here until it is added to CALLS and to the policy."""
    source = (ROOT / "storage" / "s3.py").read_text(encoding="utf-8")
    calls = set(re.findall(r"_client\.(\w+)\(", source))
    unknown = calls - CALLS.keys() - ADMIN_ONLY
    assert not unknown, f"add the S3 actions of {unknown} to CALLS and deploy/s3-policy.json"
    allowed = _allowed()
    for call in calls - ADMIN_ONLY:
        for action in CALLS[call]:
            assert action in allowed, f"{call} needs {action}"
            assert allowed[action] == ({BUCKET} if action in BUCKET_ACTIONS else {OBJECTS}), action


def test_nothing_broader_is_allowed() -> None:
    """Given the policy, When its Allow statements are read, Then exactly the needed actions, no wildcard, no
    bucket administration, only this bucket; and an explicit Deny keeps the locks from being weakened."""
    allowed = _allowed()
    assert set(allowed) == set().union(*CALLS.values())
    assert not any("*" in action for action in allowed)
    assert not any(a.startswith(("s3:PutBucket", "s3:DeleteBucket", "s3:CreateBucket", "s3:Bypass")) for a in allowed)
    assert all(r in (BUCKET, OBJECTS) for resources in allowed.values() for r in resources)
    assert all(s["Principal"] == {"AWS": [APP_USER]} for s in _statements("Allow") + _statements("Deny"))
    denied = {a for s in _statements("Deny") for a in s["Action"]}
    assert {"s3:BypassGovernanceRetention", "s3:PutBucketObjectLockConfiguration", "s3:PutLifecycleConfiguration",
            "s3:DeleteBucket"} <= denied
    assert not denied & set(allowed)


POLICY_USER = ("archive-policy-test", "archive-policy-access", "archive-policy-secret-0123456789")


def _policy_user() -> tuple[str, str]:
    """A second gateway user (made with radosgw-admin on this machine's test cluster), or skip."""
    import os
    import shutil
    import subprocess

    import pytest

    conf = Path(os.environ.get("ARCHIVE_CEPH_DIR", "/tmp/archive-ceph")) / "ceph.conf"
    if not shutil.which("radosgw-admin") or not conf.exists():
        pytest.skip("radosgw-admin and the test cluster's ceph.conf are needed to make a second user")
    uid, access, secret = POLICY_USER
    admin = ["radosgw-admin", "--conf", str(conf)]
    if subprocess.run([*admin, "user", "info", "--uid", uid], capture_output=True, timeout=60).returncode != 0:
        subprocess.run([*admin, "user", "create", "--uid", uid, "--display-name", "archive policy test",
                        "--access-key", access, "--secret", secret], capture_output=True, timeout=60, check=True)
    return access, secret


def test_the_policy_is_enough_on_the_gateway_and_refuses_the_rest() -> None:
    """Given a bucket made by an administrator with object lock and deploy/s3-policy.json as its bucket policy for a
    second user, When the store runs as that user (put with lock and hold, multipart, read, extend, hold, delete an
    unlocked object, list, verify), Then everything works; bucket administration is refused."""
    import pytest
    from minio.error import S3Error

    from storage.s3 import MIN_PART_SIZE, S3Store
    from storage.verify import verify
    from tests.storage.support import FAR, FARTHER, blob, new_s3_store, put, read_all

    owner = new_s3_store()
    owner._client.make_bucket(owner.bucket, object_lock=True)
    access, secret = _policy_user()
    policy = POLICY.read_text(encoding="utf-8").replace("hpf-archive-app", POLICY_USER[0])
    owner._client.set_bucket_policy(owner.bucket, policy.replace("hpf-archive", owner.bucket))
    app = S3Store(owner.endpoint, access, secret, owner.bucket, secure=False, part_size=MIN_PART_SIZE)
    assert app.health()["ok"] is True
    b, big, loose = blob(seed=1), blob(MIN_PART_SIZE + 1000, seed=2), blob(seed=3)
    put(app, b, retain_until=FAR, legal_hold=True)
    put(app, big, retain_until=FAR)
    assert read_all(app, b.key) == b.data and read_all(app, big.key) == big.data
    assert app.set_retention(b.key, FARTHER).retain_until == FARTHER
    assert app.set_legal_hold(b.key, False).legal_hold is False
    put(app, loose)
    app.delete(loose.key)
    assert sorted(app.list_keys()) == sorted([b.key, big.key]) and verify(app) == []
    for refused in (lambda: app._client.delete_bucket_policy(owner.bucket),
                    lambda: app._client.set_bucket_policy(owner.bucket, "{}"),
                    lambda: app._client.get_bucket_versioning(owner.bucket),
                    lambda: app._client.remove_bucket(owner.bucket)):
        with pytest.raises(S3Error) as exc:
            refused()
        assert exc.value.code == "AccessDenied"
