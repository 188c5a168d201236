"""The event store contract and its PostgreSQL implementation.

Why the global feed never skips an event
----------------------------------------
Positions come from a sequence, so two appends can commit out of order: position 11 can be visible
while position 10's transaction is still open. A reader that handed out 11 and moved its cursor past
it would never see 10. Serialising every writer (a table lock, as the `eventsourcing` library does)
fixes that at the cost of one commit at a time. Instead, each append first takes a *shared*
transaction-level advisory lock whose key is the next position the sequence will hand out (its
"floor"; the bulk path, `append_streams`, takes it just before its COPY); shared locks never wait
for each other, so writers still commit in parallel and group their WAL flushes. A feed reader then

1. reads the highest position handed out so far (S),
2. reads the smallest floor still locked in `pg_locks` (F): an append in flight,
3. reads events after its cursor, and hands out only positions <= S and < F.

Any event missing from step 3 but below a delivered position belongs to a writer that drew its
position before step 1, so it took its floor lock before step 2 and is still holding it (F is at or
below its positions) or has ended (its rows are visible to step 3, or it rolled back and the gap is
permanent). The cost: two cheap extra reads per feed page, one extra statement per append, and a
feed that waits behind the oldest append in flight.

Why most appends are one round trip
-----------------------------------
A new event's hash covers its predecessor's hash, so an append must know the stream's head
(version, hash) before it can build its rows. Each store remembers the heads it has recently seen
(its own appends, whole-stream reads) in a small LRU. When the caller's expected version is the
remembered one, the insert carries the head as a guard inside the statement ("insert only if the
event at that version with that hash exists"), and the unique (stream, version) key refuses it if
anything came after, exactly as for a head read just before. A new stream (expected version 0)
needs no head at all: its predecessor is the genesis hash and the key refuses a second version 1.
A guard that holds nothing (the remembered head was never committed, or another process wrote the
stream) costs one round trip more: the head is read, as without a remembered one.

Why one file of 620 lines: append, group commit, the position floors and the feed that relies
on them are one concurrency argument, made once here; hashing, chaining and the bulk COPY are
modules of their own.
"""

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Protocol

import asyncpg

from complaintcore.events.batching import RETRY_ALONE, AppendBatcher, Row, rows_parameter
from complaintcore.events.bulk import NewStream, copy_into_events, copy_records
from complaintcore.events.chaining import ChainedRows, chained_event, chained_rows, now
from complaintcore.events.model import (
    GENESIS_HASH,
    AppendResult,
    ConcurrencyError,
    EventMetadata,
    NewEvent,
    StoredEvent,
)
from complaintcore.infra.metrics import STORE_APPENDS


class EventStore(Protocol):
    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        """Append all events or none. `expected_version` None skips the check; 0 means new."""
        ...

    async def read_stream(
        self, stream_id: str, *, up_to_version: int | None = None
    ) -> list[StoredEvent]: ...

    async def stream_version(self, stream_id: str) -> int: ...

    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]: ...


_COLUMNS = (
    "position, stream_id, version, event_type, schema_version, data, metadata,"
    " recorded_at, prev_hash, hash"
)

_STREAM_HEAD = """
SELECT version, hash FROM events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1
"""

_TAKE_POSITION_FLOOR = """
SELECT pg_advisory_xact_lock_shared(CASE WHEN is_called THEN last_value + 1 ELSE last_value END)
FROM event_position_seq
"""


# The floor lock and the insert in one statement (one round trip): the positions are drawn by the
# column default, which PostgreSQL evaluates on the rows coming out of the join with `floor`, so
# the lock is always taken before the first position is drawn.
_INSERT_INTO = f"""
WITH floor AS MATERIALIZED ({_TAKE_POSITION_FLOOR})
INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,
                    idempotency_key, recorded_at, prev_hash, hash)
"""
_RETURNING = "RETURNING position, version"

# Rows as arrays, one element per event.
_INSERT = f"""{_INSERT_INTO}\
SELECT $1, u.version, u.event_type, u.schema_version, u.data, u.metadata,
       u.idempotency_key, $2, u.prev_hash, u.hash
FROM floor, unnest($3::int[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[], $8::text[],
                   $9::text[], $10::text[])
     AS u(version, event_type, schema_version, data, metadata, idempotency_key, prev_hash, hash)
{{guard}}
ORDER BY u.version
{_RETURNING}
"""

