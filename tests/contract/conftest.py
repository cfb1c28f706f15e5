"""Fixtures for the contract suites: every backend of an interface passes the same tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.base import ObjectStore
from storage.filesystem import FilesystemStore
from storage.replicated import ReplicatedStore
from tests.storage.support import new_s3_store


@pytest.fixture(params=["filesystem", "s3", "replicated"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each object-store backend: filesystem, S3 (the real gateway with object lock, fresh bucket; skipped
    without it unless ARCHIVE_TEST_REQUIRE_S3=1), filesystem + S3."""
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "objects")
    if request.param == "s3":
        return new_s3_store()
    return ReplicatedStore(FilesystemStore(tmp_path / "objects"), new_s3_store())
