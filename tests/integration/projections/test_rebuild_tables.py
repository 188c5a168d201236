"""What a rebuild leaves besides the rows: tables vacuumed and analyzed as they are swapped in,
so that autovacuum has nothing to come for just after (and the planner has its statistics)."""

from datetime import date

import asyncpg
from test_rebuild_resume import SMALL_BATCHES, some_cases

from complaintcore.projections.rebuild import rebuild
from complaintcore.projections.runner import ProjectionRunner
from projection_support import CaseDesk

TABLES = ("case_view", "case_statistics", "statistics_monthly", "statistics_handling_days")


async def test_the_swapped_in_tables_come_vacuumed_and_analyzed(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await some_cases(desk, 9, date(2026, 3, 2))
    await ProjectionRunner(database_url, desk.store).catch_up()

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
