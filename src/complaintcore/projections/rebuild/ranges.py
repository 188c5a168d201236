"""The scan's ranges of stream ids: splitting the feed into ranges of about as many cases each,
and their rows in `projection_rebuild_partitions` (bounds, last case written, events done)."""

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import asyncpg


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


async def stored_ranges(connection: asyncpg.Connection, name: str) -> list[ScanRange]:
    """The ranges of the rebuild of `name` and how far each got (none: no scan begun)."""
    rows = await connection.fetch(
        "SELECT partition, after_stream_id, up_to_stream_id, last_stream_id, events_done"
        " FROM projection_rebuild_partitions WHERE name = $1 ORDER BY partition",
        name,
    )
    return [ScanRange(*row) for row in rows]


async def store_ranges(connection: asyncpg.Connection, name: str, ranges: list[ScanRange]) -> None:
    """Replace the ranges of the rebuild of `name` with these, none of them begun."""
    await connection.execute("DELETE FROM projection_rebuild_partitions WHERE name = $1", name)
    await connection.executemany(
        "INSERT INTO projection_rebuild_partitions (name, partition, after_stream_id,"
        " up_to_stream_id) VALUES ($1, $2, $3, $4)",
        [(name, r.number, r.after, r.up_to) for r in ranges],
    )


_MOVE_RANGE = """
WITH moved AS (
    UPDATE projection_rebuild_partitions SET last_stream_id = $4, events_done = $5
    WHERE name = ANY($1::text[]) AND partition = $2 AND last_stream_id IS NOT DISTINCT FROM $3
    RETURNING 1
)
SELECT count(*) FROM moved
"""


async def move_range(
    connection: asyncpg.Connection,
    names: list[str],
    number: int,
    last_written: str | None,
    written: str,
    events_done: int,
) -> bool:
    """Move range `number` of each named rebuild from its last case written `last_written` to
    `written`; false when one of them was not at `last_written` (another scan wrote there)."""
    moved: int = await connection.fetchval(
        _MOVE_RANGE, names, number, last_written, written, events_done
    )
    return moved == len(names)


async def events_committed(connection: asyncpg.Connection, name: str) -> int:
    """The events whose rows the ranges' scans of `name` have committed, all ranges together."""
    committed: int = await connection.fetchval(
        "SELECT coalesce(sum(events_done), 0)::bigint FROM projection_rebuild_partitions"
        " WHERE name = $1",
        name,
    )
    return committed
