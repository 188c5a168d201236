"""The rebuild as a whole: the projections grouped by what scan they can share, each group
started (or resumed) under the rebuild's lock, scanned once, then each projection finished."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from complaintcore.crypto.suites import CiphertextRejected
from complaintcore.events.store import feed_complete_up_to
from complaintcore.infra import advisory_locks
from complaintcore.infra.database import connect
from complaintcore.infra.read_replicas import replica_name
from complaintcore.projections.rebuild.jobs import (
    RebuildJob,
    job_of,
    job_row,
    job_rows,
    set_events_done,
    set_phase,
    start_job,
)
from complaintcore.projections.rebuild.protocol import (
    BUILDING,
    TARGETS,
    Progress,
    RebuildSettings,
    RebuildTarget,
    SilentProgress,
)
from complaintcore.projections.rebuild.ranges import (
    ScanRange,
    split_stream_ids,
    store_ranges,
    stored_ranges,
)
from complaintcore.projections.rebuild.scan import (
    RangeScan,
    RangeScanOutcome,
    RangeScanTask,
    RebuildScanFailed,
)
from complaintcore.projections.rebuild.swap import TargetRebuild
from complaintcore.projections.rebuild.tables import (
    build_side_by_side,
    create_building_tables,
    same_columns,
    table_indexing,
)
from complaintcore.projections.rebuild.workers import scan_in_workers, summed_peaks
from complaintcore.projections.runner import close_quietly, lock_key

log = structlog.get_logger("complaintcore.projections.rebuild")


class RebuildAlreadyRunning(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"a rebuild of {name} is already running")
        self.name = name


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
        rows = await job_rows(connection, names)
        ranges: dict[str, list[ScanRange]] = {}
        for name in names:
            ranges[name] = await stored_ranges(connection, name)
    finally:
        await close_quietly(connection)
    results = []
    for group in _groups(targets, rows, ranges, restart):
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


class StandbyBehind(Exception):
    """The standby to read the events from has not replayed the primary's WAL in time."""


STANDBY_WAIT_S = 120.0

_REPLAYED = "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() >= $1::text::pg_lsn"


async def standby_caught_up(primary: asyncpg.Connection, read_url: str) -> None:
    """Wait until the standby at `read_url` has replayed all the primary has written now (so
    every event up to the scan's start position is there); `StandbyBehind` after
    `STANDBY_WAIT_S`, or at once when it is no standby of a primary."""
    target = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
    standby = await connect(read_url)
    try:
        deadline = time.monotonic() + STANDBY_WAIT_S
        while True:
            in_recovery, replayed = await standby.fetchrow(_REPLAYED, target)
            if not in_recovery:
                raise StandbyBehind(f"{replica_name(read_url)} is not a standby (not in recovery)")
            if replayed:
                return
            if time.monotonic() > deadline:
                raise StandbyBehind(
                    f"{replica_name(read_url)} has not replayed the primary's WAL up to"
                    f" {target} in {STANDBY_WAIT_S:g} s"
                )
            await asyncio.sleep(0.2)
    finally:
        await close_quietly(standby)