# One event (most appends) as plain parameters: arrays cost more to encode and to unnest.
_INSERT_ONE = f"""{_INSERT_INTO}\
SELECT $1, $3::int, $4::text, $5::int, $6::jsonb, $7::jsonb, $8::text, $2, $9::text, $10::text
FROM floor
{{guard}}
{_RETURNING}
"""

# When the stream's head is remembered rather than read: nothing is inserted (and neither the
# floor lock nor a position is taken) unless the event at version $11 still has hash $12.
_HEAD_GUARD = (
    "WHERE EXISTS (SELECT 1 FROM events WHERE stream_id = $1 AND version = $11 AND hash = $12)"
)

_INSERT_STATEMENTS = {
    (many, guarded): (_INSERT if many else _INSERT_ONE).format(guard=_HEAD_GUARD if guarded else "")
    for many in (False, True)
    for guarded in (False, True)
}


def insert_statement(rows: ChainedRows, guarded: bool) -> tuple[str, tuple]:
    """The statement and its arguments after `$1` (stream) and `$2` (recorded at); guarded, `$11`
    and `$12` are the head's version and hash. A command on a case writes its events with it, as
    the first part of its one write statement (application/case_command_store.py)."""
    columns = rows.columns()
    many = len(rows.versions) > 1
    return _INSERT_STATEMENTS[many, guarded], columns if many else tuple(c[0] for c in columns)


# Concurrent single-event appends of different streams in one statement (see `batching`): each
# row is guarded by its own predecessor, a first event by the unique key. The rows come as one
# jsonb array of objects (`batching.rows_parameter`): one JSON encoding for the batch costs the
# process less than nine arrays encoded element by element. OFFSET 0 keeps the guard
# an index probe per row: without it, a plan made while `events` looked empty (a new database)
# hashes the guard over a scan of the whole table, and the cached plan keeps doing so as it grows.
_INSERT_BATCH = f"""
WITH floor AS MATERIALIZED ({_TAKE_POSITION_FLOOR})
INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,
                    idempotency_key, recorded_at, prev_hash, hash)
SELECT u.stream_id, u.version, u.event_type, u.schema_version, u.data, u.metadata,
       NULL, u.recorded_at, u.prev_hash, u.hash
FROM floor, jsonb_to_recordset($1::jsonb)
     AS u(stream_id text, version int, event_type text, schema_version int, data jsonb,
          metadata jsonb, recorded_at timestamptz, prev_hash text, hash text)
WHERE u.version = 1
   OR EXISTS (SELECT 1 FROM events AS before
              WHERE before.stream_id = u.stream_id AND before.version = u.version - 1
                AND before.hash = u.prev_hash
              OFFSET 0)
RETURNING stream_id, position
"""

_EARLIER_APPEND = """
SELECT position, version FROM events
WHERE stream_id = $1
  AND version >= (SELECT version FROM events WHERE stream_id = $1 AND idempotency_key = $2)
  AND metadata ->> 'idempotency_key' = $2
ORDER BY version
"""

_EXISTING_STREAMS = "SELECT stream_id FROM events WHERE version = 1 AND stream_id = ANY($1::text[])"
# in one statement: a stream another writer stores meanwhile is whole, never taken for damaged
_STREAMS_WITHOUT_A_FIRST_EVENT = (
    "SELECT stream_id FROM events WHERE stream_id = ANY($1::text[])"
    " GROUP BY stream_id HAVING min(version) > 1"
)

_LAST_POSITION_HANDED_OUT = """
SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM event_position_seq
"""

_LOWEST_FLOOR_IN_FLIGHT = """
SELECT min((classid::bigint << 32) | objid::bigint)
FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def feed_complete_up_to(connection: asyncpg.Connection) -> int:
    """The highest position at or below which every event is committed or will never exist: a
    feed reader that has read up to it has missed nothing (see module docstring). Two reads in
    this order, each in its own snapshot (never in a REPEATABLE READ transaction)."""
    handed_out = await connection.fetchval(_LAST_POSITION_HANDED_OUT)
    lowest_floor = await connection.fetchval(_LOWEST_FLOOR_IN_FLIGHT)
    return handed_out if lowest_floor is None else min(handed_out, lowest_floor - 1)


class StreamHeads:
    """The last (version, hash) seen of the most recently used streams: a hint, never the truth.

    Every use of a remembered head is checked by the database in the statement that relies on it.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._heads: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def get(self, stream_id: str) -> tuple[int, str] | None:
        head = self._heads.get(stream_id)
        if head is not None:
            self._heads.move_to_end(stream_id)
        return head

    def remember(self, stream_id: str, version: int, hash_: str) -> None:
        self._heads[stream_id] = (version, hash_)
        self._heads.move_to_end(stream_id)
        if len(self._heads) > self._capacity:
            self._heads.popitem(last=False)

    def forget(self, stream_id: str) -> None:
        self._heads.pop(stream_id, None)


