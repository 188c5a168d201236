"""What a rebuild leaves besides the rows: tables vacuumed and analyzed as they are swapped in,
so that autovacuum has nothing to come for just after (and the planner has its statistics); and
how their statements are run, side by side on several connections."""

from datetime import date

import asyncpg
import pytest
from test_rebuild_resume import (
    SMALL_BATCHES,
    InterruptAt,
    Interrupted,
    index_definitions,
    live_tables,
    some_cases,
)

from complaintcore.infra.database import connect
from complaintcore.projections.rebuild import TARGETS, Rebuilder, rebuild
from complaintcore.projections.rebuild.tables import (
    TableIndexing,
    build_side_by_side,
    table_indexing,
)
from complaintcore.projections.runner import ProjectionRunner
from projection_support import CaseDesk

TABLES = ("case_view", "case_statistics", "statistics_monthly", "statistics_handling_days")


async def nine_cases_projected(pool: asyncpg.Pool, database_url: str) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await some_cases(desk, 9, date(2026, 3, 2))
    await ProjectionRunner(database_url, desk.store).catch_up()


async def test_the_swapped_in_tables_come_vacuumed_and_analyzed(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await nine_cases_projected(pool, database_url)

    await rebuild(database_url, settings=SMALL_BATCHES)

    for table in TABLES:
        pages, all_visible = await pool.fetchrow(
            "SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass", table
        )
        assert pages > 0 and all_visible == pages, f"{table}: its visibility map is not set"
        analyzed = await pool.fetchval(
            "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = $1", table
        )
        assert analyzed > 0, f"{table}: no planner statistics"


def logged(mark: str) -> str:
    return f"INSERT INTO indexing_log (mark) VALUES ('{mark}')"


async def test_tables_are_indexed_side_by_side_each_table_first_in_order(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await pool.execute(
        "CREATE TABLE indexing_log (seq bigserial, mark text, pid int DEFAULT pg_backend_pid())"
    )
    tables = [
        TableIndexing([logged("A1"), logged("A2")], [logged("a1"), logged("a2"), logged("a3")]),
        TableIndexing([logged("B1")], [logged("b1")]),
        TableIndexing([logged("C1")], []),
    ]
    connections = [await connect(database_url), await connect(database_url)]
    try:
        await build_side_by_side(connections, tables)
    finally:
        for connection in connections:
            await connection.close()

    log = await pool.fetch("SELECT mark, pid FROM indexing_log ORDER BY seq")
    order = [row["mark"] for row in log]
    assert sorted(order) == ["A1", "A2", "B1", "C1", "a1", "a2", "a3", "b1"]
    assert order.index("A1") < order.index("A2")
    assert all(order.index(then) > order.index("A2") for then in ("a1", "a2", "a3"))
    assert order.index("b1") > order.index("B1")
    assert len({row["pid"] for row in log}) == 2  # both connections took work


async def test_a_failed_statement_stops_the_indexing_and_is_raised(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await pool.execute("CREATE TABLE indexing_log (mark text)")
    tables = [
        TableIndexing([logged("A1")], ["SELECT 1 / 0", logged("a1")]),
        TableIndexing([logged("B1")], [logged("b1")]),
    ]
    connections = [await connect(database_url), await connect(database_url)]
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await build_side_by_side(connections, tables)
        # the connections are left usable, nothing running on them
        assert [await c.fetchval("SELECT 1") for c in connections] == [1, 1]
    finally:
        for connection in connections:
            await connection.close()


async def test_an_index_phase_cut_short_resumes_with_what_is_built_skipped(
    pool: asyncpg.Pool, database_url: str
) -> None:
    await nine_cases_projected(pool, database_url)
    live, indexes = await live_tables(pool), await index_definitions(pool)
    both = [TARGETS["case_view"], TARGETS["statistics"]]
    with pytest.raises(Interrupted):
        await Rebuilder(
            database_url, both, InterruptAt(phase="building indexes"), SMALL_BATCHES
        ).run()

    # as if stopped midway: the case view's table vacuumed, constrained and given two of its
    # indexes, the statistics' facts table vacuumed only
    connection = await connect(database_url)
    try:
        case_view, *_ = await table_indexing(connection, TARGETS["case_view"])
        facts, *_ = await table_indexing(connection, TARGETS["statistics"])
        for statement in [*case_view.first, *case_view.then[:2], facts.first[0]]:
            await connection.execute(statement)
        resumed_case_view, *_ = await table_indexing(connection, TARGETS["case_view"])
    finally:
        await connection.close()
    assert len(resumed_case_view.first) == 1  # the vacuum again; the constraints are built
    assert resumed_case_view.then == case_view.then[2:]

    results = await rebuild(database_url, settings=SMALL_BATCHES)

    assert [r.resumed for r in results] == [True, True]
    assert await live_tables(pool) == live
    assert await index_definitions(pool) == indexes
