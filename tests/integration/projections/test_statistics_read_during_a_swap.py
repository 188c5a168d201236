"""A read of the figures that meets a rebuild's swap waits for it and answers the figures of the
checkpoint it names: the statistics and the staff figures alike lock the facts table before they
take their snapshot, as the swap does before it replaces the tables and folds in what the runner
wrote after the scan."""

import asyncio
from datetime import date
from typing import Any

import asyncpg
import pytest

from complaintcore.projections.rebuild import RebuildSettings, rebuild
from complaintcore.projections.rebuild import swap as swap_module
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.statistics.queries import institution_statistics
from complaintcore.projections.statistics.staff import staff_statistics
from projection_support import CaseDesk
from testsupport import until_waiting_on_locks

ONE_PROCESS = RebuildSettings(page_events=7, flush_rows=3, scan_workers=1)
TREE = ["HO", "BR-A", "BR-B", "SUB-A1"]
YEAR = (date(2026, 1, 1), date(2026, 12, 31))


async def test_figures_read_during_a_swap_are_those_of_the_checkpoint_they_name(
    database_url: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    first = await desk.receive("BR-A", date(2026, 3, 2))
    await desk.assign(first, date(2026, 3, 2))
    await desk.decide(first, date(2026, 3, 9))
    second = await desk.receive("BR-A", date(2026, 3, 3))
    await desk.assign(second, date(2026, 3, 3))
    runner = ProjectionRunner(database_url, desk.store, batch_size=50)
    await runner.catch_up()

    finish, swap_tables = swap_module.TargetRebuild.finish, swap_module.swap_tables
    reads: dict[str, asyncio.Task[Any]] = {}

    async def finish_after_a_decision(self: swap_module.TargetRebuild, connection: Any) -> int:
        if self.target.name == "statistics":  # after the scan: the swap's catch-up folds it in
            await desk.decide(second, date(2026, 3, 10))
            await runner.catch_up()
        return await finish(self, connection)

    async def swap_while_read(connection: Any, target: Any) -> None:
        if target.name == "statistics":
            reads["staff"] = asyncio.create_task(staff_statistics(pool, TREE, *YEAR))
            reads["figures"] = asyncio.create_task(
                institution_statistics(pool, "HO", TREE, *YEAR, None, date(2026, 12, 1))
            )
            await until_waiting_on_locks(pool, "relation", 2)
        await swap_tables(connection, target)

    monkeypatch.setattr(swap_module.TargetRebuild, "finish", finish_after_a_decision)
    monkeypatch.setattr(swap_module, "swap_tables", swap_while_read)
    await rebuild(database_url, settings=ONE_PROCESS)

    staff_during, staff_checkpoint = await reads["staff"]
    figures_during, figures_checkpoint = await reads["figures"]
    staff_after, checkpoint_after = await staff_statistics(pool, TREE, *YEAR)
    assert staff_checkpoint == figures_checkpoint == checkpoint_after
    assert figures_during["total"]["figures"]["decided"] == 2
    assert [h["decided"] for h in staff_after["handlers"]] == [2]
    assert staff_during == staff_after
