"""`infra.garbage_collection`: a service process freezes what lives after start-up; the cyclic
collector is off inside `collections_by_batch`, one full collection runs every N batches, and the
collector is left as it was found."""

import gc
import threading
from collections.abc import Iterator

import pytest

from complaintcore.infra.garbage_collection import collections_by_batch, exempt_startup_objects


@pytest.fixture
def collections_started() -> Iterator[list[int]]:
    """The generations of the collections this test's thread started meanwhile, 2 being a full
    one (a thread an earlier test left running may collect too: callbacks are process-wide)."""
    started: list[int] = []
    this_thread = threading.get_ident()

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and threading.get_ident() == this_thread:
            started.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield started
    finally:
        gc.callbacks.remove(note)


def test_the_collector_is_off_inside_and_collects_in_full_every_n_batches(
    collections_started: list[int],
) -> None:
    assert gc.isenabled()

    with collections_by_batch(3) as batch_done:
        assert not gc.isenabled()
        garbage = [[] for _ in range(50_000)]  # many allocations, no automatic collection
        for item in garbage:
            item.append(item)  # cycles
        del garbage
        assert collections_started == []
        for _ in range(7):
            batch_done()
        assert collections_started == [2, 2]  # after the third and the sixth batch

    assert gc.isenabled()


def test_the_collector_comes_back_on_after_an_error() -> None:
    with pytest.raises(RuntimeError), collections_by_batch(1):
        raise RuntimeError("a batch failed")
    assert gc.isenabled()


def test_a_collector_found_off_is_left_off() -> None:
    gc.disable()
    try:
        with collections_by_batch(10):
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_every_is_one_batch_or_more() -> None:
    with pytest.raises(ValueError), collections_by_batch(0):
        pass


def test_after_start_up_what_lives_is_frozen_and_young_garbage_waits_for_5000_allocations(
    collections_started: list[int],
) -> None:
    thresholds = gc.get_threshold()
    long_lived = [[n] for n in range(1_000)]
    try:
        exempt_startup_objects()
        assert collections_started[-1] == 2  # a full collection first: no garbage gets frozen
        assert gc.get_freeze_count() >= len(long_lived)
        assert gc.get_threshold() == (5_000, 20, 100)
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
