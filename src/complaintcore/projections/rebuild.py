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
   `projection_rebuilds` remembers S, the phase, and the last case written.
1. **Scan**: read the events at or below S ordered by (stream_id, version), in keyset pages on
   the unique (stream_id, version) index, fold one case at a time, and write the rows with COPY
   in batches. Each batch commits with the progress row's `last_stream_id`, so an interrupted
   scan (Ctrl-C, a crash) resumes after the last case it wrote. Memory stays flat whatever the
   number of events: two pages of events, the case being folded and two batches of rows, never
   more (nothing is kept per case once its row is written). Projections rebuilt together share
   the scan: each case is decoded and folded once and gives a row to each new table (folding is
   most of a rebuild's time). The next page is read on a second connection, and a batch is
   written, while the page in hand is folded, so the database's part overlaps the fold.
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
   The progress row is deleted in the same transaction.

The statistics keep monthly buckets beside their facts rows (projections/statistics_buckets.py):
tables derived from the rows, rebuilt alongside and swapped in the same transaction. The scan
sums the buckets of the rows it writes in memory (one entry per institution, month and key, not
per case) and writes them with COPY when it ends, with the phase change; a resumed scan first
sums the rows written before. Catch-up writes rows the way the runner does, moving the buckets.

Resuming: running the command again finds the progress row and carries on at its phase (a scan
after its last case written). `--restart` throws it away and starts over; so does a change of
the live table's columns since the rebuild began.
"""

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import orjson
import structlog

from complaintcore import advisory_locks
from complaintcore.database import connect
from complaintcore.domain.state import ComplaintState
from complaintcore.events.store import feed_complete_up_to
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
    """The progress row of a rebuild (table `projection_rebuilds`)."""

    name: str
    phase: str  # scan, index, catch_up
    start_position: int
    caught_up_to: int
    last_stream_id: str | None
    events_done: int
    events_total: int
    resumed: bool = False


@dataclass(frozen=True)
class RebuildResult:
    """`events`: the events replayed; `seconds`: this projection's own time (the first of a
    group that shared a scan also carries the scan's), so the sum over results is the whole."""

    name: str
    resumed: bool
    start_position: int
    position: int
    events: int
    seconds: float


@dataclass(frozen=True)
class RebuildSettings:
    page_events: int = 10_000  # events read per keyset page
    flush_rows: int = 2_000  # cases per COPY batch (and per progress commit)
    catch_up_window: int = 10_000  # feed positions re-folded per catch-up transaction
    close_enough: int = 1_000  # positions behind at which the swap takes its lock


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
    begun with."""
    unknown = [name for name in names if name not in TARGETS]
    if unknown:
        raise ValueError(f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    targets = [TARGETS[name] for name in dict.fromkeys(names or TARGETS)]
    connection = await connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT * FROM projection_rebuilds WHERE name = ANY($1::text[])",
            [target.name for target in targets],
        )
    finally:
        await close_quietly(connection)
    results = []
    for group in _groups(targets, {row["name"]: row for row in rows}, restart):
        rebuilder = Rebuilder(
            database_url, group, progress or SilentProgress(), settings or RebuildSettings()
        )
        results.extend(await rebuilder.run(restart=restart))
    return sorted(results, key=lambda result: targets.index(TARGETS[result.name]))


def _groups(
    targets: list[RebuildTarget], rows: dict[str, asyncpg.Record], restart: bool
) -> list[list[RebuildTarget]]:
    """Projections that can share a scan: all of them when starting afresh; when resuming, those
    whose interrupted scans stopped at the same place."""
    if restart:
        return [targets]
    groups: dict[tuple[Any, ...], list[RebuildTarget]] = {}
    for target in targets:
        row = rows.get(target.name)
        if row is None:
            key: tuple[Any, ...] = ("fresh",)
        elif row["phase"] == "scan":
            key = ("scan", row["start_position"], row["last_stream_id"])
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
        self._summaries: dict[str, Any] = {}  # the derived tables' sums, while scanning

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
                    )
                )
                started = finished
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
            if all(unchanged):
                self._progress.phase(self._label, "resuming the rebuild begun earlier")
                return [_job(row, resumed=True) for row in rows]
            self._progress.phase(self._label, "a table changed since; starting over")
        start_position = await feed_complete_up_to(connection)
        total = await connection.fetchval(
            "SELECT count(*) FROM events WHERE position <= $1", start_position
        )
        async with connection.transaction():
            for target in self._targets:
                await _start_building(connection, target, start_position, total)
        return [
            RebuildJob(target.name, "scan", start_position, start_position, None, 0, total)
            for target in self._targets
        ]

    # --- 1. scan -------------------------------------------------------------------------------

    async def _scan(self, connection: asyncpg.Connection, jobs: list[RebuildJob]) -> None:
        first, page_size = jobs[0], self._settings.page_events
        self._progress.scanning(self._label, first.events_total, first.events_done)
        cursor = (first.last_stream_id, _LAST_VERSION) if first.last_stream_id else ("", 0)
        case_rows: list[asyncpg.Record] = []  # the events of the case being read
        states: list[ComplaintState] = []  # cases folded, rows not written yet
        self._summaries = {
            target.name: (
                await target.derived.seed(connection, target.building_table)
                if first.last_stream_id
                else target.derived.summary()
            )
            for target in self._targets
            if target.derived
        }
        written_events, pending_events = first.events_done, 0
        # Three things at once: PostgreSQL reads the next page (on a connection of its own) and
        # writes the last batch, while this process folds the page in hand.
        reader = await _bulk_connection(self._database_url)
        writing: asyncio.Task[None] | None = None
        try:
            async for page, last_page in _pages_ahead(
                reader, cursor, first.start_position, page_size
            ):
                for row in page:
                    if case_rows and row["stream_id"] != case_rows[0]["stream_id"]:
                        states.append(_folded(case_rows))
                        pending_events += len(case_rows)
                        case_rows = []
                    case_rows.append(row)
                if last_page and case_rows:
                    states.append(_folded(case_rows))
                    pending_events += len(case_rows)
                    case_rows = []
                if states and (last_page or len(states) >= self._settings.flush_rows):
                    written_events += pending_events
                    if writing is not None:
                        await writing  # batches are written in order, one at a time
                    writing = asyncio.create_task(self._write(connection, states, written_events))
                    states, pending_events = [], 0
                self._progress.advance(len(page))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                # A batch in flight commits even when the scan is interrupted (Ctrl-C, an error):
                # the rebuild then resumes after it. The error raised says more than its outcome.
                await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()
            await close_quietly(reader)
        async with connection.transaction():
            for target in self._targets:
                if target.derived:
                    summary = self._summaries[target.name]
                    await target.derived.copy(connection, summary, _BUILDING)
            for job in jobs:
                job.events_done = written_events
                await _set_phase(connection, job, "index")

    async def _write(
        self, connection: asyncpg.Connection, states: list[ComplaintState], events_done: int
    ) -> None:
        """Write every table's rows for these cases and remember the last case, together."""
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
            await connection.execute(
                "UPDATE projection_rebuilds SET last_stream_id = $2, events_done = $3,"
                " updated_at = now() WHERE name = ANY($1::text[])",
                [target.name for target in self._targets],
                states[-1].id,
                events_done,
            )


async def _pages_ahead(
    reader: asyncpg.Connection, cursor: tuple[str, int], up_to_position: int, page_size: int
) -> AsyncIterator[tuple[list[asyncpg.Record], bool]]:
    """The events up to `up_to_position` after `cursor` (stream id, version), page by page with
    whether it is the last, each page asked for before the one before it is handed out."""

    def read(after: tuple[str, int]) -> asyncio.Task[list[asyncpg.Record]]:
        return asyncio.create_task(
            reader.fetch(
                f"SELECT {DECODE_COLUMNS} FROM events"
                " WHERE (stream_id, version) > ($1, $2) AND position <= $3"
                " ORDER BY stream_id, version LIMIT $4",
                *after,
                up_to_position,
                page_size,
            )
        )

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


def _folded(case_rows: list[asyncpg.Record]) -> ComplaintState:
    state = fold_stream(case_rows)
    assert state is not None, "a stream always begins with its receipt"
    return state


async def _start_building(
    connection: asyncpg.Connection, target: RebuildTarget, start_position: int, total: int
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
            start_position = $3, caught_up_to = $3, last_stream_id = NULL,
            events_done = 0, events_total = $4, started_at = now(), updated_at = now()
        """,
        target.name,
        target.building_table,
        start_position,
        total,
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
        last_stream_id=row["last_stream_id"],
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
