"""Batch rebuild of projections from the events alone (`complaintcore projections rebuild`).

Each projection (`case_view`, `statistics`) is replayed into a fresh table and swapped in
atomically; queries keep answering from the live table until the swap, which holds its lock for
a moment only.

The protocol, for one projection
--------------------------------
0. **Start** (or resume, see below). Take the rebuild's own advisory lock (two-int form, another
   namespace than the runners'), so two rebuilds of one projection never run at once. Note S,
   the feed position up to which every event is committed (`feed_complete_up_to`), and create
   `<table>_rebuild` like the live table but without its indexes. A row in
   `projection_rebuilds` remembers S and the phase; split the stream ids into N contiguous
   ranges holding about as many cases each (`percentile_disc` over the stream ids of the
   receipts at or below S, compared by PostgreSQL, never by Python, so both sides agree on the
   collation) and give each range a row in `projection_rebuild_partitions`, which remembers its
   bounds and the last case written in it. N is `RebuildSettings.scan_partitions`, by default
   the number of scan workers; a resumed scan keeps the ranges it began with.
1. **Scan**: each range is scanned by a worker process of its own (spawned; one asyncio loop each),
   all at once; with one worker, or one range, the ranges are scanned in this process, one after
   the other. A range's scan reads its events at or below S ordered by (stream_id, version), in
   keyset pages on the unique (stream_id, version) index bounded by the range, folds one case at a
   time, and writes the rows with COPY in batches. Each batch commits with its range's row (last
   case written, events done), so an interrupted scan (Ctrl-C, a crash) resumes each range after
   the last case it wrote; the row's update is guarded by the last case the scan expects there, so
   a batch from a scan that should no longer run (an orphaned worker whose range another scan has
   moved on) rolls back instead of writing a case twice. Memory stays flat in each process whatever
   the number of events: two pages of events, the case being folded and two batches of rows
   (nothing is kept per case once its row is written). Projections rebuilt together share the scan:
   each case is decoded and folded once and gives a row to each new table (folding is most of a
   rebuild's time). In each range's scan the next page is read on a second connection, and a batch
   is written, while the page in hand is folded, so the database's part overlaps the fold. The
   parent process reports progress from the ranges' rows (read every `progress_poll` seconds); when
   it is interrupted, or a worker fails, it asks the workers to stop (each lets its batch in flight
   commit) and waits for them, then raises the interruption, or `RebuildScanFailed` naming the
   range and the worker's error. A worker whose parent died stops at its next page.
2. **Index**: build the live table's indexes and constraints on the new table (under names
   ending `_rb`), after the bulk load, which is much faster than maintaining them row by row.
3. **Catch up**, without locks: re-fold every case with events after the position the new table
   is at, window by window, until it is close behind, committing the position reached each time.
4. **Swap**, in one transaction:
   - `case_view` is written by the commands themselves: lock the live table (ACCESS EXCLUSIVE,
     so a command waits at its upsert and readers wait a moment), re-fold the cases with
     events after the position reached (every committed command is visible now, and none can
     commit a row until the swap is done), drop the live table, rename the new one and its
     indexes. A command that was waiting then upserts into the new table (PostgreSQL resolves
     the name again after the wait).
   - `statistics` follows the feed with a checkpoint: lock the checkpoint row (the runner's
     batch waits at its first statement), catch up to the checkpoint C if the runner is ahead,
     swap as above and set the checkpoint to max(C, the new table's position), so the runner
     carries on from exactly what the new table holds (it notices the moved checkpoint).
   The progress row (and its ranges' rows with it) is deleted in the same transaction.

The statistics keep monthly buckets beside their facts rows (projections/statistics_buckets.py):
tables derived from the rows, rebuilt alongside and swapped in the same transaction. Each
range's scan sums the buckets of the rows it writes in memory (one entry per institution, month
and key, not per case) and hands the sums back to the parent at its end (pickled once: their
size grows with months and keys, not cases); the parent adds them up and writes them with COPY,
with the phase change. A resumed scan first sums the rows written before. Catch-up writes rows
the way the runner does, moving the buckets.

Resuming: running the command again finds the progress row and carries on at its phase (a scan:
each range after its last case written). `--restart` throws it away and starts over; so does a
change of the live table's columns since the rebuild began.
"""

import asyncio
import multiprocessing
import os
import re
import resource
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol

import asyncpg
import orjson
import structlog

from complaintcore.domain.state import ComplaintState
from complaintcore.events.store import feed_complete_up_to
from complaintcore.infra import advisory_locks
from complaintcore.infra.database import connect
from complaintcore.projections import case_view, statistics, statistics_buckets
from complaintcore.projections.runner import close_quietly, lock_key, read_checkpoint
from complaintcore.projections.statistics import upsert_sql
from complaintcore.projections.streams import DECODE_COLUMNS, fold_stream, fold_streams

log = structlog.get_logger("complaintcore.projections.rebuild")

_LAST_VERSION = 2**31 - 1
_ALL_POSITIONS = 2**62


