"""What the rebuild tests compare: every row of the projections' tables, in full order."""

from typing import Any

import asyncpg

from complaintcore.projections.statistics.buckets import TABLES as BUCKET_TABLES

PROJECTION_TABLES = ("case_view", "case_statistics", *BUCKET_TABLES)


async def every_row(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of `case_view`, `case_statistics` and the statistics' monthly buckets."""
    return {table: await rows_in_order(pool, table) for table in PROJECTION_TABLES}


async def rows_in_order(pool: asyncpg.Pool, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table` ordered by all its columns (the buckets' first is not a key)."""
    columns = await pool.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = $1", table
    )
    order = ", ".join(str(number) for number in range(1, columns + 1))
    return [tuple(row) for row in await pool.fetch(f"SELECT * FROM {table} ORDER BY {order}")]
