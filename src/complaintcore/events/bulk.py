"""Many new streams written with one COPY: the rows and the refusals of
`PostgresEventStore.append_streams` (the bulk import's way into `events`).

COPY is the fastest way into a table, but it has no WHERE and no RETURNING: nothing can be
guarded row by row as `append` guards an insert, and no position comes back. So the bulk path
creates new streams only, and the unique keys are its guards: a stream that exists already has
a version 1 (or one is being written by a transaction in flight: COPY waits for its end), and a
second one refuses the whole COPY. The positions are drawn by the column default, row by row in
the order given, after the store has taken its position floor (see `store`).
"""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from complaintcore.events.chaining import chained_rows
from complaintcore.events.model import GENESIS_HASH, ConcurrencyError, InvalidEventData, NewEvent

# The columns COPY fills; `position` is left to its default (the sequence).
COPY_COLUMNS = (
    "stream_id",
    "version",
    "event_type",
    "schema_version",
    "data",
    "metadata",
    "idempotency_key",
    "recorded_at",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True)
class NewStream:
    """A stream to create whole: its events become versions 1, 2, ...; `idempotency_key` is
    stored as `append` stores one (on the first event's row, in every event's metadata)."""

    stream_id: str
    events: Sequence[NewEvent]
    idempotency_key: str | None = None


def copy_records(streams: Iterable[NewStream]) -> tuple[list[tuple[Any, ...]], set[str]]:
    """Every stream's events as rows in `COPY_COLUMNS` order, chained as `append` chains them
    (`chained_rows` from the genesis hash), and the streams' ids. Refuses a stream without events
    or given twice, and an unstorable payload (`InvalidEventData`, naming the stream).

    One stream at a time, so `streams` can be a generator: each stream's events are hashed while
    they are fresh in the CPU's caches, and freed as soon as they are rows. (The bulk import's
    batch of 1,000 cases, all made first and hashed after, took half as long again to become
    rows: a tenth more for the caches, the rest for the garbage collector walking the events.)
    """
    stream_ids: set[str] = set()
    records: list[tuple[Any, ...]] = []
    for stream in streams:
        stream_id = stream.stream_id
        if not stream.events:
            raise ValueError(f"stream {stream_id!r}: an append needs at least one event")
        if stream_id in stream_ids:
            raise ValueError(f"stream {stream_id!r} is given twice")
        stream_ids.add(stream_id)
        try:
            rows = chained_rows(stream_id, stream.events, 0, GENESIS_HASH, stream.idempotency_key)
        except InvalidEventData as error:
            raise InvalidEventData(f"stream {stream_id!r}: {error}") from error
        at = rows.recorded_at
        records.extend(
            [
                (stream_id, version, event_type, schema, data, metadata, key, at, prev, own)
                for version, event_type, schema, data, metadata, key, prev, own in zip(
                    *rows.columns(), strict=True
                )
            ]
        )
    return records, stream_ids


async def copy_into_events(
    connection: asyncpg.Connection, records: list[tuple[Any, ...]], stream_ids: Collection[str]
) -> None:
    """COPY `records` (of the streams `stream_ids`); a stream that exists already refuses them
    all with `ConcurrencyError` (expected version 0, actual None: the transaction is aborted,
    nothing more can be read in it)."""
    try:
        await connection.copy_records_to_table("events", records=records, columns=COPY_COLUMNS)
    except asyncpg.UniqueViolationError as error:
        raise ConcurrencyError(_refused_stream(error, stream_ids), 0, None) from None


def _refused_stream(error: asyncpg.UniqueViolationError, stream_ids: Collection[str]) -> str:
    """The stream the unique key names (`Key (stream_id, version)=(<id>, 1) already exists.`, or
    the idempotency key's twin); its detail as it is if it names none of `stream_ids`."""
    detail = getattr(error, "detail", None) or ""
    _, _, values = detail.partition(")=(")
    named = [stream_id for stream_id in stream_ids if values.startswith(f"{stream_id}, ")]
    return max(named, key=len) if named else detail or "one of the streams"