def _case_view_record(state: ComplaintState) -> tuple[Any, ...]:
    row = case_view.case_view_row(state)
    return tuple(row[column] for column in case_view.COLUMNS)


class DerivedTables(Protocol):
    """Tables summing a projection's rows, rebuilt and swapped in with it (the statistics'
    monthly buckets)."""

    tables: tuple[str, ...]

    def summary(self) -> Any: ...
    def add(self, summary: Any, record: tuple[Any, ...]) -> None: ...
    def merge(self, summary: Any, other: Any) -> None: ...
    async def seed(self, connection: asyncpg.Connection, table: str) -> Any: ...
    async def copy(self, connection: asyncpg.Connection, summary: Any, suffix: str) -> None: ...
    async def upsert(
        self, connection: asyncpg.Connection, records: list[tuple[Any, ...]], suffix: str
    ) -> None: ...


class _StatisticsBuckets:
    tables = statistics_buckets.TABLES

    def summary(self) -> statistics_buckets.Buckets:
        return statistics_buckets.Buckets()

    def add(self, summary: statistics_buckets.Buckets, record: tuple[Any, ...]) -> None:
        summary.add(record)

    def merge(self, summary: statistics_buckets.Buckets, other: statistics_buckets.Buckets) -> None:
        summary.merge(other)

    async def seed(self, connection: asyncpg.Connection, table: str) -> statistics_buckets.Buckets:
        return await statistics_buckets.buckets_of_table(connection, table)

    async def copy(
        self, connection: asyncpg.Connection, summary: statistics_buckets.Buckets, suffix: str
    ) -> None:
        await statistics_buckets.copy_buckets(connection, summary, suffix)

    async def upsert(
        self, connection: asyncpg.Connection, records: list[tuple[Any, ...]], suffix: str
    ) -> None:
        await statistics_buckets.write_statistics(connection, records, suffix)


_BUILDING = "_rebuild"


@dataclass(frozen=True)
class RebuildTarget:
    """A rebuildable projection: its table, its row as a function of a case's state, and
    whether it follows the feed with a checkpoint (else the commands write it live); `derived`:
    tables summing its rows, rebuilt and swapped with it."""

    name: str
    table: str
    columns: tuple[str, ...]
    record: Callable[[ComplaintState], tuple[Any, ...]]
    follows_feed: bool
    derived: DerivedTables | None = None

    @property
    def building_table(self) -> str:
        return f"{self.table}{_BUILDING}"

    @property
    def table_pairs(self) -> list[tuple[str, str]]:
        """(live, building) for the table and each derived one."""
        tables = [self.table, *(self.derived.tables if self.derived else ())]
        return [(table, f"{table}{_BUILDING}") for table in tables]


TARGETS: dict[str, RebuildTarget] = {
    "case_view": RebuildTarget(
        "case_view", "case_view", case_view.COLUMNS, _case_view_record, follows_feed=False
    ),
    statistics.NAME: RebuildTarget(
        statistics.NAME,
        statistics.TABLE,
        statistics.COLUMNS,
        statistics.statistics_row,
        follows_feed=True,
        derived=_StatisticsBuckets(),
    ),
}


