"""The scan's worker processes: spawned when the rebuild knows it will scan, before the ranges'
tasks are submitted, so that their start-up overlaps the rebuild's preparation."""

import multiprocessing

from complaintcore.projections.rebuild.workers import ScanWorkers


def test_start_spawns_the_workers_at_once_and_close_stops_them() -> None:
    workers = ScanWorkers(2)
    try:
        workers.start(ranges=3)
        assert len(multiprocessing.active_children()) == 2  # before any range is submitted
        workers.start(ranges=3)  # started once
        assert len(multiprocessing.active_children()) == 2
    finally:
        workers.close()
    assert not multiprocessing.active_children()


def test_no_more_workers_than_ranges_and_none_for_one() -> None:
    for ranges, spawned in ((1, 0), (2, 2)):
        workers = ScanWorkers(4)
        try:
            workers.start(ranges)
            assert len(multiprocessing.active_children()) == spawned
        finally:
            workers.close()
        assert not multiprocessing.active_children()