STREAM_HEADS_REMEMBERED = 20_000


class PostgresEventStore:
    def __init__(
        self, pool: asyncpg.Pool, *, heads_remembered: int = STREAM_HEADS_REMEMBERED
    ) -> None:
        self._pool = pool
        self._heads = StreamHeads(heads_remembered)
        self._batcher = AppendBatcher(pool, _INSERT_BATCH)

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
        connection: asyncpg.Connection | None = None,
    ) -> AppendResult:
        """Append atomically: one INSERT (under a savepoint when `connection` is in a transaction).

        The stream's head is remembered (see the module docstring) or read first, outside that
        statement: the unique (stream, version) key refuses the insert if another append got there
        in between, exactly as it would if the head had been read inside the insert's transaction
        (READ COMMITTED takes no lock on it).
        """
        if connection is None:
            if len(events) == 1 and idempotency_key is None:
                batched = await self._append_in_a_batch(stream_id, events[0], expected_version)
                if batched is not None:
                    return batched
            async with self._pool.acquire() as acquired:
                return await self._append(
                    acquired, stream_id, events, expected_version, idempotency_key
                )
        return await self._append(connection, stream_id, events, expected_version, idempotency_key)

    async def _append_in_a_batch(
        self, stream_id: str, event: NewEvent, expected_version: int | None
    ) -> AppendResult | None:
        """The append, written with others waiting (see `batching`); None when it must be done
        alone (its head is not known, it is stale, or its batch was refused)."""
        head = self._known_head(stream_id, expected_version)
        if head is None:
            return None
        row = next_row(stream_id, event, head)
        position = await self._batcher.insert(row)
        if position is None or position == RETRY_ALONE:
            self._heads.forget(stream_id)
            return None
        self._heads.remember(stream_id, row.version, row.hash)
        return AppendResult(stream_id, row.version, row.version, (position,))

    async def _append(
        self,
        connection: asyncpg.Connection,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        idempotency_key: str | None,
    ) -> AppendResult:
        if not events:
            raise ValueError("an append needs at least one event")
        if idempotency_key is not None:
            earlier = await self._earlier_append(connection, stream_id, idempotency_key)
            if earlier is not None:
                return earlier
        while True:
            try:
                return await self._insert(
                    connection, stream_id, events, expected_version, idempotency_key
                )
            except asyncpg.UniqueViolationError as error:
                if error.constraint_name == "events_stream_idempotency_key" and idempotency_key:
                    earlier = await self._earlier_append(connection, stream_id, idempotency_key)
                    assert earlier is not None, "the key's append is committed: it conflicted"
                    return earlier
                if expected_version is None:
                    continue  # no version was asked for: another writer got there first, go again
                actual = await self.stream_version(stream_id, connection=connection)
                raise ConcurrencyError(stream_id, expected_version, actual) from None

    async def _insert(
        self,
        connection: asyncpg.Connection,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        idempotency_key: str | None,
        *,
        savepoint: bool = True,
    ) -> AppendResult:
        try:
            known_head = self._known_head(stream_id, expected_version)
            if known_head is not None:
                appended = await self._insert_after(
                    connection, stream_id, events, known_head, idempotency_key, savepoint=savepoint
                )
                if appended is not None:
                    return appended
            head = await connection.fetchrow(_STREAM_HEAD, stream_id)
            current = (head["version"], head["hash"]) if head else (0, GENESIS_HASH)
            if expected_version is not None and expected_version != current[0]:
                raise ConcurrencyError(stream_id, expected_version, current[0])
            appended = await self._insert_after(
                connection,
                stream_id,
                events,
                current,
                idempotency_key,
                guarded=False,
                savepoint=savepoint,
            )
            assert appended is not None, "an unguarded insert inserts or raises"
            return appended
        except BaseException:
            self._heads.forget(stream_id)
            raise

    def _known_head(self, stream_id: str, expected_version: int | None) -> tuple[int, str] | None:
        """The head the caller expects, when it needs no read: a new stream, or one remembered."""
        if expected_version == 0:
            return 0, GENESIS_HASH
        head = self._heads.get(stream_id)
        if head is None or expected_version != head[0]:
            return None
        return head

    async def _insert_after(
        self,
        connection: asyncpg.Connection,
        stream_id: str,
        events: Sequence[NewEvent],
        head: tuple[int, str],
        idempotency_key: str | None,
        *,
        guarded: bool = True,
        savepoint: bool = True,
    ) -> AppendResult | None:
        """Insert the events after `head`; None when guarded and `head` is not in the stream.

        Version 0 needs no guard: the unique key refuses a second version 1.
        """
        current_version, prev_hash = head
        rows = chained_rows(stream_id, events, current_version, prev_hash, idempotency_key)
        guarded = guarded and current_version > 0
        statement, columns = insert_statement(rows, guarded)
        arguments = (stream_id, rows.recorded_at, *columns)
        if guarded:
            arguments = (*arguments, current_version, prev_hash)
        if savepoint and connection.is_in_transaction():
            # A savepoint, so that a refused insert leaves the caller's transaction usable.
            async with connection.transaction():
                inserted = await connection.fetch(statement, *arguments)
        else:
            inserted = await connection.fetch(statement, *arguments)  # its own transaction
        if not inserted:
            return None
        STORE_APPENDS.labels("alone").inc(len(inserted))
        positions = tuple(row["position"] for row in sorted(inserted, key=lambda r: r["version"]))
        last_version = current_version + len(events)
        self._heads.remember(stream_id, last_version, rows.hashes[-1])
        return AppendResult(stream_id, current_version + 1, last_version, positions)

    async def append_one_each(
        self,
        connection: asyncpg.Connection,
        events: Mapping[str, NewEvent],
        heads: Mapping[str, tuple[int, str]],
    ) -> dict[str, int]:
        """Append one event to each of many existing streams (`events` by stream id), each after
        the head the caller read (`heads`: version, hash), with one statement in the caller's
        transaction; the position of each event written, by stream id.

        For a batch job that has read the streams it writes (the retention sweep): one round trip
        for the batch instead of one a stream. Each row is guarded as the group commit guards its
        rows (`_INSERT_BATCH`, which also takes the position floor before the first position is
        drawn): a stream whose given head is not in it (no event at that version with that hash)
        is left out of the answer, and nothing is written to it; a stream that has moved past
        its head (another writer's event at the next version, committed or in flight) refuses
        the whole statement through the unique (stream, version) key, with `ConcurrencyError` (on
        the first of the streams, for the refusal does not say which; `actual_version` None)
        and, as there is no savepoint, leaves the caller's transaction aborted, to be rolled
        back.
        """
        if not connection.is_in_transaction():
            raise ValueError("append_one_each writes in the caller's transaction")
        if any(heads[stream_id][0] < 1 for stream_id in events):
            raise ValueError("append_one_each appends to existing streams")
        rows = [next_row(stream_id, event, heads[stream_id]) for stream_id, event in events.items()]
        if not rows:
            return {}
        for stream_id in events:
            self._heads.forget(stream_id)  # the transaction may still roll back
        try:
            inserted = await connection.fetch(_INSERT_BATCH, rows_parameter(rows))
        except asyncpg.UniqueViolationError:
            first = next(iter(events))
            raise ConcurrencyError(first, heads[first][0], None) from None
        STORE_APPENDS.labels("batch").inc(len(inserted))
        return {row["stream_id"]: row["position"] for row in inserted}

    async def append_streams(
        self, connection: asyncpg.Connection, streams: Iterable[NewStream]
    ) -> int:
        """Create `streams`, all or none, with one COPY (see `bulk`); the events written.

        Each stream's events become versions 1, 2, ... chained from the genesis hash exactly as
        `append` chains them, with the stream's idempotency key stored as `append` stores one. New
        streams only: one that exists (or is being created in a transaction in flight) refuses
        the whole call with `ConcurrencyError` (expected version 0, actual None). The position
        floor is taken right before the COPY draws the first position, and held until commit,
        so the feed never skips these events. In the caller's transaction if it has one, and
        then without a savepoint (a refusal leaves it aborted, to be rolled back), else in one of
        its own. The connection must encode jsonb in binary (the pool's do;
        `infra.database.use_binary_json`).
        """
        records, stream_ids = copy_records(streams)  # all of them, before the floor is taken
        if not records:
            return 0
        own: AbstractAsyncContextManager[Any] = (
            nullcontext() if connection.is_in_transaction() else connection.transaction()
        )
        async with own:
            await take_position_floor(connection)
            await copy_into_events(connection, records, stream_ids)
        STORE_APPENDS.labels("bulk").inc(len(records))
        return len(records)

    async def existing_streams(
        self, stream_ids: Sequence[str], *, connection: asyncpg.Connection | None = None
    ) -> set[str]:
        """Those of `stream_ids` that hold events (committed ones, or this transaction's)."""
        executor = connection if connection is not None else self._pool
        rows = await executor.fetch(_EXISTING_STREAMS, list(stream_ids))
        return {row["stream_id"] for row in rows}

    async def streams_without_a_first_event(
        self, stream_ids: Sequence[str], *, connection: asyncpg.Connection | None = None
    ) -> set[str]:
        """Those of `stream_ids` that hold events but no version 1: a stream whose first row was
        deleted behind the store's back."""
        executor = connection if connection is not None else self._pool
        rows = await executor.fetch(_STREAMS_WITHOUT_A_FIRST_EVENT, list(stream_ids))
        return {row["stream_id"] for row in rows}

    async def _earlier_append(
        self, connection: asyncpg.Connection, stream_id: str, idempotency_key: str
    ) -> AppendResult | None:
        rows = await connection.fetch(_EARLIER_APPEND, stream_id, idempotency_key)
        if not rows:
            return None
        positions = tuple(row["position"] for row in rows)
        return AppendResult(
            stream_id, rows[0]["version"], rows[-1]["version"], positions, duplicate=True
        )

    async def stream_version(
        self, stream_id: str, *, connection: asyncpg.Connection | None = None
    ) -> int:
        sql = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"
        if connection is not None:
            return await connection.fetchval(sql, stream_id)
        return await self._pool.fetchval(sql, stream_id)

    async def read_stream_on_replica(
        self, replica: asyncpg.Pool, stream_id: str
    ) -> list[StoredEvent]:
        """The whole stream as a read replica has it; its head is not remembered (a replica may
        be behind, and the remembered heads speed up the primary's appends)."""
        rows = await replica.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version", stream_id
        )
        return [stored_event(row) for row in rows]

    async def read_stream(
        self,
        stream_id: str,
        *,
        up_to_version: int | None = None,
        connection: asyncpg.Connection | None = None,
    ) -> list[StoredEvent]:
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND version <= $2 ORDER BY version"
        )
        limit = up_to_version if up_to_version is not None else 2**31 - 1
        executor = connection if connection is not None else self._pool
        rows = await executor.fetch(sql, stream_id, limit)
        events = [stored_event(row) for row in rows]
        if events and len(events) < limit:
            self._heads.remember(stream_id, events[-1].version, events[-1].hash)
        return events

    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Events after position `after`, in position order, never skipping a late commit.

        The three reads must run in this order, each in its own snapshot (see module docstring).
        """
        async with self._pool.acquire() as connection:
            handed_out = await connection.fetchval(_LAST_POSITION_HANDED_OUT)
            lowest_floor = await connection.fetchval(_LOWEST_FLOOR_IN_FLIGHT)
            safe_upto = handed_out if lowest_floor is None else min(handed_out, lowest_floor - 1)
            if safe_upto <= after:
                return []
            rows = await connection.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE position > $1 AND position <= $2"
                " ORDER BY position LIMIT $3",
                after,
                safe_upto,
                limit,
            )
        return [stored_event(row) for row in rows]


async def take_position_floor(connection: asyncpg.Connection) -> None:
    """Announce an append in flight before drawing positions (see the module docstring).

    Every path into `events` that does not take it in its own statement (`append_streams`'s COPY)
    calls this in its transaction right before the rows that draw positions from the sequence.
    """
    await connection.execute(_TAKE_POSITION_FLOOR)


def next_row(stream_id: str, event: NewEvent, head: tuple[int, str]) -> Row:
    """`event` numbered, stamped and chained after `head` (version, hash): a row of
    `_INSERT_BATCH`."""
    version, prev_hash = head[0] + 1, head[1]
    recorded_at = now()
    metadata, own_hash = chained_event(stream_id, version, event, recorded_at, prev_hash, None)
    return Row(
        stream_id,
        version,
        event.event_type,
        event.schema_version,
        event.data,
        metadata,
        recorded_at,
        prev_hash,
        own_hash,
    )


def stored_event(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        position=row["position"],
        stream_id=row["stream_id"],
        version=row["version"],
        event_type=row["event_type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=EventMetadata.from_dict(row["metadata"]),
        recorded_at=row["recorded_at"],
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