class RebuildAlreadyRunning(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a rebuild of {name} is already running")
        self.name = name


class RebuildScanFailed(Exception):
    """A scan worker failed; the other ranges stopped after their batch in flight, and the
    rebuild can be resumed."""


class ScanRangeTaken(Exception):
    """A range's progress row is not where its scan left it: another scan wrote there."""


class Progress(Protocol):
    """What a rebuild reports as it goes (the CLI draws a progress bar from it)."""

    def scanning(self, name: str, total: int, done: int) -> None: ...
    def advance(self, events: int) -> None: ...
    def phase(self, name: str, text: str) -> None: ...
    def finished(self, name: str) -> None: ...


class SilentProgress:
    def scanning(self, name: str, total: int, done: int) -> None:
        pass

    def advance(self, events: int) -> None:
        pass

    def phase(self, name: str, text: str) -> None:
        pass

    def finished(self, name: str) -> None:
        pass


@dataclass
class RebuildJob:
    """The progress row of a rebuild (table `projection_rebuilds`); the scan's progress is in
    its ranges' rows (`ScanRange`), `events_done` here is set when the scan ends."""

    name: str
    phase: str  # scan, index, catch_up
    start_position: int
    caught_up_to: int
    events_done: int
    events_total: int
    resumed: bool = False


@dataclass(frozen=True)
class RebuildResult:
    """`events`: the events replayed; `seconds`: this projection's own time (the first of a
    group that shared a scan also carries the scan's), so the sum over results is the whole;
    `workers_peak_rss_kib`: the sum of the scan worker processes' peak RSS, on the result
    carrying the scan (0 when the scan ran in this process)."""

    name: str
    resumed: bool
    start_position: int
    position: int
    events: int
    seconds: float
    workers_peak_rss_kib: int = 0


def default_scan_workers() -> int:
    """The CPUs this process may run on (its affinity, where the OS tells), at most 8."""
    if hasattr(os, "sched_getaffinity"):
        return min(len(os.sched_getaffinity(0)), 8)
    return min(os.cpu_count() or 1, 8)


@dataclass(frozen=True)
class RebuildSettings:
    page_events: int = 10_000  # events read per keyset page
    flush_rows: int = 2_000  # cases per COPY batch (and per progress commit)
    catch_up_window: int = 10_000  # feed positions re-folded per catch-up transaction
    close_enough: int = 1_000  # positions behind at which the swap takes its lock
    # processes scanning at once; 1: the scan runs in this process
    scan_workers: int = field(default_factory=default_scan_workers)
    scan_partitions: int | None = None  # ranges a new scan is split into; None: scan_workers
    progress_poll: float = 0.5  # seconds between reads of the workers' progress

    @property
    def partitions(self) -> int:
        return max(1, self.scan_partitions or self.scan_workers)


@dataclass(frozen=True)
class ScanRange:
    """The stream ids in (after, up_to] (None: an open end), and how far its scan got."""

    number: int
    after: str | None
    up_to: str | None
    last_stream_id: str | None = None
    events_done: int = 0


def ranges_split_at(points: Sequence[str | None]) -> list[ScanRange]:
    """Contiguous ranges covering every stream id, one ending at each split point.

    `points` must be in PostgreSQL's order of the stream ids (as `percentile_disc` gives them);
    repeated points (fewer cases than ranges) and NULLs are dropped, never re-sorted here."""
    distinct = [point for point in dict.fromkeys(points) if point is not None]
    bounds: list[str | None] = [None, *distinct, None]
    return [
        ScanRange(number, after, up_to) for number, (after, up_to) in enumerate(pairwise(bounds))
    ]


_SPLIT_POINTS = """
SELECT percentile_disc($2::float8[]) WITHIN GROUP (ORDER BY stream_id)
FROM events WHERE version = 1 AND position <= $1
"""


async def split_stream_ids(
    connection: asyncpg.Connection, up_to_position: int, ranges: int
) -> list[ScanRange]:
    """`ranges` ranges of stream ids holding about as many cases each (fewer when there are
    fewer cases than that)."""
    if ranges <= 1:
        return ranges_split_at([])
    fractions = [number / ranges for number in range(1, ranges)]
    points = await connection.fetchval(_SPLIT_POINTS, up_to_position, fractions)
    return ranges_split_at(points or [])


async def rebuild(
    database_url: str,
    names: Sequence[str] = (),
    *,
    restart: bool = False,
    progress: Progress | None = None,
    settings: RebuildSettings | None = None,
) -> list[RebuildResult]:
    """Rebuild the named projections (all when none is named).

    Projections starting afresh share one scan of the events (each case is folded once and
    gives a row to every table); an interrupted rebuild resumes with the projections it was
    begun with. With more than one scan worker the scan runs in spawned processes, which import
    the main module again: a script calling this needs the `if __name__ == "__main__":` guard."""
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        raise ValueError(f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    targets = [TARGETS[name] for name in dict.fromkeys(names or TARGETS)]
    names = [target.name for target in targets]
    connection = await connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT * FROM projection_rebuilds WHERE name = ANY($1::text[])", names
        )
        ranges: dict[str, list[ScanRange]] = {}
        for name in names:
            ranges[name] = await _scan_ranges(connection, name)
    finally:
        await close_quietly(connection)
    results = []
    for group in _groups(targets, {row["name"]: row for row in rows}, ranges, restart):
        rebuilder = Rebuilder(
            database_url, group, progress or SilentProgress(), settings or RebuildSettings()
        )
        results.extend(await rebuilder.run(restart=restart))
    return sorted(results, key=lambda result: targets.index(TARGETS[result.name]))


def _groups(
    targets: list[RebuildTarget],
    rows: dict[str, asyncpg.Record],
    ranges: dict[str, list[ScanRange]],
    restart: bool,
) -> list[list[RebuildTarget]]:
    """Projections that can share a scan: all of them when starting afresh; when resuming, those
    whose interrupted scans stopped at the same place in the same ranges."""
    if restart:
        return [targets]
    groups: dict[tuple[Any, ...], list[RebuildTarget]] = {}
    for target in targets:
        row = rows.get(target.name)
        if row is None:
            key: tuple[Any, ...] = ("fresh",)
        elif row["phase"] == "scan":
            key = ("scan", row["start_position"], tuple(ranges[target.name]))
        else:
            key = ("scanned", target.name)
        groups.setdefault(key, []).append(target)
    return list(groups.values())


class Rebuilder:
    """Rebuilds a group of projections: one shared scan, then each one's indexes, catch-up and
    swap in turn."""

    def __init__(
        self,
        database_url: str,
        targets: Sequence[RebuildTarget],
        progress: Progress,
        settings: RebuildSettings,
    ) -> None:
        self._database_url = database_url
        self._targets = list(targets)
        self._progress = progress
        self._settings = settings
        self._workers_peak_rss_kib = 0  # the scan workers' peaks, summed

    @property
    def _label(self) -> str:
        return "+".join(target.name for target in self._targets)

    async def run(self, *, restart: bool = False) -> list[RebuildResult]:
        """Each projection's result; the shared work (the scan) is counted in the first's
        `seconds`, so the sum of `seconds` is the group's whole time."""
        started = time.monotonic()
        connection = await _bulk_connection(self._database_url)
        try:
            for target in self._targets:
                key = lock_key(target.name, advisory_locks.PROJECTION_REBUILD)
                if not await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key):
                    raise RebuildAlreadyRunning(target.name)
            jobs = await self._start_or_resume(connection, restart)
            if jobs[0].phase == "scan":
                await self._scan(connection, jobs)
            results = []
            for target, job in zip(self._targets, jobs, strict=True):
                one = _TargetRebuild(target, job, self._progress, self._settings)
                position = await one.finish(connection)
                finished = time.monotonic()
                self._progress.finished(target.name)
                log.info("projection rebuilt", projection=target.name, position=position)
                results.append(
                    RebuildResult(
                        target.name,
                        job.resumed,
                        job.start_position,
                        position,
                        job.events_done,
                        finished - started,
                        self._workers_peak_rss_kib,
                    )
                )
                started, self._workers_peak_rss_kib = finished, 0
            return results
        finally:
            await close_quietly(connection)

    # --- 0. start or resume --------------------------------------------------------------------

    async def _start_or_resume(
        self, connection: asyncpg.Connection, restart: bool
    ) -> list[RebuildJob]:
        rows = [
            await connection.fetchrow("SELECT * FROM projection_rebuilds WHERE name = $1", t.name)
            for t in self._targets
        ]
        if not restart and all(row is not None for row in rows):
            unchanged = [
                await _same_columns(connection, live, building)
                for target in self._targets
                for live, building in target.table_pairs
            ]
            # a scan without its ranges (none stored) cannot know what it wrote: start over
            resumable = rows[0]["phase"] != "scan" or await _scan_ranges(
                connection, rows[0]["name"]
            )
            if all(unchanged) and resumable:
                self._progress.phase(self._label, "resuming the rebuild begun earlier")
                return [_job(row, resumed=True) for row in rows]
            self._progress.phase(self._label, "a table changed since; starting over")
        start_position = await feed_complete_up_to(connection)
        total = await connection.fetchval(
            "SELECT count(*) FROM events WHERE position <= $1", start_position
        )
        ranges = await split_stream_ids(connection, start_position, self._settings.partitions)
        async with connection.transaction():
            for target in self._targets:
                await _start_building(connection, target, start_position, total, ranges)
        return [
            RebuildJob(target.name, "scan", start_position, start_position, 0, total)
            for target in self._targets
        ]

    # --- 1. scan -------------------------------------------------------------------------------

    async def _scan(self, connection: asyncpg.Connection, jobs: list[RebuildJob]) -> None:
        first = jobs[0]
        ranges = await _scan_ranges(connection, first.name)
        done = sum(scan_range.events_done for scan_range in ranges)
        self._progress.scanning(self._label, first.events_total, done)
        summaries = await self._summaries_written(connection, ranges)
        names = tuple(target.name for target in self._targets)
        tasks = [
            RangeScanTask(self._database_url, names, first.start_position, r, self._settings)
            for r in ranges
        ]
        if self._settings.scan_workers <= 1 or len(tasks) == 1:
            outcomes = [await RangeScan(task, self._progress.advance).run() for task in tasks]
        else:
            outcomes = await self._scan_in_workers(connection, tasks, done)
        self._workers_peak_rss_kib = _summed_peaks(outcomes)
        if not all(outcome.finished for outcome in outcomes):
            raise RebuildScanFailed("a range's scan stopped before its end")
        for target in self._targets:
            if target.derived:
                for outcome in outcomes:
                    target.derived.merge(summaries[target.name], outcome.summaries[target.name])
        await self._scan_done(connection, jobs, summaries)

    async def _summaries_written(
        self, connection: asyncpg.Connection, ranges: list[ScanRange]
    ) -> dict[str, Any]:
        """The derived tables' sums of the rows written before this scan (resumed), by name."""
        resumed = any(scan_range.last_stream_id is not None for scan_range in ranges)
        return {
            target.name: (
                await target.derived.seed(connection, target.building_table)
                if resumed
                else target.derived.summary()
            )
            for target in self._targets
            if target.derived
        }

    async def _scan_done(
        self, connection: asyncpg.Connection, jobs: list[RebuildJob], summaries: dict[str, Any]
    ) -> None:
        """Write the derived tables' sums and move every projection to its index phase."""
        async with connection.transaction():
            for target in self._targets:
                if target.derived:
                    await target.derived.copy(connection, summaries[target.name], _BUILDING)
            ranges = await _scan_ranges(connection, jobs[0].name)
            events_done = sum(scan_range.events_done for scan_range in ranges)
            for job in jobs:
                job.events_done = events_done
                await connection.execute(
                    "UPDATE projection_rebuilds SET events_done = $2 WHERE name = $1",
                    job.name,
                    events_done,
                )
                await _set_phase(connection, job, "index")

    async def _scan_in_workers(
        self, connection: asyncpg.Connection, tasks: list["RangeScanTask"], done: int
    ) -> list["RangeScanOutcome"]:
        """Each range in a worker process, reporting progress from the ranges' rows meanwhile;
        whatever ends this (the scan done, an interruption, a worker's error), every worker
        has stopped when it returns, its batch in flight committed."""
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        workers = min(self._settings.scan_workers, len(tasks))
        with ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_started, initargs=(stop,)
        ) as pool:
            scans = [asyncio.wrap_future(pool.submit(scan_range_in_worker, task)) for task in tasks]
            try:
                await self._report_progress(connection, tasks[0].names[0], scans, done)
                return [scan.result() for scan in scans]
            finally:
                stop.set()
                await asyncio.wait(scans)
                for scan in scans:
                    scan.exception()  # retrieved: the first error is the one raised

    async def _report_progress(
        self,
        connection: asyncpg.Connection,
        name: str,
        scans: list["asyncio.Future[RangeScanOutcome]"],
        done: int,
    ) -> None:
        """Advance the progress by what the ranges committed until every scan has ended; raise
        `RebuildScanFailed` as soon as one fails."""
        pending: set[asyncio.Future[RangeScanOutcome]] = set(scans)
        while pending:
            _, pending = await asyncio.wait(
                pending, timeout=self._settings.progress_poll, return_when=asyncio.FIRST_EXCEPTION
            )
            for number, scan in enumerate(scans):
                if scan.done() and scan.exception() is not None:
                    raise RebuildScanFailed(
                        f"the scan of range {number} of {len(scans)} failed: {scan.exception()}"
                    ) from scan.exception()
            committed = await connection.fetchval(
                "SELECT coalesce(sum(events_done), 0)::bigint FROM projection_rebuild_partitions"
                " WHERE name = $1",
                name,
            )
            if committed > done:
                self._progress.advance(committed - done)
                done = committed


