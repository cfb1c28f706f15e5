"""Answers remembered for a few seconds in this process (API keys, grants, filed documents on the page-image hot
path), with explicit forgetting: whoever changes what an answer rests on forgets it, at once here, and other
processes see the change when their copy is older than the time to live."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Key → value for ``ttl`` seconds, at most ``size`` of them (all forgotten at once when full: simple, and a
    full cache is refilled by the next requests).

    Entries are kept in the order they were put, so those whose time has run out are dropped from the front as new
    ones arrive: what stays in memory is what was put in the last ``ttl`` seconds, not every key seen until
    ``size`` of them have piled up (a filed document holds its case and item, detached ORM objects that nobody
    can read any more once their time has run out)."""

    def __init__(self, ttl: float, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.size, self._clock = ttl, size, clock
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None:
            return None
        if self._clock() - hit[1] > self.ttl:
            self.forget(key)
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        now = self._clock()
        with self._lock:
            self._items.pop(key, None)  # put at the end: the entries stay in the order of their times
            self._drop_expired(now)
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (value, now)

    def _drop_expired(self, now: float) -> None:
        """Drop entries whose time has run out, oldest first (under the lock)."""
        while self._items:  # stops at the first live one: each entry is dropped once, O(1) a put on average
            key = next(iter(self._items))
            if now - self._items[key][1] <= self.ttl:
                return
            del self._items[key]

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
