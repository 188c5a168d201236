"""Following the global feed for projections that lag it (the statistics), exactly once.

Exactly once across crashes
---------------------------
The runner reads a batch of events after its checkpoint from the feed (`read_feed` never skips
an event whose transaction commits late), then in one transaction: locks its checkpoint row and
checks it still holds the position it read from, reads every event of the streams the batch
touched up to the batch's last position, folds each case, upserts the cases' rows and moves the
checkpoint to that last position. A crash anywhere before the commit leaves rows and checkpoint
as they were and the batch is applied again; the rows are keyed by case and are a pure function
of the case's events up to the checkpoint, so applying it again cannot count anything twice.

One runner per projection
-------------------------
Every API process starts a runner for each projection, but only the holder of a session-level
advisory lock works: `pg_try_advisory_lock(namespace, key)` on a connection of its own. The
two-int form is used so the lock never looks like one of the event store's position floors
(bigint advisory locks, `objsubid = 1` in `pg_locks`; two-int locks have `objsubid = 2`). The
others retry every few seconds; when the holder dies, PostgreSQL ends its session, the lock goes
with it and the next standby to try takes over. The batch transactions run on the lock's own
connection, so a runner that lost its session (and so its lock) cannot commit anything more: two
runners never write at once, and the checkpoint check above catches anything else that moved it
(a rebuild swapping its table in, see projections/rebuild/).

Beyond the folded cases
-----------------------
A projection may also be handed the batch's stored events (`observe`, after `project`, in the
same transaction) and may have work that comes due with time rather than with the feed
(`sweep`: the alerts' day turn). Whenever it has caught up with the feed (a batch short of
full, or none), the runner sweeps if the sweep's key (the day) differs from the one it last
swept under in this activation, so at start too, in a transaction that holds the checkpoint row
like a batch's: only the active runner sweeps, and it judges what the feed has folded so far.
"""

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import asyncpg
import structlog

from complaintcore.domain.state import ComplaintState
from complaintcore.events.model import StoredEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra import advisory_locks
from complaintcore.infra.database import connect, service_command_timeout
from complaintcore.infra.migrations import HEAD_REVISION
from complaintcore.infra.tasks import cancel_and_wait
from complaintcore.projections import statistics
from complaintcore.projections.shared_feed import FeedSource, SharedFeed
from complaintcore.projections.statistics import buckets as statistics_buckets
from complaintcore.projections.streams import KeptFolds, fold_streams

log = structlog.get_logger("complaintcore.projections.runner")


Project = Callable[[asyncpg.Connection, Sequence[ComplaintState]], Awaitable[None]]
Observe = Callable[
    [asyncpg.Connection, Sequence[ComplaintState], Sequence[StoredEvent]], Awaitable[None]
]
RunnerRole = Literal["starting", "standby", "active", "stopped"]


class Sweep(Protocol):
    """Work that comes due with time: done once for each new `key()` (compared by equality:
    the day, say, and what judges it that day), and at start."""

    async def key(self) -> object: ...

    async def sweep(self, connection: asyncpg.Connection, key: object) -> None: ...


@dataclass(frozen=True)
class FeedProjection:
    """A projection the runner keeps: its checkpoint name and how it writes the folded cases;
    optionally what it makes of the batch's events (`observe`) and its `sweep`."""

    name: str
    project: Project
    observe: Observe | None = None
    sweep: Sweep | None = None


STATISTICS = FeedProjection(statistics.NAME, statistics_buckets.upsert_statistics)


def lock_key(name: str, namespace: int = advisory_locks.PROJECTION_RUNNER) -> tuple[int, int]:
    """The two-int advisory lock key of a projection (both halves non-negative int4)."""
    return namespace, zlib.crc32(name.encode()) & 0x7FFFFFFF


class CheckpointMoved(Exception):
    """The checkpoint row is not where this runner left it (a rebuild swapped its table in)."""

    def __init__(self, position: int) -> None:
        super().__init__(f"the checkpoint is now at {position}")
        self.position = position


STAND_DOWN_RETRY_S = 60.0  # how long a runner of an older release waits before trying again


