"""A process that read a case's key keeps it cached for a while (`crypto.key_cache`); when another
process (another host, or the retention sweep) erases the case meanwhile, this one must still
answer the reveal as erased: the stream's `PersonalDataErased` decides, not the cache."""

import asyncpg
import pytest

from complaintcore.application.personal_data_reveal import PersonalDataGone, reveal
from complaintcore.auth.principals import Principal
from projection_support import CaseDesk, closed_in_2019, erase_past_retention

REGULATOR = Principal("regulator-1", "regulator", None)


async def test_a_case_erased_by_another_process_is_not_revealed_from_a_cached_key(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    case_id = await closed_in_2019(desk)
    revealed = await reveal(pool, desk.service, REGULATOR, case_id, "核实身份")
    assert revealed["personal_data"] == "held"  # the desk's process now holds the key cached

    assert await erase_past_retention(pool, "erased-elsewhere") == 1  # by another process

    with pytest.raises(PersonalDataGone):
        await reveal(pool, desk.service, REGULATOR, case_id, "核实身份")
