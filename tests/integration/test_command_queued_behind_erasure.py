"""An erasure sent twice with one `Idempotency-Key` (a client that timed out and sent it
again, to another host) while the case's command lock is held. Both requests wait for the lock in
`case_command_tail`; the stored response each looks for is read in the statement's snapshot,
taken *before* the lock is granted, so the second one granted does not find the first one's
response, reads the stream as it stands after the lock (erased), and is refused by the domain
(409 `personal_data_erased`) instead of replaying the first answer (200). The same held for any
command the domain refuses once it has been applied (a withdrawal, a decision, ...): a refused
request with a key now looks for its stored response again before it answers."""

import asyncio
from collections.abc import Awaitable
from typing import Any

import asyncpg

from complaintcore.application.case_document import case_document
from complaintcore.application.complaint_service import Rendered, RequestInfo
from complaintcore.application.idempotency import IdempotentRequest
from complaintcore.auth.principals import Principal
from complaintcore.crypto.keyed_hash import KeyedHash
from complaintcore.crypto.suites import suite_named
from complaintcore.domain.commands import ErasePersonalData, FollowUp
from complaintcore.domain.rules import RuleViolation
from complaintcore.infra import advisory_locks
from projection_support import STAFF, SWEPT_ON, CaseDesk, closed_in_2019
from testsupport import until_waiting_on_locks

ADMIN = Principal("admin-1", "admin", None)
ERASED_ON = SWEPT_ON
LEGAL_BASIS = "PIPL Art. 47"
ERASE = ErasePersonalData(ERASED_ON, "retention period ended", LEGAL_BASIS)


def _render(state, today, policy) -> Rendered:
    return Rendered(200, case_document(state, today, policy), {})


async def _queued_on_a_held_lock(
    pool: asyncpg.Pool, case_id: str, first: Awaitable[Any], then: Awaitable[Any]
) -> list[Any]:
    """`first`, then `then`, sent while another command holds the case's lock, each queued on it
    before the next is sent; their answers (or errors) once the lock is let go."""
    holder = await pool.acquire()
    try:
        await holder.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        tasks = []
        for queued, sent in enumerate((first, then), start=1):
            tasks.append(asyncio.ensure_future(sent))
            await until_waiting_on_locks(pool, "advisory", queued)
        await holder.execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        return await asyncio.gather(*tasks, return_exceptions=True)
    finally:  # never leave a request queued on the lock (the pool would not close)
        await holder.execute("SELECT pg_advisory_unlock_all()")
        await pool.release(holder)


async def _erasable_case(pool: asyncpg.Pool) -> tuple[CaseDesk, str]:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await closed_in_2019(desk)
    desk.today = ERASED_ON
    return desk, case_id


async def test_an_erasure_sent_again_with_its_key_answers_as_the_first(pool: asyncpg.Pool) -> None:
    desk, case_id = await _erasable_case(pool)
    body = {"erased_on": ERASED_ON.isoformat(), "reason": ERASE.reason, "legal_basis": LEGAL_BASIS}
    path = f"/v1/complaints/{case_id}/erase-personal-data"
    fingerprints = KeyedHash(b"f" * 32, suite_named("aes-256-gcm"))
    key = IdempotentRequest.of(
        fingerprints, ADMIN.id, ADMIN.institution, "erase-once", "POST", path, body
    )

    def send() -> Awaitable[Rendered]:
        return desk.service.handle(
            ADMIN, case_id, ERASE, None, RequestInfo(idempotency=key), _render
        )

    # the client's retry, same key, same body, queued behind the first
    answers = await _queued_on_a_held_lock(pool, case_id, send(), send())

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
    got the key row as it was before the erasure committed, unwrapped it and cached it
    (`CaseKeys.key_for`): the erasing process itself held the destroyed key again, for up to
    five minutes, although `CaseKeys.destroy` says an erased key goes at once from the erasing
    process."""
    desk, case_id = await _erasable_case(pool)
    later = FollowUp(False, ERASED_ON, None, "回访")

    answers = await _queued_on_a_held_lock(
        pool,
        case_id,
        desk.service.handle(ADMIN, case_id, ERASE, None, RequestInfo(), _render),
        desk.service.handle(STAFF, case_id, later, None, RequestInfo(), _render),
    )

    assert isinstance(answers[0], Rendered), answers
    assert await pool.fetchval("SELECT count(*) FROM case_keys WHERE case_id = $1", case_id) == 0
    cached = desk.service._case_keys.cached_cipher(case_id, "aes-256-gcm")
    assert cached is None, "the erasing process holds the destroyed key again"
