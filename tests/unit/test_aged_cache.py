"""The one cache of what a process keeps for a while (data keys, tokens found valid, folded
states): the oldest out first, beyond its capacity and once too old, read or not."""

import threading

import pytest

from complaintcore.infra.aged_cache import AgedCache
from testsupport import ManualClock


def test_the_oldest_put_goes_first_beyond_capacity_however_often_it_is_read() -> None:
    cache: AgedCache[str, int] = AgedCache(capacity=2, max_age_s=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # reading does not make it younger
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, 2, 3)


def test_a_value_put_again_starts_its_age_again_and_goes_last() -> None:
    clock = ManualClock()
    cache: AgedCache[str, int] = AgedCache(capacity=2, max_age_s=300, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    clock.now += 250
    cache.put("a", 10)
    cache.put("c", 3)
    assert cache.get("b") is None  # the oldest, out beyond capacity
    clock.now += 100
    assert (cache.get("a"), cache.get("c")) == (10, 3)


def test_a_value_is_gone_at_its_max_age() -> None:
    clock = ManualClock()
    cache: AgedCache[str, int] = AgedCache(capacity=10, max_age_s=60, clock=clock)
    cache.put("a", 1)
    clock.now += 59.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_a_value_too_old_leaves_memory_when_another_is_read_or_put() -> None:
    clock = ManualClock()
    cache: AgedCache[str, int] = AgedCache(capacity=10, max_age_s=300, clock=clock)
    cache.put("old", 1)
    clock.now += 200
    cache.put("newer", 2)
    clock.now += 150
    cache.get("newer")
    assert list(cache._entries) == ["newer"]  # "old" was never asked for, and is gone
    clock.now += 200
    cache.put("another", 3)
    assert list(cache._entries) == ["another"]


def test_forget_drops_one_value_and_clear_all() -> None:
    cache: AgedCache[str, int] = AgedCache(capacity=10, max_age_s=60)
    for number, key in enumerate("abc"):
        cache.put(key, number)
    cache.forget("b")
    cache.forget("never-put")
    assert (cache.get("a"), cache.get("b"), len(cache)) == (0, None, 2)
    cache.clear()
    assert len(cache) == 0


@pytest.mark.parametrize(("capacity", "age"), [(0, 60.0), (10, 0.0), (-1, 60.0), (10, -5.0)])
def test_a_cache_holding_nothing_is_refused(capacity: int, age: float) -> None:
    with pytest.raises(ValueError):
        AgedCache(capacity=capacity, max_age_s=age)


def test_threads_putting_and_reading_at_once_keep_it_within_capacity() -> None:
    cache: AgedCache[int, int] = AgedCache(capacity=50, max_age_s=60)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for number in range(2_000):
                cache.put(offset + number, number)
                cache.get(offset + number // 2)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n * 10_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors and len(cache) == 50