class SchemaNotThisRelease(Exception):
    """The database's schema is not the one this code writes: a newer release migrated it (a
    rolling upgrade, the old processes not stopped yet). Its runner writes nothing more: a
    migration that empties a projection for the new code to write again would otherwise see
    it written by the old (found by a review pass: statistics without their handlers or
    yearly rows after an upgrade, for good)."""

    def __init__(self, revision: str | None) -> None:
        super().__init__(
            f"the database's schema is at {revision}, this release writes {HEAD_REVISION}:"
            " stop this process (the new release's runners carry on)"
        )


async def read_checkpoint(executor: asyncpg.Connection | asyncpg.Pool, name: str) -> int:
    position = await executor.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1", name
    )
    if position is None:
        raise LookupError(f"no checkpoint row for projection {name!r}: run the migrations")
    return position


async def apply_batch(
    connection: asyncpg.Connection,
    projection: FeedProjection,
    checkpoint: int,
    events: Sequence[StoredEvent],
    kept: KeptFolds | None = None,
) -> int:
    """Apply feed `events` (all after `checkpoint`) in one transaction; the new checkpoint.
    With `kept`, the cases folded in earlier batches are evolved from there."""
    last_position = events[-1].position
    async with connection.transaction():
        await _hold_checkpoint(connection, projection.name, checkpoint)
        if kept is not None:
            states = await kept.states_after(connection, events)
        else:
            stream_ids = sorted({event.stream_id for event in events})
            states = await fold_streams(connection, stream_ids, last_position)
        await projection.project(connection, states)
        if projection.observe is not None:
            await projection.observe(connection, states, events)
        await connection.execute(
            "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
            projection.name,
            last_position,
        )
    return last_position


async def apply_sweep(
    connection: asyncpg.Connection, projection: FeedProjection, checkpoint: int, key: object
) -> None:
    """Run the projection's sweep under `key` in one transaction holding its checkpoint row
    (still at `checkpoint`), which it touches: a sweep writes as a batch does."""
    assert projection.sweep is not None
    async with connection.transaction():
        await _hold_checkpoint(connection, projection.name, checkpoint)
        await projection.sweep.sweep(connection, key)
        await connection.execute(
            "UPDATE projection_checkpoints SET updated_at = now() WHERE name = $1",
            projection.name,
        )


_HOLD_CHECKPOINT = """
SELECT (SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE) AS position,
       (SELECT version_num FROM alembic_version) AS revision
"""


async def _hold_checkpoint(connection: asyncpg.Connection, name: str, checkpoint: int) -> None:
    """Lock the projection's checkpoint row for the transaction; `CheckpointMoved` unless it is
    still at `checkpoint` (a rebuild swapped its table in), `SchemaNotThisRelease` unless the
    schema is this code's (read in the same statement: a migration takes its locks first)."""
    row = await connection.fetchrow(_HOLD_CHECKPOINT, name)
    if row["revision"] != HEAD_REVISION:
        raise SchemaNotThisRelease(row["revision"])
    if row["position"] != checkpoint:
        raise CheckpointMoved(row["position"])


