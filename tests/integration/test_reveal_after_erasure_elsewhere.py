"""A process that read a case's key keeps it cached for a while (`crypto.key_cache`); when another
process (another host, or the retention sweep) erases the case meanwhile, this one must still
answer the reveal as erased: the stream's `PersonalDataErased` decides, not the cache."""

from datetime import date

import asyncpg
import pytest

from complaintcore.application.personal_data_reveal import PersonalDataGone, reveal
from complaintcore.application.retention_sweep import RetentionSweep, SweepOrder
from complaintcore.auth.principals import Principal
from complaintcore.events.store import PostgresEventStore
from projection_support import CaseDesk
from testsupport import session_case_keys

REGULATOR = Principal("regulator-1", "regulator", None)
SWEPT_ON = date(2026, 6, 1)  # a case closed in 2019 is past the default five years


async def test_a_case_erased_by_another_process_is_not_revealed_from_a_cached_key(
    pool: asyncpg.Pool,
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 7))
    revealed = await reveal(pool, desk.service, REGULATOR, case_id, "核实身份")
    assert revealed["personal_data"] == "held"  # the desk's process now holds the key cached

    # another process: case keys (and their cache) of its own
    order = SweepOrder(on=SWEPT_ON, correlation_id="erased-elsewhere")
    async with pool.acquire() as connection:
        sweep = RetentionSweep(
            connection, PostgresEventStore(pool), session_case_keys(), order, today=lambda: SWEPT_ON
        )
        assert (await sweep.run()).erased == 1

    with pytest.raises(PersonalDataGone):
        await reveal(pool, desk.service, REGULATOR, case_id, "核实身份")
