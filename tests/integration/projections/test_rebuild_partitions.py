"""The scan split into ranges of stream ids, each in a worker process of its own: the ranges
cover every stream once and hold about as many cases each; an interrupted scan resumes each
range where it stopped; a worker's error stops the others and surfaces in the parent; a batch
from a scan that should no longer run is refused."""

import asyncio
import multiprocessing
from datetime import date
from itertools import pairwise

import asyncpg
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rebuild_support import every_row
from test_rebuild_resume import InterruptAt, Interrupted, some_cases

from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.migrations import alembic_config, upgrade_to_head
from complaintcore.projections.rebuild import (
    TARGETS,
    RangeScan,
    RangeScanTask,
    Rebuilder,
    RebuildScanFailed,
    RebuildSettings,
    ScanRange,
    ScanRangeTaken,
    SilentProgress,
    rebuild,
    split_stream_ids,
)
from complaintcore.projections.runner import ProjectionRunner
from projection_support import CaseDesk, table_rows
from store_support import event
from testsupport import examples

DAY = date(2026, 3, 2)
BOTH = [TARGETS["case_view"], TARGETS["statistics"]]


def in_ranges(count: int, workers: int, **small: int) -> RebuildSettings:
    return RebuildSettings(
        page_events=small.get("page_events", 7),
        flush_rows=small.get("flush_rows", 3),
        catch_up_window=5,
        close_enough=2,
        scan_workers=workers,
        scan_partitions=count,
        progress_poll=0.02,
    )


async def ranges_of(pool: asyncpg.Pool, name: str = "case_view") -> list[ScanRange]:
    rows = await pool.fetch(
        "SELECT partition, after_stream_id, up_to_stream_id, last_stream_id, events_done"
        " FROM projection_rebuild_partitions WHERE name = $1 ORDER BY partition",
        name,
    )
    return [ScanRange(*row) for row in rows]


async def a_desk_with_cases(pool: asyncpg.Pool, database_url: str, count: int) -> CaseDesk:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await some_cases(desk, count, DAY)
    await ProjectionRunner(database_url, desk.store).catch_up()
    return desk


