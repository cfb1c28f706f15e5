"""Answers remembered for a few seconds in this process (API keys, grants, filed documents on the page-image hot
path), with explicit forgetting: whoever changes what an answer rests on forgets it, at once here, and other
processes see the change when their copy is older than the time to live."""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Key → value for ``ttl`` seconds, at most ``size`` of them (all forgotten at once when full: simple, and a
    full cache is refilled by the next requests)."""

    def __init__(self, ttl: float, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._items: dict[K, tuple[V, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        if time.monotonic() - hit[1] > self.ttl:
            self.forget(key)
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (value, time.monotonic())

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def clear_on_commit(self, session: Session) -> None:
        """Forget everything now and again when the session's transaction commits (a request that looked the old
        answer up between the two must not keep it)."""
        self.clear()
        event.listen(session, "after_commit", lambda _s: self.clear(), once=True)
