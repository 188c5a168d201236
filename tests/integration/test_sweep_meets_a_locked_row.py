"""A sweep meeting a case whose view row another transaction holds (a command's write between
its upsert and its commit, or another host's sweep): `FOR UPDATE SKIP LOCKED` passes over it.
Found by a review pass: the run then counted it nowhere and the CLI printed "none left held"
while a case past retention was still held. It is counted as `locked` now."""

from datetime import date, timedelta

import asyncpg

from complaintcore.application.retention_sweep import RetentionSweep, SweepOrder
from complaintcore.events.store import PostgresEventStore
from projection_support import SWEPT_ON, CaseDesk
from testsupport import session_case_keys


async def test_a_case_whose_row_a_committing_command_holds_is_counted_not_silently_skipped(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 4) + timedelta(days=3))

    order = SweepOrder(on=SWEPT_ON, correlation_id="review4")
    async with pool.acquire() as command, command.transaction():
        # what a command's write statement holds between its upsert and its commit
        await command.execute("SELECT 1 FROM case_view WHERE case_id = $1 FOR UPDATE", case_id)
        async with pool.acquire() as connection:
            sweep = RetentionSweep(
                connection,
                PostgresEventStore(pool),
                session_case_keys(),
                order,
                today=lambda: SWEPT_ON,
            )
            report = await sweep.run()

    held = await pool.fetchval(
        "SELECT count(*) FROM case_view WHERE personal_data = 'held' AND case_id = $1", case_id
    )
    assert held == 1
    assert (report.erased, dict(report.skipped)) == (0, {"locked": 1})
