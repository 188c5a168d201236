"""The per-process cache of unwrapped data keys: bounded in size and in age (the oldest first
out, `infra.aged_cache`), `forget` on erasure, and never showing a key."""

from __future__ import annotations

import pytest

from complaintcore.crypto.key_cache import DataKeyCache
from testsupport import ManualClock


def test_the_oldest_key_goes_first() -> None:
    cache = DataKeyCache(max_entries=2)
    cache.put("a", b"A" * 32)
    cache.put("b", b"B" * 32)
    assert cache.get("a") == b"A" * 32  # read, not made younger: its age runs from its unwrap
    cache.put("c", b"C" * 32)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, b"B" * 32, b"C" * 32)
    assert len(cache) == 2


def test_a_key_expires_after_max_age() -> None:
    clock = ManualClock()
    cache = DataKeyCache(max_age_seconds=60, clock=clock)
    cache.put("a", b"A" * 16)
    clock.now += 59.9
    assert cache.get("a") == b"A" * 16
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_forget_drops_one_case_and_clear_all() -> None:
    cache = DataKeyCache()
    for case_id in ("a", "b", "c"):
        cache.put(case_id, case_id.encode() * 16)
    cache.forget("b")
    cache.forget("never-cached")
    assert (cache.get("a"), cache.get("b")) == (b"a" * 16, None)
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


def test_the_cache_never_shows_a_key() -> None:
    cache = DataKeyCache(max_entries=8)
    cache.put("a", b"secret-key-bytes-0123456789abcde")
    assert repr(cache) == "DataKeyCache(1/8 keys)"


@pytest.mark.parametrize(("entries", "age"), [(0, 60.0), (10, 0.0)])
def test_an_empty_or_ageless_cache_is_refused(entries: int, age: float) -> None:
    with pytest.raises(ValueError):
        DataKeyCache(max_entries=entries, max_age_seconds=age)
