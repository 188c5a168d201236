"""A stream altered behind the store's back (a row deleted with its trigger disabled, as only
the database's owner can) is named by the audit; a replay `as_of_version` reads by version, so it
never passes a later state off as the version asked for."""

from datetime import date

import asyncpg
import pytest

from complaintcore.application.complaint_service import VersionNotFound
from complaintcore.events.hashing import verify_chain
from projection_support import CaseDesk

ON = date(2026, 3, 2)


async def _deleted_behind_the_triggers_back(pool: asyncpg.Pool, case_id: str, version: int) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
        await connection.execute(
            "DELETE FROM events WHERE stream_id = $1 AND version = $2", case_id, version
        )
        await connection.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")


async def test_a_replay_reads_by_version_and_the_audit_names_the_missing_one(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", ON)
    await desk.assign(case_id, ON)
    await desk.decide(case_id, date(2026, 3, 10))
    await _deleted_behind_the_triggers_back(pool, case_id, 2)

    with pytest.raises(VersionNotFound):
        await desk.service.case(desk.actor, case_id, as_of_version=2)
    at_one, _, _ = await desk.service.case(desk.actor, case_id, as_of_version=1)
    assert (at_one.version, at_one.status.value) == (1, "received")

    verdict = verify_chain(await desk.store.read_stream(case_id))
    assert (verdict.intact, verdict.first_bad_version) == (False, 2)
