"""Group commit: concurrent single-event appends whose head is known share one INSERT.

An append that arrives while batches are being written waits for the next one, so under load many
appends pay for one round trip and one commit (one WAL flush) instead of one each; without
concurrency a batch holds one append and costs what that append alone would. Each append still
stands alone: its row is guarded by its own predecessor (the event before it must have the hash it
chains to; a first event needs no guard, the unique key refuses a second version 1), a row whose
guard fails is simply not inserted and its append goes the slow way, and a batch that the unique
key refuses (another writer got to one of its streams first) is retried append by append. The
statement takes the feed's floor lock before drawing positions, as every append does.
"""

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from complaintcore.infra.metrics import GROUP_COMMIT_BATCH_SIZE, STORE_APPENDS

MAX_BATCH = 256
MAX_BATCHES_IN_FLIGHT = 4

RETRY_ALONE = "retry alone"
"""The outcome of an append whose batch the unique key refused."""


class Row(NamedTuple):
    """One event, numbered, stamped and hashed: the keys of each object of the statement's one
    parameter (`rows_parameter`)."""

    stream_id: str
    version: int
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str


def rows_parameter(rows: Iterable[Row]) -> list[dict[str, Any]]:
    """The rows as the statement's jsonb parameter: an array of objects, one a row."""
    return [row._asdict() for row in rows]


class _Waiting:
    __slots__ = ("outcome", "row")

    def __init__(self, row: Row) -> None:
        self.row = row
        self.outcome: asyncio.Future = asyncio.get_running_loop().create_future()


class AppendBatcher:
    """Writes waiting rows with `statement`, whose one parameter is `rows_parameter` of them; it
    returns (stream_id, position) for each row it inserted."""

    def __init__(self, pool: asyncpg.Pool, statement: str) -> None:
        self._pool = pool
        self._statement = statement
        self._waiting: deque[_Waiting] = deque()
        self._writers: set[asyncio.Task] = set()
        self._in_database = 0

    async def insert(self, row: Row) -> int | str | None:
        """The row's position once committed; None when its guard failed (its predecessor is not
        the one it chains to); `RETRY_ALONE` when its batch was refused by the unique key."""
        waiting = _Waiting(row)
        self._waiting.append(waiting)
        if len(self._writers) < MAX_BATCHES_IN_FLIGHT:
            writer = asyncio.get_running_loop().create_task(self._write_batches())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)  # also one cancelled before it ran
        return await waiting.outcome

    async def _write_batches(self) -> None:
        try:
            while self._waiting:
                await self._write(self._take_batch())
        finally:
            # Leave the set at once, not in the done callback, which runs a loop turn later: an
            # append queued in between would count this writer and wait for no one.
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _take_batch(self) -> list[_Waiting]:
        """The oldest waiting appends, at most one per stream (the next waits its turn).

        With no batch in the database and room for two, only half of them: the other half goes
        as a second batch at once, and from then on one half's callers build their next appends
        while the other half is being written. Taken whole, every caller would wait for one batch
        and then all of them for Python, in lockstep, the database and the process each idle
        half the time.
        """
        halve = MAX_BATCHES_IN_FLIGHT > 1 and not self._in_database
        size = min(-(-len(self._waiting) // 2), MAX_BATCH) if halve else MAX_BATCH
        batch: list[_Waiting] = []
        later: list[_Waiting] = []
        streams: set[str] = set()
        while self._waiting and len(batch) < size:
            waiting = self._waiting.popleft()
            if waiting.outcome.done():
                continue  # its caller was cancelled
            if waiting.row.stream_id in streams:
                later.append(waiting)
            else:
                streams.add(waiting.row.stream_id)
                batch.append(waiting)
        self._waiting.extendleft(reversed(later))
        return batch

    async def _write(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        try:
            inserted = await self._insert_rows(rows_parameter(waiting.row for waiting in batch))
        except asyncpg.UniqueViolationError:
            _settle(batch, lambda _: RETRY_ALONE)
        except BaseException as error:
            for waiting in batch:
                if not waiting.outcome.done():
                    waiting.outcome.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            GROUP_COMMIT_BATCH_SIZE.observe(len(batch))
            STORE_APPENDS.labels("grouped").inc(len(inserted))
            positions = {row["stream_id"]: row["position"] for row in inserted}
            _settle(batch, lambda waiting: positions.get(waiting.row.stream_id))

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> list[asyncpg.Record]:
        self._in_database += 1
        try:
            async with self._pool.acquire() as connection:
                return await connection.fetch(self._statement, rows)
        finally:
            self._in_database -= 1


def _settle(batch: list[_Waiting], outcome_of: Callable[[_Waiting], int | str | None]) -> None:
    for waiting in batch:
        if not waiting.outcome.done():
            waiting.outcome.set_result(outcome_of(waiting))