@dataclass(frozen=True)
class RangeScanTask:
    """What a range's scan needs, sent to its worker process."""

    database_url: str
    names: tuple[str, ...]
    start_position: int
    scan_range: ScanRange
    settings: RebuildSettings


@dataclass(frozen=True)
class RangeScanOutcome:
    """`summaries`: the derived tables' sums of the rows this scan wrote, by projection;
    `finished`: the range is scanned to its end (else it was asked to stop)."""

    summaries: dict[str, Any]
    finished: bool
    pid: int
    peak_rss_kib: int


class RangeScan:
    """Scans one range of stream ids: reads its events page by page, folds each case once,
    writes every table's rows in batches, each with the range's progress."""

    def __init__(
        self,
        task: RangeScanTask,
        advance: Callable[[int], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._task = task
        self._targets = [TARGETS[name] for name in task.names]
        self._advance = advance
        self._stopping = stopping
        self._summaries = {
            target.name: target.derived.summary() for target in self._targets if target.derived
        }
        self._last_written = task.scan_range.last_stream_id

    async def run(self) -> RangeScanOutcome:
        writer = await _bulk_connection(self._task.database_url)
        reader = await _bulk_connection(self._task.database_url)
        try:
            finished = await self._scan(writer, reader)
        finally:
            await close_quietly(reader)
            await close_quietly(writer)
        return RangeScanOutcome(
            self._summaries,
            finished,
            os.getpid(),
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        )

    async def _scan(self, writer: asyncpg.Connection, reader: asyncpg.Connection) -> bool:
        """Whether the range was scanned to its end (else asked to stop)."""
        task, settings = self._task, self._task.settings
        scan_range = task.scan_range
        after = scan_range.after if scan_range.last_stream_id is None else scan_range.last_stream_id
        cursor = (after, _LAST_VERSION) if after is not None else ("", 0)
        folding = _Folding()
        written_events, finished = scan_range.events_done, False
        # Three things at once: PostgreSQL reads the next page (on a connection of its own) and
        # writes the last batch, while this process folds the page in hand.
        pages = _pages_ahead(
            reader, cursor, scan_range.up_to, task.start_position, settings.page_events
        )
        writing: asyncio.Task[None] | None = None
        try:
            async with aclosing(pages):
                async for page, last_page in pages:
                    if self._stopping():
                        break
                    folding.take(page, last_page)
                    if folding.states and (last_page or len(folding.states) >= settings.flush_rows):
                        states, events = folding.batch()
                        written_events += events
                        if writing is not None:
                            await writing  # batches are written in order, one at a time
                        writing = asyncio.create_task(self._write(writer, states, written_events))
                    if self._advance is not None:
                        self._advance(len(page))
                    finished = last_page
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                # A batch in flight commits even when the scan is interrupted (Ctrl-C, an error):
                # the rebuild then resumes after it. The error raised says more than its outcome.
                await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()
        return finished

    async def _write(
        self, connection: asyncpg.Connection, states: list[ComplaintState], events_done: int
    ) -> None:
        """Write every table's rows for these cases and move the range's progress, together."""
        names = [target.name for target in self._targets]
        async with connection.transaction():
            for target in self._targets:
                records = [target.record(state) for state in states]
                await connection.copy_records_to_table(
                    target.building_table, records=records, columns=target.columns
                )
                if target.derived:
                    summary = self._summaries[target.name]
                    for record in records:
                        target.derived.add(summary, record)
            moved = await connection.fetchval(
                _MOVE_RANGE,
                names,
                self._task.scan_range.number,
                self._last_written,
                states[-1].id,
                events_done,
            )
            if moved != len(names):
                raise ScanRangeTaken(
                    f"range {self._task.scan_range.number} of the rebuild of {', '.join(names)}"
                    " was moved by another scan"
                )
        self._last_written = states[-1].id


_MOVE_RANGE = """
WITH moved AS (
    UPDATE projection_rebuild_partitions SET last_stream_id = $4, events_done = $5
    WHERE name = ANY($1::text[]) AND partition = $2 AND last_stream_id IS NOT DISTINCT FROM $3
    RETURNING 1
)
SELECT count(*) FROM moved
"""


# --- the scan worker processes -------------------------------------------------------------------

_stop_scans: Any = None  # the parent's multiprocessing Event, in a worker
_parent_pid = 0


def _worker_started(stop: Any) -> None:
    """In each worker: Ctrl-C is the parent's to handle (it asks the workers to stop)."""
    global _stop_scans, _parent_pid
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop_scans, _parent_pid = stop, os.getppid()


def _asked_to_stop() -> bool:
    return _stop_scans.is_set() or os.getppid() != _parent_pid


def scan_range_in_worker(task: RangeScanTask) -> RangeScanOutcome:
    """A range's scan in a worker process. Its error comes back to the parent as a plain
    `RuntimeError` (some driver errors cannot be pickled) with the original's type and text."""
    try:
        return asyncio.run(RangeScan(task, stopping=_asked_to_stop).run())
    except Exception as error:
        raise RuntimeError(f"{type(error).__name__}: {error}") from None


def _summed_peaks(outcomes: list[RangeScanOutcome]) -> int:
    """The worker processes' peak RSS, each counted once (a worker may scan several ranges)."""
    peaks: dict[int, int] = {}
    for outcome in outcomes:
        if outcome.pid != os.getpid():
            peaks[outcome.pid] = max(peaks.get(outcome.pid, 0), outcome.peak_rss_kib)
    return sum(peaks.values())


async def _scan_ranges(connection: asyncpg.Connection, name: str) -> list[ScanRange]:
    rows = await connection.fetch(
        "SELECT partition, after_stream_id, up_to_stream_id, last_stream_id, events_done"
        " FROM projection_rebuild_partitions WHERE name = $1 ORDER BY partition",
        name,
    )
    return [ScanRange(*row) for row in rows]


async def _pages_ahead(
    reader: asyncpg.Connection,
    cursor: tuple[str, int],
    up_to_stream_id: str | None,
    up_to_position: int,
    page_size: int,
) -> AsyncIterator[tuple[list[asyncpg.Record], bool]]:
    """The events up to `up_to_position` after `cursor` (stream id, version) and up to stream
    `up_to_stream_id` (None: the last), page by page with whether it is the last, each page
    asked for before the one before it is handed out."""
    # The upper bound is in the SQL only when there is one, so the index scan stops at it.
    bounded = "" if up_to_stream_id is None else " AND stream_id <= $5"
    query = (
        f"SELECT {DECODE_COLUMNS} FROM events"
        f" WHERE (stream_id, version) > ($1, $2) AND position <= $3{bounded}"
        " ORDER BY stream_id, version LIMIT $4"
    )
    bound = () if up_to_stream_id is None else (up_to_stream_id,)

    def read(after: tuple[str, int]) -> asyncio.Task[list[asyncpg.Record]]:
        return asyncio.create_task(reader.fetch(query, *after, up_to_position, page_size, *bound))

    reading = read(cursor)
    try:
        while True:
            page = await reading
            last_page = len(page) < page_size
            if not last_page:
                reading = read((page[-1]["stream_id"], page[-1]["version"]))
                await asyncio.sleep(0)  # let it send its query before the caller starts folding
            yield page, last_page
            if last_page:
                return
    finally:
        if not reading.done():
            reading.cancel()


class _Folding:
    """Cases folded from rows in (stream_id, version) order, each once its last row is in."""

    def __init__(self) -> None:
        self.states: list[ComplaintState] = []  # cases folded, not taken in a batch yet
        self._events = 0  # their events
        self._case_rows: list[asyncpg.Record] = []  # the events of the case being read

    def take(self, page: list[asyncpg.Record], last_page: bool) -> None:
        case_rows = self._case_rows
        for row in page:
            if case_rows and row["stream_id"] != case_rows[0]["stream_id"]:
                self._fold(case_rows)
                case_rows = []
            case_rows.append(row)
        if last_page and case_rows:
            self._fold(case_rows)
            case_rows = []
        self._case_rows = case_rows

    def batch(self) -> tuple[list[ComplaintState], int]:
        """The cases folded since the last batch, and their events."""
        batch = self.states, self._events
        self.states, self._events = [], 0
        return batch

    def _fold(self, case_rows: list[asyncpg.Record]) -> None:
        state = fold_stream(case_rows)
        assert state is not None, "a stream always begins with its receipt"
        self.states.append(state)
        self._events += len(case_rows)


async def _start_building(
    connection: asyncpg.Connection,
    target: RebuildTarget,
    start_position: int,
    total: int,
    ranges: list[ScanRange],
) -> None:
    for live, building in target.table_pairs:
        await connection.execute(f"DROP TABLE IF EXISTS {building}")
        await connection.execute(
            f"CREATE TABLE {building} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
    await connection.execute(
        """
        INSERT INTO projection_rebuilds
            (name, building_table, phase, start_position, caught_up_to, events_total)
        VALUES ($1, $2, 'scan', $3, $3, $4)
        ON CONFLICT (name) DO UPDATE SET
            building_table = EXCLUDED.building_table, phase = 'scan',
            start_position = $3, caught_up_to = $3,
            events_done = 0, events_total = $4, started_at = now(), updated_at = now()
        """,
        target.name,
        target.building_table,
        start_position,
        total,
    )
    await connection.execute(
        "DELETE FROM projection_rebuild_partitions WHERE name = $1", target.name
    )
    await connection.executemany(
        "INSERT INTO projection_rebuild_partitions (name, partition, after_stream_id,"
        " up_to_stream_id) VALUES ($1, $2, $3, $4)",
        [(target.name, r.number, r.after, r.up_to) for r in ranges],
    )


async def _set_phase(connection: asyncpg.Connection, job: RebuildJob, phase: str) -> None:
    await connection.execute(
        "UPDATE projection_rebuilds SET phase = $2, updated_at = now() WHERE name = $1",
        job.name,
        phase,
    )
    job.phase = phase


class _TargetRebuild:
    """Steps 2 to 4 for one projection whose scan is done."""

    def __init__(
        self,
        target: RebuildTarget,
        job: RebuildJob,
        progress: Progress,
        settings: RebuildSettings,
    ) -> None:
        self.target = target
        self.job = job
        self._progress = progress
        self._settings = settings

    async def finish(self, connection: asyncpg.Connection) -> int:
        """Build the indexes if not built yet, catch up and swap; the position swapped in at."""
        if self.job.phase == "index":
            await self._build_indexes(connection)
        return await self._catch_up_and_swap(connection)

    # --- 2. index ------------------------------------------------------------------------------

    async def _build_indexes(self, connection: asyncpg.Connection) -> None:
        self._progress.phase(self.target.name, "building indexes")
        for live, building in self.target.table_pairs:
            for statement in await _index_statements(connection, live, building):
                await connection.execute(statement)
            await connection.execute(f"ANALYZE {building}")
        await _set_phase(connection, self.job, "catch_up")

    # --- 3 and 4. catch up and swap --------------------------------------------------------------

    async def _catch_up_and_swap(self, connection: asyncpg.Connection) -> int:
        self._progress.phase(self.target.name, "catching up with what was written meanwhile")
        while True:
            position = await self._live_position(connection)
            if position - self.job.caught_up_to <= self._settings.close_enough:
                break
            await self._catch_up(connection, position)
        self._progress.phase(self.target.name, "swapping the new table in")
        if self.target.follows_feed:
            return await self._swap_checkpointed(connection)
        return await self._swap_live(connection)

    async def _live_position(self, connection: asyncpg.Connection) -> int:
        if self.target.follows_feed:
            return await read_checkpoint(connection, self.target.name)
        return await feed_complete_up_to(connection)

    async def _catch_up(
        self, connection: asyncpg.Connection, up_to: int, *, committing: bool = True
    ) -> None:
        """Re-fold the cases with events in (caught_up_to, up_to], window by window."""
        while self.job.caught_up_to < up_to:
            window_end = min(up_to, self.job.caught_up_to + self._settings.catch_up_window)
            if committing:
                async with connection.transaction():
                    await self._refold_window(connection, window_end)
            else:
                await self._refold_window(connection, window_end)

    async def _refold_window(self, connection: asyncpg.Connection, window_end: int | None) -> None:
        """Re-fold the cases with events after `caught_up_to` (up to `window_end`, or all).

        Feed-following tables fold each case up to the window's end, as the runner would;
        live-written ones fold the whole case, as the last command wrote it."""
        target, job = self.target, self.job
        stream_ids = await connection.fetch(
            "SELECT DISTINCT stream_id FROM events WHERE position > $1 AND position <= $2",
            job.caught_up_to,
            window_end if window_end is not None else _ALL_POSITIONS,
        )
        fold_up_to = window_end if target.follows_feed and window_end else _ALL_POSITIONS
        states = await fold_streams(
            connection, [row["stream_id"] for row in stream_ids], fold_up_to
        )
        records = [target.record(state) for state in states]
        if records and target.derived:
            await target.derived.upsert(connection, records, _BUILDING)
        elif records:
            await connection.executemany(upsert_sql(target.building_table, target.columns), records)
        reached = window_end
        if reached is None:
            reached = await connection.fetchval(
                "SELECT coalesce(max(position), $1) FROM events", job.caught_up_to
            )
        await connection.execute(
            "UPDATE projection_rebuilds SET caught_up_to = $2, updated_at = now() WHERE name = $1",
            job.name,
            reached,
        )
        job.caught_up_to = reached

    async def _swap_live(self, connection: asyncpg.Connection) -> int:
        async with connection.transaction():
            await connection.execute(f"LOCK TABLE {self.target.table} IN ACCESS EXCLUSIVE MODE")
            await self._refold_window(connection, None)
            await self._swap_tables(connection)
        return self.job.caught_up_to

    async def _swap_checkpointed(self, connection: asyncpg.Connection) -> int:
        target = self.target
        async with connection.transaction():
            checkpoint = await connection.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
                target.name,
            )
            await self._catch_up(connection, checkpoint, committing=False)
            position = max(checkpoint, self.job.caught_up_to)
            await connection.execute(f"LOCK TABLE {target.table} IN ACCESS EXCLUSIVE MODE")
            await self._swap_tables(connection)
            await connection.execute(
                "UPDATE projection_checkpoints SET position = $2, updated_at = now()"
                " WHERE name = $1",
                target.name,
                position,
            )
        return position

    async def _swap_tables(self, connection: asyncpg.Connection) -> None:
        """Drop the live table and put the new one, with its indexes' names, in its place."""
        target = self.target
        for live, building in target.table_pairs:
            for missing in await _index_statements(connection, live, building):
                await connection.execute(missing)  # an index a migration added since step 2
            index_names = await _index_names(connection, live)
            await connection.execute(f"DROP TABLE {live}")
            await connection.execute(f"ALTER TABLE {building} RENAME TO {live}")
            for name in index_names:
                await connection.execute(
                    f"ALTER INDEX IF EXISTS {_rebuild_name(name)} RENAME TO {name}"
                )
        await connection.execute("DELETE FROM projection_rebuilds WHERE name = $1", target.name)


async def _bulk_connection(database_url: str) -> asyncpg.Connection:
    """A connection whose jsonb codec is binary: COPY (binary) cannot use the text one."""
    connection = await connect(database_url)
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        format="binary",
        encoder=lambda value: b"\x01" + orjson.dumps(value),
        decoder=lambda data: orjson.loads(data[1:]),
    )
    return connection


def _job(row: asyncpg.Record, *, resumed: bool) -> RebuildJob:
    return RebuildJob(
        name=row["name"],
        phase=row["phase"],
        start_position=row["start_position"],
        caught_up_to=row["caught_up_to"],
        events_done=row["events_done"],
        events_total=row["events_total"],
        resumed=resumed,
    )


def _rebuild_name(name: str) -> str:
    return f"{name[:60]}_rb"


_COLUMNS_OF = """
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""


async def _same_columns(connection: asyncpg.Connection, live: str, building: str) -> bool:
    building_columns = await connection.fetch(_COLUMNS_OF, building)
    return bool(building_columns) and [tuple(r) for r in building_columns] == [
        tuple(r) for r in await connection.fetch(_COLUMNS_OF, live)
    ]


_CONSTRAINTS = """
SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint
WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname
"""

_PLAIN_INDEXES = """
SELECT index.relname AS name, pg_get_indexdef(index.oid) AS definition
FROM pg_index JOIN pg_class AS index ON index.oid = pg_index.indexrelid
WHERE pg_index.indrelid = $1::regclass
  AND pg_index.indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conrelid = $1::regclass)
