"""The scan's garbage collection (`projections.rebuild.scan`): the cyclic collector is off while a
range is scanned, one full collection runs every `COLLECT_EVERY_BATCHES` batches, and the
collector is left as it was found."""

import gc
from collections.abc import Iterator

import pytest

from complaintcore.projections.rebuild import scan


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """The generations of the collections started meanwhile, 2 being a full one."""
    started: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(note)
    try:
        yield started
    finally:
        gc.callbacks.remove(note)


def test_the_collector_is_off_during_the_scan_and_collects_every_so_many_batches(
    monkeypatch: pytest.MonkeyPatch, full_collections: list[int]
) -> None:
    monkeypatch.setattr(scan, "COLLECT_EVERY_BATCHES", 3)
    assert gc.isenabled()

    with scan._collections_by_batch() as batch_done:
        assert not gc.isenabled()
        garbage = [[] for _ in range(50_000)]  # many allocations, no automatic collection
        for item in garbage:
            item.append(item)  # cycles
        del garbage
        assert full_collections == []
        for _ in range(7):
            batch_done()
        assert full_collections == [2, 2]  # after the third and the sixth batch

    assert gc.isenabled()


def test_a_collector_found_off_is_left_off() -> None:
    gc.disable()
    try:
        with scan._collections_by_batch():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