class ProjectionRunner:
    """Keeps one projection up with the feed while it holds the projection's lock.

    `run()` runs until cancelled (the app's lifespan starts it as a background task);
    `catch_up()` waits for the lock, applies everything the feed has now and lets go (tests and
    batch jobs).
    """

    def __init__(
        self,
        database_url: str,
        store: FeedSource,
        projection: FeedProjection = STATISTICS,
        *,
        batch_size: int = 1000,
        poll_interval: float = 0.5,
        standby_retry: float = 2.0,
    ) -> None:
        self.projection = projection
        self.role: RunnerRole = "starting"
        self.backend_pid: int | None = None
        self._database_url = database_url
        self._store = store
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._standby_retry = standby_retry
        self._swept: object = None  # the sweep key last swept under, this activation
        self._kept = KeptFolds()

    @property
    def name(self) -> str:
        return self.projection.name

    async def run(self) -> None:
        try:
            while True:
                retry = self._standby_retry
                try:
                    await self._hold_lock_and_follow()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning(
                        "projection runner lost its database; retrying",
                        projection=self.name,
                        error=type(error).__name__,
                    )
                except SchemaNotThisRelease as newer:
                    # its lock let go, so the new release's runner takes the projection on; not
                    # taken back soon (idle, it would hold it from the new one until an event)
                    log.error("projection runner stands down", projection=self.name, why=str(newer))
                    retry = max(retry, STAND_DOWN_RETRY_S)
                except Exception as error:
                    # An event this code cannot read, for one: never skip it, keep retrying, and
                    # let the lag show (personal data could sit in the message: type only).
                    log.error(
                        "projection runner failed; retrying",
                        projection=self.name,
                        error=type(error).__name__,
                    )
                self.role = "standby"
                await asyncio.sleep(retry)
        finally:
            self.role = "stopped"

    async def catch_up(self) -> int:
        """Wait for the lock, apply every event the feed has now, release; the checkpoint."""
        connection = await connect(self._database_url, command_timeout=service_command_timeout())
        try:
            await self._wait_for_lock(connection)
            self._swept = None
            checkpoint = await read_checkpoint(connection, self.name)
            while True:
                events = await self._store.read_feed(after=checkpoint, limit=self._batch_size)
                if not events:
                    return await self._sweep_if_due(connection, checkpoint)
                checkpoint = await self._apply(connection, checkpoint, events)
        finally:
            await close_quietly(connection)

    async def _hold_lock_and_follow(self) -> None:
        connection = await connect(self._database_url, command_timeout=service_command_timeout())
        try:
            await self._wait_for_lock(connection)
            self.role, self.backend_pid = "active", connection.get_server_pid()
            log.info("projection runner active", projection=self.name)
            await self._follow(connection)
        finally:
            self.backend_pid = None
            await close_quietly(connection)

    async def _wait_for_lock(self, connection: asyncpg.Connection) -> None:
        key = lock_key(self.name)
        while not await connection.fetchval("SELECT pg_try_advisory_lock($1, $2)", *key):
            self.role = "standby"
            await asyncio.sleep(self._standby_retry)

    async def _follow(self, connection: asyncpg.Connection) -> None:
        self._swept = None
        checkpoint = await read_checkpoint(connection, self.name)
        while True:
            events = await self._store.read_feed(after=checkpoint, limit=self._batch_size)
            if events:
                checkpoint = await self._apply(connection, checkpoint, events)
            if len(events) < self._batch_size:  # caught up: the clocks are as fresh as can be
                checkpoint = await self._sweep_if_due(connection, checkpoint)
            if not events:
                await asyncio.sleep(self._poll_interval)

    async def _apply(
        self, connection: asyncpg.Connection, checkpoint: int, events: Sequence[StoredEvent]
    ) -> int:
        try:
            return await apply_batch(connection, self.projection, checkpoint, events, self._kept)
        except CheckpointMoved as moved:
            log.info("projection checkpoint moved", projection=self.name, position=moved.position)
            return moved.position

    async def _sweep_if_due(self, connection: asyncpg.Connection, checkpoint: int) -> int:
        sweep = self.projection.sweep
        if sweep is None:
            return checkpoint
        key = await sweep.key()
        if key == self._swept:
            return checkpoint
        try:
            await apply_sweep(connection, self.projection, checkpoint, key)
        except CheckpointMoved as moved:
            log.info("projection checkpoint moved", projection=self.name, position=moved.position)
            return moved.position
        self._swept = key
        log.info("projection swept", projection=self.name, key=str(key))
        return checkpoint


# The runner in an API process shares its event loop with the requests: it folds and writes a
# batch without yielding, so a smaller batch is a shorter pause for every request in flight (1,000
# events, each case's whole stream folded, held the loop for tens of ms). Fewer events a batch
# cost little more overall: a case is seldom touched twice within one poll.
IN_PROCESS_BATCH_SIZE = 100


