"""An erasure sent twice with one `Idempotency-Key` (a client that timed out and sent it
again, to another host) while the case's command lock is held. Both requests wait for the lock in
`case_command_tail`; the stored response each looks for is read in the statement's snapshot,
taken *before* the lock is granted, so the second one granted does not find the first one's
response, reads the stream as it stands after the lock (erased), and is refused by the domain
(409 `personal_data_erased`) instead of replaying the first answer (200). The same held for any
command the domain refuses once it has been applied (a withdrawal, a decision, ...): a refused
request with a key now looks for its stored response again before it answers."""

import asyncio
from datetime import date

import asyncpg

from complaintcore.application.case_document import case_document
from complaintcore.application.complaint_service import Rendered, RequestInfo
from complaintcore.application.idempotency import IdempotentRequest
from complaintcore.auth.principals import Principal
from complaintcore.domain.commands import ErasePersonalData, FollowUp
from complaintcore.domain.rules import RuleViolation
from complaintcore.infra import advisory_locks
from projection_support import STAFF, CaseDesk

ADMIN = Principal("admin-1", "admin", None)
ERASED_ON = date(2026, 6, 1)


def _render(state, today, policy) -> Rendered:
    return Rendered(200, case_document(state, today, policy), {})


async def _waiting_for_case_lock(pool: asyncpg.Pool, count: int) -> None:
    for _ in range(500):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the requests never queued on the case lock")


async def test_an_erasure_sent_again_with_its_key_answers_as_the_first(pool: asyncpg.Pool) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 7))
    desk.today = ERASED_ON
    command = ErasePersonalData(ERASED_ON, "retention period ended", "PIPL Art. 47")
    body = {
        "erased_on": ERASED_ON.isoformat(),
        "reason": command.reason,
        "legal_basis": command.legal_basis,
    }
    request = RequestInfo(
        idempotency=IdempotentRequest.of(
            ADMIN.id,
            ADMIN.institution,
            "erase-once",
            "POST",
            f"/v1/complaints/{case_id}/erase-personal-data",
            body,
        )
    )

    async def send() -> Rendered:
        return await desk.service.handle(ADMIN, case_id, command, None, request, _render)

    # another command on the case holds its lock for a moment
    holder = await pool.acquire()
    try:
        await holder.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        first = asyncio.create_task(send())
        await _waiting_for_case_lock(pool, 1)
        again = asyncio.create_task(send())  # the client's retry, same key, same body
        await _waiting_for_case_lock(pool, 2)
        await holder.execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        answers = await asyncio.gather(first, again, return_exceptions=True)
    finally:  # never leave a request queued on the lock (the pool would not close)
        await holder.execute("SELECT pg_advisory_unlock_all()")
        await pool.release(holder)

    refused = [a for a in answers if isinstance(a, RuleViolation)]
    assert refused == [], f"the retry was refused: {refused[0].code if refused else ''}"
    assert all(isinstance(a, Rendered) and a.status_code == 200 for a in answers), answers
    assert answers[0].body == answers[1].body
    stored = await pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'PersonalDataErased'",
        case_id,
    )
    assert stored == 1


async def test_a_command_queued_behind_an_erasure_does_not_cache_the_destroyed_key(
    pool: asyncpg.Pool,
) -> None:
    """`case_command_store._CONTEXT` reads the wrapped key in the statement's snapshot, before the
    lock is granted; the stream is read after it. A command queued behind an erasure therefore
    gets the key row as it was before the erasure committed, unwraps it and caches it
    (`CaseKeys.key_for`): the erasing process itself holds the destroyed key again, for up to five
    minutes, although `CaseKeys.destroy` says an erased key goes at once from the erasing
    process."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 7))
    desk.today = ERASED_ON
    erase = ErasePersonalData(ERASED_ON, "retention period ended", "PIPL Art. 47")
    later = FollowUp(False, ERASED_ON, None, "回访")

    holder = await pool.acquire()
    try:
        await holder.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        erasing = asyncio.create_task(
            desk.service.handle(ADMIN, case_id, erase, None, RequestInfo(), _render)
        )
        await _waiting_for_case_lock(pool, 1)
        queued = asyncio.create_task(
            desk.service.handle(STAFF, case_id, later, None, RequestInfo(), _render)
        )
        await _waiting_for_case_lock(pool, 2)
        await holder.execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        answers = await asyncio.gather(erasing, queued, return_exceptions=True)
    finally:  # never leave a request queued on the lock (the pool would not close)
        await holder.execute("SELECT pg_advisory_unlock_all()")
        await pool.release(holder)
    assert isinstance(answers[0], Rendered), answers
    assert await pool.fetchval("SELECT count(*) FROM case_keys WHERE case_id = $1", case_id) == 0
    cached = desk.service._case_keys.cached_cipher(case_id, "aes-256-gcm")
    assert cached is None, "the erasing process holds the destroyed key again"
