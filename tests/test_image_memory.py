"""The page-image memory cache holds no more memory than its budget, however small its images."""

from __future__ import annotations

import hashlib
import tracemalloc

from archive import images


def _fill(lru: images._Lru, count: int, size: int) -> None:
    for n in range(count):
        sha = hashlib.sha256(n.to_bytes(4, "big")).hexdigest()
        lru.put(images.cache_key(sha, 1, images.THUMBNAIL_WIDTH, "jpeg"), sha, bytes(size))


def test_many_small_thumbnails_stay_within_the_budget_in_memory() -> None:
    """Given a 1 MB budget, when 50,000 tiny images are put, then what the cache holds (measured by tracemalloc:
    images, keys, digests, bookkeeping) stays within the budget; counting the images' bytes alone it held ~20 MB."""
    budget = 1024 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        lru = images._Lru(budget)
        _fill(lru, 50_000, 16)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert lru.used <= budget
    assert held <= budget * 1.15, f"{held / 1024:.0f} KB held for a {budget / 1024:.0f} KB budget"


def test_what_is_counted_is_given_back_when_entries_leave() -> None:
    lru = images._Lru(10 * 1024 * 1024)
    _fill(lru, 100, 1000)
    assert lru.used > 100 * 1000
    assert lru.drop_prefix("thumbnails/") == 100
    assert lru.used == 0
    _fill(lru, 10, 1000)
    lru.clear()
    assert lru.used == 0
