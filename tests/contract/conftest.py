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
    """Each object-store backend: filesystem, S3 (moto on 127.0.0.1, fresh bucket), filesystem + S3."""
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "objects")
    if request.param == "s3":
        return new_s3_store()
    return ReplicatedStore(FilesystemStore(tmp_path / "objects"), new_s3_store())
