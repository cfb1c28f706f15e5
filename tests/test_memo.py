"""archive.memo.Recent: answers remembered for seconds stay bounded by what was put within those seconds."""

from __future__ import annotations

from archive import identity, reading
from archive.memo import Recent
from archive.retention import lending


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_whose_time_ran_out_leave_memory_as_new_ones_arrive() -> None:
    """Given a cache of 5 s that saw 1,000 keys a second for a minute, then it holds the last 5 seconds' keys
    (about 5,000), not 10,000 piled up: a key read once is not kept until the cache fills."""
    clock = Clock()
    memo: Recent[int, bytes] = Recent(5.0, size=10_000, clock=clock)
    for second in range(60):
        for k in range(1000):
            memo.put(second * 1000 + k, b"x")
        clock.now += 1.0
        assert len(memo) <= 6000
    assert memo.get(59 * 1000) == b"x"
    assert memo.get(50 * 1000) is None


def test_a_key_put_again_lives_from_its_new_time_and_older_keys_behind_it_still_go() -> None:
    clock = Clock()
    memo: Recent[str, int] = Recent(5.0, clock=clock)
    memo.put("a", 1)
    clock.now += 1
    memo.put("b", 2)
    clock.now += 3
    memo.put("a", 3)  # refreshed at t+4
    clock.now += 2.5  # t+6.5: b (t+1) is out, a (t+4) is not
    memo.put("c", 4)
    assert len(memo) == 2
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == (3, None, 4)


def test_never_more_than_its_size() -> None:
    clock = Clock()
    memo: Recent[int, int] = Recent(60.0, size=100, clock=clock)
    for k in range(1000):
        memo.put(k, k)
        assert len(memo) <= 100
    assert memo.get(999) == 999


def test_an_answer_older_than_its_time_is_not_given() -> None:
    clock = Clock()
    memo: Recent[str, int] = Recent(5.0, clock=clock)
    memo.put("k", 1)
    clock.now += 5.01
    assert memo.get("k") is None
    assert len(memo) == 0


def test_the_process_wide_caches_are_bounded_in_time_and_size() -> None:
    """The caches on the page-image path hold seconds' worth of answers and at most 10,000."""
    for memo in (reading.filed_documents, identity.key_cache, lending.grant_cache):
        assert memo.ttl <= 10 and memo.size <= 10_000
