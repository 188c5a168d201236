"""The tables a rebuild writes (`<table>_rebuild`, beside the live ones): created like the live
table, rows copied and upserted into them, the live table's indexes built on them, and the
statements that put them in the live tables' place."""

import re
from typing import Any

import asyncpg

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


async def build_indexes(connection: asyncpg.Connection, target: RebuildTarget) -> None:
    """Each new table vacuumed and analyzed, then indexed. Vacuumed, not only analyzed: a table
    loaded in bulk is what autovacuum comes for next (its hint bits, its visibility map for
    index-only scans), and it came just after the swap, so that the next rebuild's swap, dropping
    the table, waited a second (`deadlock_timeout`) for it to give way; before the indexes, so
    that it walks the table alone (at 220,000 cases 0.1 to 0.2 s more than ANALYZE alone)."""
    for live, building in target.table_pairs:
        await connection.execute(f"VACUUM (ANALYZE) {building}")
        for statement in await _index_statements(connection, live, building):
            await connection.execute(statement)


async def swap_tables(connection: asyncpg.Connection, target: RebuildTarget) -> None:
    """Drop the live tables and put the new ones, with their indexes' names, in their place."""
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
