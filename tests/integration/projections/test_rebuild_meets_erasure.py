"""A case erased while a rebuild scans: its key is destroyed after the rebuild fixed the position
it scans up to, so the scan finds the case's events without their erasure and its key gone. The
rebuild goes on, takes the erasure in as it catches up, and ends equal to the live projections;
a key missing from a case that was never erased still stops it."""

from datetime import date

import asyncpg
import pytest
from rebuild_support import every_row

from complaintcore.projections.rebuild import RebuildScanFailed, RebuildSettings, rebuild
from complaintcore.projections.rebuild import scan as scan_module
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.streams import DataKeyMissing
from projection_support import CaseDesk, closed_in_2019, erase_past_retention

ONE_WORKER = RebuildSettings(page_events=7, flush_rows=3, catch_up_window=5, scan_workers=1)


async def test_a_case_erased_during_the_scan_is_rebuilt_as_erased(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [await closed_in_2019(desk, day) for day in range(4, 10)]
    await desk.receive("BR-B", date(2026, 5, 4))  # open: kept
    original_run = scan_module.RangeScan.run

    async def erase_then_scan(self: scan_module.RangeScan) -> scan_module.RangeScanOutcome:
        # the scan's position is fixed by now: the erasures come after it
        assert await erase_past_retention(pool, "rebuild-meets-erasure") == len(cases)
        return await original_run(self)

    monkeypatch.setattr(scan_module.RangeScan, "run", erase_then_scan)
    await rebuild(database_url, settings=ONE_WORKER)
    monkeypatch.undo()

    runner = ProjectionRunner(database_url, desk.store)
    await runner.catch_up()  # the statistics follow the feed: the erasures reach them now
    rebuilt = await every_row(pool)
    erased_views = await pool.fetch(
        "SELECT case_id FROM case_view WHERE personal_data = 'erased' ORDER BY case_id"
    )
    assert [row["case_id"] for row in erased_views] == sorted(cases)
    await rebuild(database_url, restart=True, settings=ONE_WORKER)
    await runner.catch_up()
    assert await every_row(pool) == rebuilt


async def test_a_key_missing_from_a_case_never_erased_stops_the_rebuild(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", date(2026, 5, 4))
    async with pool.acquire() as connection, connection.transaction():
        # what only a damaged or wrongly restored database holds: a case's key gone, no erasure
        await connection.execute("DELETE FROM case_keys WHERE case_id = $1", case_id)
    # the scan fails as a worker's does, naming its cause (one line on the command line)
    with pytest.raises(RebuildScanFailed, match="data key is missing") as failed:
        await rebuild(database_url, settings=ONE_WORKER)
    assert isinstance(failed.value.__cause__, DataKeyMissing)
