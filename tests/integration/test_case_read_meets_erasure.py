"""`ComplaintService.case` (GET /v1/complaints/{id}) reads the stream, then the case's
key, in two round trips. A case erased by another process (the sweep, another host) between them
shows the stream without its `PersonalDataErased` and no key: the state is folded with every shown
field None but not marked erased, and the case document (the masked name of None) raised: a 500
instead of the case. The stream is read again once its key is found gone, and the case reads
erased."""

from datetime import date

import asyncpg

from complaintcore.api.routes.complaint_queries import get_complaint_audit
from complaintcore.application.case_document import case_document
from complaintcore.application.complaint_service import ComplaintService
from complaintcore.application.retention_sweep import RetentionSweep, SweepOrder
from complaintcore.auth.principals import Principal
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.read_replicas import ReplicaSet
from complaintcore.projections.case_view import load_index_key
from complaintcore.reference.calendars import CalendarRepository
from complaintcore.reference.institutions import InstitutionDirectory
from projection_support import CaseDesk
from testsupport import session_case_keys

REGULATOR = Principal("regulator-1", "regulator", None)
SWEPT_ON = date(2026, 6, 1)


async def _another_host(pool: asyncpg.Pool) -> ComplaintService:
    """A serving process of its own (its own key cache, nothing cached yet)."""
    case_keys = session_case_keys()
    async with pool.acquire() as connection:
        index_key = await load_index_key(connection, case_keys.provider, case_keys.suite.name)
    return ComplaintService(
        pool,
        PostgresEventStore(pool),
        InstitutionDirectory(pool),
        CalendarRepository(pool),
        case_keys,
        index_key,
        today=lambda: SWEPT_ON,
    )


async def _sweep(pool: asyncpg.Pool) -> int:
    order = SweepOrder(on=SWEPT_ON, correlation_id="case-read-meets-erasure")
    async with pool.acquire() as connection:
        sweep = RetentionSweep(
            connection, PostgresEventStore(pool), session_case_keys(), order, today=lambda: SWEPT_ON
        )
        return (await sweep.run()).erased


async def test_a_case_erased_between_its_stream_and_its_key_reads_as_a_case(
    pool: asyncpg.Pool,
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 7))

    host = await _another_host(pool)
    read_stream = host.case_events

    sweeps = []

    async def stream_then_erasure_elsewhere(*args, **kwargs):
        events = await read_stream(*args, **kwargs)
        if not sweeps:  # the sweep commits between the first read and the key's
            sweeps.append(await _sweep(pool))
        return events

    host.case_events = stream_then_erasure_elsewhere  # type: ignore[method-assign]
    state, today, policy = await host.case(REGULATOR, case_id)
    # what the route does with it (api/routes/complaint_queries.get_complaint)
    document = case_document(state, today, policy)
    assert sweeps == [1]
    assert document["personal_data"] == "erased"
    assert document["complainant"]["name"] is None


async def test_the_audit_of_a_case_erased_between_its_stream_and_its_key_answers(
    pool: asyncpg.Pool,
) -> None:
    """GET /v1/complaints/{id}/audit, the route itself on the primary: the same two reads."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 7))

    host = await _another_host(pool)
    read_stream = host.case_events

    sweeps = []

    async def stream_then_erasure_elsewhere(*args, **kwargs):
        events = await read_stream(*args, **kwargs)
        if not sweeps:
            sweeps.append(await _sweep(pool))
        return events

    host.case_events = stream_then_erasure_elsewhere  # type: ignore[method-assign]
    reads = ReplicaSet(pool, [], max_lag_s=1.0, check_s=1.0)
    audited = await get_complaint_audit(case_id, REGULATOR, host, reads, None)
    assert sweeps == [1]
    assert audited["state"]["id"] == case_id
    assert audited["state"]["personal_data"] == "erased"
