"""The tables a rebuild writes (`<table>_rebuild`, beside the live ones): created like the live
table, rows copied and upserted into them, the live table's indexes built on them, and the
statements that put them in the live tables' place."""

import asyncio
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import asyncpg

from complaintcore.infra.tasks import cancel_and_wait
from complaintcore.projections.rebuild.protocol import BUILDING, RebuildTarget
from complaintcore.projections.statistics.facts import upsert_sql


async def create_building_tables(connection: asyncpg.Connection, target: RebuildTarget) -> None:
    """Empty tables like the live ones, without their indexes (built after the bulk load)."""
    for live, building in target.table_pairs:
        await connection.execute(f"DROP TABLE IF EXISTS {building}")
        await connection.execute(
            f"CREATE TABLE {building} (LIKE {live} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )


async def copy_rows(
    connection: asyncpg.Connection, target: RebuildTarget, records: list[tuple[Any, ...]]
) -> None:
    await connection.copy_records_to_table(
        target.building_table, records=records, columns=target.columns
    )


async def upsert_rows(
    connection: asyncpg.Connection, target: RebuildTarget, records: list[tuple[Any, ...]]
) -> None:
    """Replace these cases' rows, moving the derived tables' sums with them."""
    if records and target.derived:
        await target.derived.upsert(connection, records, BUILDING)
    elif records:
        await connection.executemany(upsert_sql(target.building_table, target.columns), records)


_COLUMNS_OF = """
SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute
WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""


async def same_columns(connection: asyncpg.Connection, live: str, building: str) -> bool:
    """Whether the new table exists and has the live one's columns (no migration since)."""
    building_columns = await connection.fetch(_COLUMNS_OF, building)
    return bool(building_columns) and [tuple(r) for r in building_columns] == [
        tuple(r) for r in await connection.fetch(_COLUMNS_OF, live)
    ]


@dataclass(frozen=True)
class TableIndexing:
    """What makes a new table ready for its swap: `first`, one after the other (VACUUM, then its
    constraints, which lock the table), then its plain indexes (`then`), which can be built side
    by side, each on a connection of its own."""

    first: list[str]
    then: list[str]


async def table_indexing(
    connection: asyncpg.Connection, target: RebuildTarget
) -> list[TableIndexing]:
    """The statements of each of the target's new tables, those already built left out.

    Each table is vacuumed and analyzed before its indexes. Vacuumed, not only analyzed: a table
    loaded in bulk is what autovacuum comes for next (its hint bits, its visibility map for
    index-only scans), and it came just after the swap, so that the next rebuild's swap,
    dropping the table, waited a second (`deadlock_timeout`) for it to give way; before the
    indexes, so that it walks the table alone (at 220,000 cases 0.1 to 0.2 s more than ANALYZE
    alone, and the index builds after read clean pages)."""
    indexing = []
    for live, building in target.table_pairs:
        constraints, indexes = await _index_statements(connection, live, building)
        indexing.append(TableIndexing([f"VACUUM (ANALYZE) {building}", *constraints], indexes))
    return indexing


async def build_side_by_side(
    connections: Sequence[asyncpg.Connection], tables: Sequence[TableIndexing]
) -> None:
    """Run every table's statements, each connection taking the next one it may: a table's
    `first` (in order, on one connection) before its `then` (on any), and every table's `first`
    taken before any `then`, so that each vacuum starts early. Why side by side: PostgreSQL
    builds an index on one core, and a connection per projection left a core idle for 1.5 s of
    the 3 s a million events' indexes took, the statistics' done while the case view's went on."""
    plan = _IndexingPlan(tables)
    takers = [asyncio.create_task(plan.run_on(connection)) for connection in connections]
    try:
        await asyncio.gather(*takers)  # the first error raised as it is, not in a group
    finally:
        await cancel_and_wait(takers)


class _IndexingPlan:
    """The statements of `build_side_by_side` not yet taken, handed to its connections."""

    def __init__(self, tables: Sequence[TableIndexing]) -> None:
        self._heads = deque(tables)  # tables whose `first` no connection has taken
        self._ready: deque[str] = deque()  # statements of tables whose `first` is done
        self._heads_running = 0
        self._changed = asyncio.Condition()

    async def run_on(self, connection: asyncpg.Connection) -> None:
        while (taken := await self._next()) is not None:
            if isinstance(taken, str):
                await connection.execute(taken)
                continue
            for statement in taken.first:
                await connection.execute(statement)
            async with self._changed:
                self._ready.extend(taken.then)
                self._heads_running -= 1
                self._changed.notify_all()

    async def _next(self) -> TableIndexing | str | None:
        """A table whose `first` to run, else a statement ready, else (once no table's `first`
        is running, so none will be ready) None."""
        async with self._changed:
            await self._changed.wait_for(self._may_take)
            if self._heads:
                self._heads_running += 1
                return self._heads.popleft()
            return self._ready.popleft() if self._ready else None

    def _may_take(self) -> bool:
        return bool(self._heads or self._ready) or not self._heads_running


async def swap_tables(connection: asyncpg.Connection, target: RebuildTarget) -> None:
    """Drop the live tables and put the new ones, with their indexes' names, in their place."""
    for live, building in target.table_pairs:
        for missing in chain(*await _index_statements(connection, live, building)):
            await connection.execute(missing)  # an index a migration added since step 2
        index_names = await _index_names(connection, live)
        await connection.execute(f"DROP TABLE {live}")
        await connection.execute(f"ALTER TABLE {building} RENAME TO {live}")
        for name in index_names:
            await connection.execute(
                f"ALTER INDEX IF EXISTS {_rebuild_name(name)} RENAME TO {name}"
            )


def _rebuild_name(name: str) -> str:
    return f"{name[:60]}_rb"


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
) -> tuple[list[str], list[str]]:
    """The live table's constraints and its other indexes, for the new table, each skipped if
    built."""
    built = {
        row["name"]
        for row in await connection.fetch(
            "SELECT relname AS name FROM pg_class WHERE relname LIKE '%\\_rb' AND relkind = 'i'"
        )
    }
    constraints, indexes = [], []
    for row in await connection.fetch(_CONSTRAINTS, table):
        name = _rebuild_name(row["conname"])
        if name not in built:
            constraints.append(
                f"ALTER TABLE {building_table} ADD CONSTRAINT {name} {row['definition']}"
            )
    for row in await connection.fetch(_PLAIN_INDEXES, table):
        name = _rebuild_name(row["name"])
        match = _INDEX_DEFINITION.match(row["definition"])
        if match is None:
            raise ValueError(f"cannot read the definition of index {row['name']}")
        if name not in built:
            indexes.append(f"{match.group(1)} {name} ON {building_table} {match.group(2)}")
    return constraints, indexes


async def _index_names(connection: asyncpg.Connection, table: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT indexrelid::regclass::text AS name FROM pg_index WHERE indrelid = $1::regclass",
        table,
    )
    return [row["name"] for row in rows]
