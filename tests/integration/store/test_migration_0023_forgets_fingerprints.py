"""Migration 0023 and the requests stored for cases erased before it: an erasure now replaces
the fingerprint (a SHA-256 of a body that held the complainant's data) of every request whose
response is stored for the case; the cases erased by the code before must lose theirs on
upgrade, and the requests of cases still held keep theirs (a replay still checks the body)."""

import asyncio

import asyncpg
from alembic import command

from complaintcore.application.idempotency import ERASED_REQUEST_HASH
from complaintcore.infra.migrations import alembic_config, upgrade_to_head
from projection_support import CaseDesk, closed_in_2019, erase_as_admin

FINGERPRINT = "ab" * 32


async def test_upgrading_forgets_the_fingerprints_of_cases_erased_before(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    erased, held = await closed_in_2019(desk), await closed_in_2019(desk)
    await erase_as_admin(desk, erased)
    # the database as the code before 0023 left it: the fingerprints kept for both cases
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0022")
    for key, case_id in (("receipt-erased", erased), ("receipt-held", held)):
        await pool.execute(
            "INSERT INTO idempotent_requests (principal_id, institution, idempotency_key,"
            " request_hash, status_code, response_body, response_headers)"
            " VALUES ('staff-ho', 'HO', $1, $2, 201, $3, '{}')",
            key,
            FINGERPRINT,
            {"id": case_id, "version": 1},
        )

    await asyncio.to_thread(upgrade_to_head, database_url)

    rows = await pool.fetch("SELECT idempotency_key, request_hash FROM idempotent_requests")
    assert {row["idempotency_key"]: row["request_hash"] for row in rows} == {
        "receipt-erased": ERASED_REQUEST_HASH,
        "receipt-held": FINGERPRINT,
    }
