"""Object storage for archive objects: one interface, a filesystem and an S3 backend, replicas.

The application builds the configured store from its settings (archive.wiring.build_store); this package
imports nothing from the application and raises its own errors (storage.errors).
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