@asynccontextmanager
async def background_runners(
    database_url: str,
    store: PostgresEventStore,
    *,
    enabled: bool = True,
    poll_interval: float = 0.5,
    standby_retry: float = 2.0,
    also: Sequence[FeedProjection] = (),
    batch_size: int = IN_PROCESS_BATCH_SIZE,
) -> AsyncIterator[dict[str, ProjectionRunner]]:
    """The feed projections' runners as background tasks for the life of the block (an API
    process's lifespan): started on entry, cancelled and awaited on the way out, which closes
    their sessions and so hands their locks to a standby at once. The statistics always; `also`
    the projections built with the process's own services (the alerts: its today, its
    policies). `batch_size`: fewer events a transaction in an API process (see above), more in
    the runner process (`complaintcore runners`), where no request waits on the loop. The
    runners share their reads of the feed (`SharedFeed`)."""
    if not enabled:
        yield {}
        return
    feed = SharedFeed(store, fresh_for=poll_interval)
    runners = [
        ProjectionRunner(
            database_url,
            feed,
            projection,
            batch_size=batch_size,
            poll_interval=poll_interval,
            standby_retry=standby_retry,
        )
        for projection in (STATISTICS, *also)
    ]
    tasks = [
        asyncio.create_task(runner.run(), name=f"projection runner {runner.name}")
        for runner in runners
    ]
    try:
        yield {runner.name: runner for runner in runners}
    finally:
        await cancel_and_wait(tasks)


async def close_quietly(connection: asyncpg.Connection) -> None:
    """Close the session (which releases its advisory lock); a broken one is just dropped."""
    try:
        async with asyncio.timeout(5):
            await connection.close()
    except (OSError, asyncpg.InterfaceError, TimeoutError, asyncpg.PostgresError):
        connection.terminate()


# --- lag -------------------------------------------------------------------------------------

_HOLDER_PID = """
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 2 AND granted
  AND classid = $1::bigint::oid AND objid = $2::bigint::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_HOLDER = f"""
SELECT l.pid, a.application_name FROM ({_HOLDER_PID}) AS l
LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
"""

# `complaintcore serve` runs the runners in a child process by default (cli/runners.py): it sets
# this variable (host and process id) for its request workers and the child, and the child's
# sessions carry `RUNNER_PROCESS_PREFIX <serve id>` as their `application_name`, so a request
# worker can tell its own deployment's runner ("here") from one elsewhere.
SERVE_ID_VARIABLE = "COMPLAINTCORE_SERVE_ID"
RUNNER_PROCESS_PREFIX = "complaintcore runners"


def runner_process_name(serve_id: str) -> str:
    """The `application_name` of the runner process's sessions (at most 63 bytes, as stored):
    a serve id too long is cut from its left, so its end (the process id, a pod name's unique
    suffix) is kept (found by a review pass: two pods of one long deployment name were cut to
    the same name, and each reported the other's runner as its own)."""
    room = 63 - len(RUNNER_PROCESS_PREFIX) - 1
    return f"{RUNNER_PROCESS_PREFIX} {serve_id[-room:]}"


@dataclass(frozen=True)
class RunnerProcess:
    """This deployment's runner process (`serve`'s child), known by its sessions' name."""

    application_name: str


async def runner_backend_pid(executor: asyncpg.Connection | asyncpg.Pool, name: str) -> int | None:
    """The server process id of the session holding the projection's runner lock, if any."""
    return await executor.fetchval(_HOLDER_PID, *lock_key(name))


async def projection_lag(
    pool: asyncpg.Pool, name: str, runner: ProjectionRunner | RunnerProcess | None = None
) -> dict[str, Any]:
    """Checkpoint, feed head, events not applied yet, and where the active runner is:
    `here` (this process, or its `serve`'s runner process), `elsewhere` (another process or
    host) or `none` (being taken over)."""
    async with pool.acquire() as connection:
        checkpoint = await read_checkpoint(connection, name)
        head = await connection.fetchval("SELECT coalesce(max(position), 0) FROM events")
        lag = await connection.fetchval(
            "SELECT count(*) FROM events WHERE position > $1", checkpoint
        )
        found = await connection.fetchrow(_HOLDER, *lock_key(name))
    holder, holder_name = (found["pid"], found["application_name"]) if found else (None, None)
    mine = (isinstance(runner, ProjectionRunner) and runner.backend_pid == holder) or (
        isinstance(runner, RunnerProcess) and runner.application_name == holder_name
    )
    if holder is None:
        where = "none"
    elif mine:
        where = "here"
    else:
        where = "elsewhere"
    return {"checkpoint": checkpoint, "head": head, "lag_events": lag, "runner": where}