ORDER BY index.relname
"""

_INDEX_DEFINITION = re.compile(r"^(CREATE (?:UNIQUE )?INDEX) \S+ ON (?:ONLY )?\S+ (USING .*)$")


async def _index_statements(
    connection: asyncpg.Connection, table: str, building_table: str
) -> list[str]:
    """The live table's constraints and indexes, for the new table, each skipped if built."""
    built = {
        row["name"]
        for row in await connection.fetch(
            "SELECT relname AS name FROM pg_class WHERE relname LIKE '%\\_rb' AND relkind = 'i'"
        )
    }
    statements = []
    for row in await connection.fetch(_CONSTRAINTS, table):
        name = _rebuild_name(row["conname"])
        if name not in built:
            statements.append(
                f"ALTER TABLE {building_table} ADD CONSTRAINT {name} {row['definition']}"
            )
    for row in await connection.fetch(_PLAIN_INDEXES, table):
        name = _rebuild_name(row["name"])
        match = _INDEX_DEFINITION.match(row["definition"])
        if match is None:
            raise ValueError(f"cannot read the definition of index {row['name']}")
        if name not in built:
            statements.append(f"{match.group(1)} {name} ON {building_table} {match.group(2)}")
    return statements


async def _index_names(connection: asyncpg.Connection, table: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass",
        table,
    )
    return [row["name"] for row in rows]
