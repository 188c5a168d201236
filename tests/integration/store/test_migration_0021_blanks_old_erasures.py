"""Migration 0021 and the responses stored for cases erased before it.

The change blanks the complainant in every response stored for a case when the case is erased
(`idempotency.erase_stored_responses`, in the erasure's transaction), and README says an erased
case reads erased "in every response stored for an Idempotency-Key". A case erased by the code
before this change kept its stored responses as they were (masked complainant, "held": the
defect b60b9e8 fixes). Upgrading to 0021 must blank them too: no later erasure runs for a case
already erased, and a replay would answer it as held, with its masked name, identity number
and mobile, for good.
"""

import asyncio

import asyncpg
from alembic import command

from complaintcore.infra.migrations import alembic_config, upgrade_to_head
from projection_support import CaseDesk, closed_in_2019, erase_as_admin

MASKED = {
    "kind": "natural_person",
    "name": "张*",
    "id_type": "resident_id",
    "id_number": "110105********002X",
    "contact": "138****8000",
}


async def test_upgrading_blanks_the_responses_of_cases_erased_before(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await closed_in_2019(desk)
    await erase_as_admin(desk, case_id)
    # the database as the code before 0021 left it: the case erased, the response a receipt
    # sent with an Idempotency-Key stored for it still as it was answered
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0020")
    await pool.execute(
        "INSERT INTO idempotent_requests (principal_id, institution, idempotency_key,"
        " request_hash, status_code, response_body, response_headers)"
        " VALUES ('staff-ho', 'HO', 'receipt-1', repeat('0', 64), 201, $1, '{}')",
        {"id": case_id, "personal_data": "held", "complainant": MASKED, "version": 1},
    )

    await asyncio.to_thread(upgrade_to_head, database_url)

    stored = await pool.fetchval(
        "SELECT response_body FROM idempotent_requests WHERE idempotency_key = 'receipt-1'"
    )
    assert stored["personal_data"] == "erased", stored
    assert stored["complainant"]["name"] is None, stored
