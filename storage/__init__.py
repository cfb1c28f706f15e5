"""Object storage for archive objects: one interface, a filesystem and an S3 backend, replicas.

Build the configured store with :func:`storage.factory.build_store`.
"""

from storage.base import (
    IntegrityFailure,
    InvalidKey,
    ObjectExists,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    StoreUnavailable,
    content_key,
)

__all__ = [
    "IntegrityFailure",
    "InvalidKey",
    "ObjectExists",
    "ObjectInfo",
    "ObjectLocked",
    "ObjectNotFound",
    "ObjectStore",
    "StoreUnavailable",
    "content_key",
]