# What a scan meets in events it cannot read (altered, of an unknown type or schema version, of
# a case whose key is gone: each a ValueError or a ciphertext refused); anything else (a database
# error, the progress asking to stop) goes up as it is
_EVENTS_UNREAD = (CiphertextRejected, ValueError)


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
        connection = await connect(self._database_url)
        try:
            await self._lock(connection)
            jobs = await self._start_or_resume(connection, restart)
            if jobs[0].phase == "scan":
                await self._scan(connection, jobs)
            await self._build_indexes(jobs)
            results = []
            for target, job in zip(self._targets, jobs, strict=True):
                position = await TargetRebuild(target, job, self._progress, self._settings).finish(
                    connection
                )
                finished = time.monotonic()
                self._progress.finished(target.name)
                log.info("projection rebuilt", projection=target.name, position=position)
                results.append(self._result(job, position, finished - started))
                started, self._workers_peak_rss_kib = finished, 0
            return results
        finally:
            await close_quietly(connection)

    async def _lock(self, connection: asyncpg.Connection) -> None:
        for target in self._targets:
            key = lock_key(target.name, advisory_locks.PROJECTION_REBUILD)
            if not await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key):
                raise RebuildAlreadyRunning(target.name)

    def _result(self, job: RebuildJob, position: int, seconds: float) -> RebuildResult:
        return RebuildResult(
            job.name,
            job.resumed,
            job.start_position,
            position,
            job.events_done,
            seconds,
            self._workers_peak_rss_kib,
        )

    # --- 0. start or resume --------------------------------------------------------------------

    async def _start_or_resume(
        self, connection: asyncpg.Connection, restart: bool
    ) -> list[RebuildJob]:
        rows = [await job_row(connection, target.name) for target in self._targets]
        if not restart and all(row is not None for row in rows):
            if await self._resumable(connection, rows[0]):
                self._progress.phase(self._label, "resuming the rebuild begun earlier")
                return [job_of(row, resumed=True) for row in rows]
            self._progress.phase(self._label, "a table changed since; starting over")
        return await self._start(connection)

    async def _resumable(self, connection: asyncpg.Connection, first: asyncpg.Record) -> bool:
        """No table's columns changed since the rebuild began, and a scan has its ranges."""
        unchanged = [
            await same_columns(connection, live, building)
            for target in self._targets
            for live, building in target.table_pairs
        ]
        # a scan without its ranges (none stored) cannot know what it wrote: start over
        resumable = first["phase"] != "scan" or await stored_ranges(connection, first["name"])
        return all(unchanged) and bool(resumable)

    async def _start(self, connection: asyncpg.Connection) -> list[RebuildJob]:
        start_position = await feed_complete_up_to(connection)
        total = await connection.fetchval(
            "SELECT count(*) FROM events WHERE position <= $1", start_position
        )
        ranges = await split_stream_ids(connection, start_position, self._settings.partitions)
        async with connection.transaction():
            for target in self._targets:
                await create_building_tables(connection, target)
                await start_job(connection, target, start_position, total)
                await store_ranges(connection, target.name, ranges)
        return [
            RebuildJob(target.name, "scan", start_position, start_position, 0, total)
            for target in self._targets
        ]

    # --- 1. scan -------------------------------------------------------------------------------

    async def _scan_here(self, number: int, tasks: list[RangeScanTask]) -> RangeScanOutcome:
        """Range `number`'s scan in this process, failing as a worker's does (found by a review
        pass: an unreadable event was a traceback here, one line from the workers)."""
        try:
            return await RangeScan(tasks[number], self._progress.advance).run()
        except _EVENTS_UNREAD as error:
            raise RebuildScanFailed(
                f"the scan of range {number} of {len(tasks)} failed: {error}"
            ) from error

    async def _scan(self, connection: asyncpg.Connection, jobs: list[RebuildJob]) -> None:
        first = jobs[0]
        if self._settings.read_url is not None:
            await standby_caught_up(connection, self._settings.read_url)
        ranges = await stored_ranges(connection, first.name)
        done = sum(scan_range.events_done for scan_range in ranges)
        self._progress.scanning(self._label, first.events_total, done)
        summaries = await self._summaries_written(connection, ranges)
        names = tuple(target.name for target in self._targets)
        tasks = [
            RangeScanTask(self._database_url, names, first.start_position, r, self._settings)
            for r in ranges
        ]
        if self._settings.scan_workers <= 1 or len(tasks) == 1:
            outcomes = [await self._scan_here(number, tasks) for number in range(len(tasks))]
        else:
            outcomes = await scan_in_workers(
                connection, tasks, done, self._settings, self._progress
            )
        self._workers_peak_rss_kib = summed_peaks(outcomes)
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
                    await target.derived.copy(connection, summaries[target.name], BUILDING)
            ranges = await stored_ranges(connection, jobs[0].name)
            events_done = sum(scan_range.events_done for scan_range in ranges)
            for job in jobs:
                await set_events_done(connection, job, events_done)
                await set_phase(connection, job, "index")

    # --- 2. indexes, every projection's at once -------------------------------------------------

    async def _build_indexes(self, jobs: list[RebuildJob]) -> None:
        """Step 2 of every projection still to index, all their tables' statements side by side
        on as many connections as the scan had workers (`tables.build_side_by_side`); then each
        moves on to its catch-up. A failure stops the others."""
        pending = [job for job in jobs if job.phase == "index"]
        if not pending:
            return
        connections = [await connect(self._database_url)]
        try:
            tables = []
            for job in pending:
                self._progress.phase(job.name, "building indexes")
                tables += await table_indexing(connections[0], TARGETS[job.name])
            statements = sum(len(table.then) + 1 for table in tables)
            for _ in range(min(self._settings.scan_workers, statements) - 1):
                connections.append(await connect(self._database_url))
            await build_side_by_side(connections, tables)
            for job in pending:
                await set_phase(connections[0], job, "catch_up")
        finally:
            for connection in connections:
                await close_quietly(connection)
