"""The four baselines of TARGETS.md, measured on the bench's own database in the same run.

- raw append: one INSERT per event, each its own transaction, into a table shaped like `events`
  (unique stream/version), 16 tasks each holding an asyncpg connection;
- raw COPY: `copy_records_to_table` of event-shaped rows into such a table;
- raw read: keyset read of those rows in position order, 10,000 a batch;
- peer: the `eventsourcing` library (bench/peer.py, in its own process), 16 threads.

Each is one round's window: bench/run.py measures them in rounds interleaved with the figures
they are the baselines of (bench/rounds.py). Raw COPY loads its rows a round's share at a time
into the same table, so that the rounds' raw reads have every row to read.
"""

import contextlib
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.database import libpq_parts
from bench.measure import Throughput, run_workers
from complaintcore.infra.database import create_pool, use_binary_json

WORKERS = 16
WARMUP_S = 0.25  # each append window's first appends, not counted (connections, statements)
READ_BATCH = 10_000
COPY_CHUNK = 50_000

# A typical event: the size and shape of a decision's payload and metadata.
PAYLOAD = {
    "handler_id": "staff-001",
    "outcome": "partially_upheld",
    "findings": "核实属实，年费扣收前未按约定提示",
    "basis": "《信用卡章程》第十二条",
    "redress_fen": 30000,
    "remedies": ["review", "litigation"],
    "notice": {"method": "sms", "notified_on": "2025-03-14", "proof_ref": "SMS-20250314"},
    "on_time": True,
    "review_window_ends_on": "2025-04-13",
}
METADATA = {
    "actor_id": "staff-001",
    "actor_role": "staff",
    "institution": "BR-01",
    "client": "bench",
}
FAKE_HASH = "f" * 64


def event_table_sql(name: str) -> str:
    return f"""
    DROP TABLE IF EXISTS {name};
    CREATE TABLE {name} (
        position        bigserial PRIMARY KEY,
        stream_id       text        NOT NULL,
        version         integer     NOT NULL,
        event_type      text        NOT NULL,
        schema_version  integer     NOT NULL,
        data            jsonb       NOT NULL,
        metadata        jsonb       NOT NULL,
        idempotency_key text,
        recorded_at     timestamptz NOT NULL,
        prev_hash       char(64)    NOT NULL,
        hash            char(64)    NOT NULL,
        UNIQUE (stream_id, version)
    )
    """


_RAW_INSERT = """
INSERT INTO bench_raw_append (stream_id, version, event_type, schema_version, data, metadata,
                              recorded_at, prev_hash, hash)
VALUES ($1, $2, 'ComplaintDecided', 1, $3, $4, now(), $5, $5)
"""


async def raw_append(url: str, seconds: float) -> Throughput:
    """One round: a fresh table, 16 tasks each inserting single events for `seconds` (after
    `WARMUP_S` not counted)."""
    pool = await create_pool(url, min_size=WORKERS, max_size=WORKERS)
    try:
        await pool.execute(event_table_sql("bench_raw_append"))
        connections = [await pool.acquire() for _ in range(WORKERS)]

        async def insert(worker: int, n: int) -> None:
            stream = f"raw-{worker}-{n // 5}"
            await connections[worker].execute(
                _RAW_INSERT, stream, n % 5 + 1, PAYLOAD, METADATA, FAKE_HASH
            )

        result = await run_workers(WORKERS, seconds, insert, WARMUP_S)
        for connection in connections:
            await pool.release(connection)
        return result
    finally:
        await pool.close()


def event_rows(count: int, first: int = 0) -> list[tuple[Any, ...]]:
    """Rows `first` to `first + count - 1` of the raw COPY table (5 events a stream)."""
    recorded_at = datetime.now(UTC)
    return [
        (
            f"copy-{n // 5}",
            n % 5 + 1,
            "ComplaintDecided",
            1,
            PAYLOAD,
            METADATA,
            None,
            recorded_at,
            FAKE_HASH,
            FAKE_HASH,
        )
        for n in range(first, first + count)
    ]


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


async def raw_copy(url: str, rows: int, first: int = 0) -> Throughput:
    """COPY `rows` event-shaped rows (built beforehand) in chunks, each chunk committed: rows
    `first` on, into a fresh table when `first` is 0, else after the rows already there."""
    records = event_rows(rows, first)
    connection = await asyncpg.connect(url)
    try:
        await use_binary_json(connection)
        if first == 0:
            await connection.execute(event_table_sql("bench_raw_copy"))
        started = time.perf_counter()
        for start in range(0, rows, COPY_CHUNK):
            await connection.copy_records_to_table(
                "bench_raw_copy", records=records[start : start + COPY_CHUNK], columns=COPY_COLUMNS
            )
        return Throughput(rows, time.perf_counter() - started)
    finally:
        await connection.close()


async def raw_read(url: str, after: int = 0, rows: int | None = None) -> Throughput:
    """Read the rows of `bench_raw_copy` after position `after` in position order into asyncpg
    records: `rows` of them, or all."""
    connection = await asyncpg.connect(url)  # asyncpg's own codecs: jsonb arrives as text
    try:
        statement = await connection.prepare(
            "SELECT * FROM bench_raw_copy WHERE position > $1 ORDER BY position LIMIT $2"
        )
        wanted = rows if rows is not None else 2**62
        started = time.perf_counter()
        read = 0
        while read < wanted and (
            batch := await statement.fetch(after, min(READ_BATCH, wanted - read))
        ):
            read += len(batch)
            after = batch[-1]["position"]
        return Throughput(read, time.perf_counter() - started)
    finally:
        await connection.close()


async def settle(url: str, vacuum: tuple[str, ...] = ()) -> None:
    """Before a round's window, not timed: `VACUUM` the given tables (hint bits and visibility
    map set once, as autovacuum would have on a store in service, rather than by whichever round
    reads them first), then a `CHECKPOINT` (the previous round's dirty pages written now, not
    during this round) where the role may."""
    connection = await asyncpg.connect(url)
    try:
        for table in vacuum:
            await connection.execute(f"VACUUM (ANALYZE) {table}")
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await connection.execute("CHECKPOINT")
    finally:
        await connection.close()


def peer(url: str, seconds: float) -> Throughput:
    """The `eventsourcing` library in its own process (bench/peer.py)."""
    parts = libpq_parts(url)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.peer",
            json.dumps(parts),
            str(seconds),
            str(WORKERS),
            str(WARMUP_S),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 120,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return Throughput(measured["events"], measured["seconds"], measured["latencies_ms"])
