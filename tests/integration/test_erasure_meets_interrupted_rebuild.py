"""An erasure while a rebuild of `case_view` is left part-way (its `case_view_rebuild` table
filled, the swap not yet done): DOMAIN.md "Personal data", Retention — once erased, every personal
field of the case reads as erased everywhere ("rebuilt projections, the blind index"), and no table
but the key table holds personal data (masked values included) of the erased case. Found by a
review pass: the left table kept the erased complainant's masked fields and blind index."""

import asyncio

import asyncpg
import pytest

from complaintcore.projections.rebuild import RebuildSettings, rebuild, scan
from complaintcore.projections.rebuild.protocol import SilentProgress
from projection_support import CaseDesk, closed_in_2019, erase_past_retention


class _Stopped(Exception):
    """The rebuild stopped after its scan, before its indexes and its swap (as a crash or a
    Ctrl-C there leaves it, resumable)."""


class _StopBeforeIndexes(SilentProgress):
    def phase(self, name: str, text: str) -> None:
        if text == "building indexes":
            raise _Stopped(name)


async def test_an_erasure_reaches_the_rows_of_a_rebuild_left_part_way(
    database_url: str, pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    case_id = await closed_in_2019(desk)
    settings = RebuildSettings(page_events=50, flush_rows=10, scan_workers=1)
    with pytest.raises(_Stopped):
        await rebuild(database_url, ["case_view"], progress=_StopBeforeIndexes(), settings=settings)
    before = await pool.fetchrow(
        "SELECT complainant, complainant_index FROM case_view_rebuild WHERE case_id = $1", case_id
    )
    assert before is not None and before["complainant_index"] is not None, "the rebuild scanned"

    assert await erase_past_retention(pool, "sweep-during-rebuild") == 1
    live = await pool.fetchrow(
        "SELECT complainant, complainant_index FROM case_view WHERE case_id = $1", case_id
    )
    assert live["complainant_index"] is None  # the live row is erased

    left = await pool.fetchrow(
        "SELECT complainant::text AS complainant, complainant_index, personal_data"
        " FROM case_view_rebuild WHERE case_id = $1",
        case_id,
    )
    # the rebuild's table must not keep the erased complainant's masked name, number, phone or
    # blind index
    assert left is None or (
        left["complainant_index"] is None
        and "张*" not in left["complainant"]
        and "002X" not in left["complainant"]
    ), dict(left)

    # the rebuild resumed: its catch-up writes the case again, as erased
    await rebuild(database_url, ["case_view"], settings=settings)
    rebuilt = await pool.fetchrow(
        "SELECT complainant_index, personal_data FROM case_view WHERE case_id = $1", case_id
    )
    assert (rebuilt["complainant_index"], rebuilt["personal_data"]) == (None, "erased")


async def _left_row(pool: asyncpg.Pool, case_id: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT complainant_index, personal_data FROM case_view_rebuild WHERE case_id = $1",
        case_id,
    )


async def test_an_erasure_between_a_batchs_read_and_its_write_is_not_written_over(
    database_url: str, pool: asyncpg.Pool, desk: CaseDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a review pass: the sweep committed while a scan folded a batch read before it;
    the batch then wrote the case with its masked complainant and blind index, and a rebuild
    left part-way kept them."""
    case_id = await closed_in_2019(desk)
    write = scan.RangeScan._write
    erased: list[int] = []

    async def written_after_an_erasure(self: scan.RangeScan, *args: object) -> None:
        if not erased:
            erased.append(await erase_past_retention(pool, "sweep-mid-scan"))
        await write(self, *args)

    monkeypatch.setattr(scan.RangeScan, "_write", written_after_an_erasure)
    settings = RebuildSettings(page_events=50, flush_rows=10, scan_workers=1)
    with pytest.raises(_Stopped):
        await rebuild(database_url, ["case_view"], progress=_StopBeforeIndexes(), settings=settings)

    assert erased == [1]
    assert await _left_row(pool, case_id) is None
    monkeypatch.undo()
    await rebuild(database_url, ["case_view"], settings=settings)
    rebuilt = await pool.fetchrow(
        "SELECT complainant_index, personal_data FROM case_view WHERE case_id = $1", case_id
    )
    assert (rebuilt["complainant_index"], rebuilt["personal_data"]) == (None, "erased")


async def test_an_erasure_waits_for_a_batch_in_flight_then_reaches_its_rows(
    database_url: str, pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    """The other order: a batch's COPY uncommitted as the erasure deletes (its rows invisible
    to the DELETE until then). The erasure waits for the batch, then deletes its row."""
    case_id = await closed_in_2019(desk)
    settings = RebuildSettings(page_events=50, flush_rows=10, scan_workers=1)
    with pytest.raises(_Stopped):
        await rebuild(database_url, ["case_view"], progress=_StopBeforeIndexes(), settings=settings)
    in_flight = await pool.acquire()
    try:
        transaction = in_flight.transaction()
        await transaction.start()
        # as a batch's COPY holds the table: the case's row written again, not committed
        await in_flight.execute("DELETE FROM case_view_rebuild WHERE case_id = $1", case_id)
        await in_flight.execute(
            "INSERT INTO case_view_rebuild SELECT * FROM case_view WHERE case_id = $1", case_id
        )
        erasing = asyncio.create_task(erase_past_retention(pool, "sweep-behind-a-batch"))
        await asyncio.sleep(0.5)
        assert not erasing.done(), "the erasure waits for the batch in flight"
        await transaction.commit()
        assert await asyncio.wait_for(erasing, 30) == 1
    finally:
        await pool.release(in_flight)
    assert await _left_row(pool, case_id) is None