_STREAM_IDS = st.text(alphabet=st.sampled_from("aAbBzZ09-_.éß中 "), min_size=1, max_size=6).map(
    lambda text: f"s{text}"
)


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream_ids=st.sets(_STREAM_IDS, max_size=25), ranges=st.integers(1, 6))
async def test_the_ranges_cover_every_stream_once_with_as_many_cases_each(
    pool: asyncpg.Pool, stream_ids: set[str], ranges: int
) -> None:
    # One database for every example: the streams pile up, each example splits all of them.
    store = PostgresEventStore(pool)
    for stream_id in stream_ids:
        if not await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", stream_id):
            await store.append(stream_id, [event(0), event(1)], expected_version=0)
    position = await pool.fetchval("SELECT coalesce(max(position), 0) FROM events")
    async with pool.acquire() as connection:
        split = await split_stream_ids(connection, position, ranges)

    assert split[0].after is None and split[-1].up_to is None
    assert all(one.up_to == following.after for one, following in pairwise(split))
    per_range = await pool.fetch(
        """
        SELECT stream_id, count(r.number) AS ranges, min(r.number) AS number
        FROM (SELECT DISTINCT stream_id FROM events) AS s
        LEFT JOIN unnest($1::int[], $2::text[], $3::text[]) AS r(number, after, up_to)
          ON (r.after IS NULL OR s.stream_id > r.after)
         AND (r.up_to IS NULL OR s.stream_id <= r.up_to)
        GROUP BY stream_id
        """,
        [r.number for r in split],
        [r.after for r in split],
        [r.up_to for r in split],
    )
    assert all(row["ranges"] == 1 for row in per_range)
    streams = len(per_range)
    cases = [sum(row["number"] == r.number for row in per_range) for r in split]
    if streams >= ranges:
        assert len(split) == ranges
        assert set(cases) <= {streams // ranges, -(-streams // ranges)}
    else:
        assert len(split) <= ranges


async def test_a_rebuild_in_two_worker_processes_equals_live(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await a_desk_with_cases(pool, database_url, 14)
    live = await every_row(pool)

    # three ranges for two workers: one of them scans two
    results = await rebuild(database_url, settings=in_ranges(3, workers=2))

    assert await every_row(pool) == live
    assert results[0].workers_peak_rss_kib > 0 and results[1].workers_peak_rss_kib == 0
    assert results[0].events == await pool.fetchval("SELECT count(*) FROM events")
    assert not multiprocessing.active_children()


async def test_the_workers_progress_is_reported_to_the_last_event(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await a_desk_with_cases(pool, database_url, 10)
    reported: list[tuple[str, int]] = []

    class Recorded(SilentProgress):
        def scanning(self, name: str, total: int, done: int) -> None:
            reported.append(("total", total))

        def advance(self, events: int) -> None:
            reported.append(("advance", events))

    await Rebuilder(database_url, BOTH, Recorded(), in_ranges(2, workers=2)).run()

    assert all(type(events) is int and events > 0 for _, events in reported)  # as tqdm takes it
    advances = [events for what, events in reported if what == "advance"]
    assert reported[0] == ("total", sum(advances))


async def test_an_interrupted_scan_resumes_each_range_where_it_stopped(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = await a_desk_with_cases(pool, database_url, 18)
    # One process scans the three ranges in turn, so the stop falls in the second one.
    stop = InterruptAt(pages=5)
    with pytest.raises(Interrupted):
        await Rebuilder(database_url, BOTH, stop, in_ranges(3, workers=1)).run()
    ranges = await ranges_of(pool)
    assert ranges == await ranges_of(pool, "statistics")  # one shared scan, one progress
    assert ranges[0].last_stream_id == ranges[0].up_to  # scanned to its end
    assert ranges[2].last_stream_id is None and ranges[2].events_done == 0  # not begun
    written = await pool.fetchval("SELECT count(*) FROM case_view_rebuild")
    assert written == await pool.fetchval(
        "SELECT count(*) FROM case_view WHERE case_id <= $1",
        ranges[1].last_stream_id or ranges[0].last_stream_id,
    )
    # meanwhile a case changes
    first_open = await pool.fetchval("SELECT min(case_id) FROM case_view WHERE status = 'assigned'")
    await desk.withdraw(first_open, DAY.replace(month=5))
    await ProjectionRunner(database_url, desk.store).catch_up()
    live = await every_row(pool)

    # resumed in two worker processes, each range after its last case written
    results = await rebuild(database_url, settings=in_ranges(3, workers=2))

    assert [(r.name, r.resumed) for r in results] == [("case_view", True), ("statistics", True)]
    assert await every_row(pool) == live
    assert await pool.fetchval("SELECT count(*) FROM projection_rebuild_partitions") == 0


async def test_an_interruption_in_the_parent_stops_the_workers_and_leaves_a_resumable_scan(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await a_desk_with_cases(pool, database_url, 24)
    live = await every_row(pool)

    class InterruptedOnProgress(SilentProgress):
        def advance(self, events: int) -> None:
            raise Interrupted

    settings = in_ranges(2, workers=2, page_events=2, flush_rows=1)
    with pytest.raises(Interrupted):
        await Rebuilder(database_url, BOTH, InterruptedOnProgress(), settings).run()
    assert not multiprocessing.active_children()  # every worker stopped
    assert await pool.fetchval("SELECT phase FROM projection_rebuilds WHERE name = 'statistics'")
    ranges = await ranges_of(pool)
    assert sum(r.events_done for r in ranges) > 0
    written = await pool.fetchval("SELECT count(*) FROM case_view_rebuild")
    assert written == await pool.fetchval("SELECT count(*) FROM case_statistics_rebuild")

    await rebuild(database_url, settings=settings)
    assert await every_row(pool) == live


async def test_an_error_in_a_worker_surfaces_in_the_parent_and_the_rebuild_can_resume(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await a_desk_with_cases(pool, database_url, 8)
    # a stream the projections cannot decode, last in the stream ids' order: the last range's
    store = PostgresEventStore(pool)
    await store.append("zzzz-not-a-complaint", [event(0)], expected_version=0)

    with pytest.raises(RebuildScanFailed, match=r"range \d of 2 failed: .*Happened"):
        await rebuild(database_url, settings=in_ranges(2, workers=2))

    assert not multiprocessing.active_children()
    assert await pool.fetchval("SELECT count(*) FROM projection_rebuilds") == 2
    assert await pool.fetchval("SELECT to_regclass('case_view')") is not None  # live untouched


async def test_a_batch_from_a_scan_that_should_no_longer_run_is_refused(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """A range moved on by another scan (an orphaned worker's, say) refuses a batch from a scan
    that still thinks it is at the range's start: nothing is written twice."""
    await a_desk_with_cases(pool, database_url, 6)
    settings = in_ranges(1, workers=1)
    with pytest.raises(Interrupted):
        await Rebuilder(database_url, BOTH, InterruptAt(pages=2), settings).run()
    (moved,) = await ranges_of(pool)
    assert moved.last_stream_id is not None
    written = await table_rows(pool, "case_view_rebuild")
    start_position = await pool.fetchval(
        "SELECT start_position FROM projection_rebuilds WHERE name = 'case_view'"
    )
    stale = ScanRange(moved.number, moved.after, moved.up_to)  # where the range began

    scan = RangeScan(
        RangeScanTask(database_url, ("case_view", "statistics"), start_position, stale, settings)
    )
    with pytest.raises(ScanRangeTaken):
        await scan.run()

    assert await table_rows(pool, "case_view_rebuild") == written
    assert await ranges_of(pool) == [moved]


async def test_a_scan_interrupted_before_the_ranges_migration_goes_on_as_one_range(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Migration 0006 carries a scan's progress from `projection_rebuilds.last_stream_id` to a
    range, and its downgrade back. (Migration 0013, on the way up, gives the statistics new
    columns and starts their interrupted rebuild over: only the case view's resumes.)"""
    await a_desk_with_cases(pool, database_url, 8)
    live = await every_row(pool)
    one_range = in_ranges(1, workers=1)
    with pytest.raises(Interrupted):
        await Rebuilder(database_url, BOTH, InterruptAt(pages=2), one_range).run()
    (scanned,) = await ranges_of(pool)
    assert scanned.last_stream_id is not None

    # going below 0009 drops the case keys with their table, and below 0011 the blind index's
    # key with `service_keys`: kept here and put back after, so the indexes come out the same
    case_keys = await pool.fetch("SELECT case_id, suite, key_id, wrapped FROM case_keys")
    service_keys = await pool.fetch("SELECT purpose, suite, key_id, wrapped FROM service_keys")
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0005")
    before = await pool.fetch(
        "SELECT last_stream_id, events_done FROM projection_rebuilds ORDER BY name"
    )
    assert [tuple(row) for row in before] == [(scanned.last_stream_id, scanned.events_done)] * 2
    await asyncio.to_thread(upgrade_to_head, database_url)
    await pool.executemany(
        "INSERT INTO case_keys (case_id, suite, key_id, wrapped) VALUES ($1, $2, $3, $4)",
        [tuple(row) for row in case_keys],
    )
    await pool.executemany(
        "INSERT INTO service_keys (purpose, suite, key_id, wrapped) VALUES ($1, $2, $3, $4)",
        [tuple(row) for row in service_keys],
    )

    assert await ranges_of(pool) == [scanned]
    results = await rebuild(database_url, settings=one_range)
    assert [(r.name, r.resumed) for r in results] == [("case_view", True), ("statistics", False)]
    assert await every_row(pool) == live


async def test_an_event_the_scan_cannot_read_fails_it_alike_in_this_process(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """One range, scanned in this process (as with one worker, or one range left to resume):
    found by a review pass, an unreadable event went up as a traceback, where the workers'
    scan fails with one line."""
    await a_desk_with_cases(pool, database_url, 4)
    store = PostgresEventStore(pool)
    await store.append("zzzz-not-a-complaint", [event(0)], expected_version=0)

    with pytest.raises(RebuildScanFailed, match=r"the scan of range 0 of 1 failed: .*Happened"):
        await rebuild(database_url, settings=in_ranges(1, workers=1))

    assert await pool.fetchval("SELECT to_regclass('case_view')") is not None  # live untouched
