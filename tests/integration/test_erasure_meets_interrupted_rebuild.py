"""An erasure while a rebuild of `case_view` is left part-way (its `case_view_rebuild` table
filled, the swap not yet done): DOMAIN.md "Personal data", Retention — once erased, every personal
field of the case reads as erased everywhere ("rebuilt projections, the blind index"), and no table
but the key table holds personal data (masked values included) of the erased case. Found by a
review pass: the left table kept the erased complainant's masked fields and blind index."""

import asyncpg
import pytest

from complaintcore.projections.rebuild import RebuildSettings, rebuild
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
