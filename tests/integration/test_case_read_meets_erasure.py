"""`ComplaintService.case` (GET /v1/complaints/{id}) and the audit read the stream, then the case's
key, in two round trips. A case erased by another process (the sweep, another host) between them
showed the stream without its `PersonalDataErased` and no key: the state was folded with every
shown field None but not marked erased, and the case document (the masked name of None) raised,
a 500 instead of the case. The stream is read again once its key is found gone, and the case
reads erased."""

import asyncpg

from complaintcore.api.routes.complaint_queries import get_complaint_audit
from complaintcore.application.case_document import case_document
from complaintcore.application.complaint_service import ComplaintService
from complaintcore.auth.principals import Principal
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.read_replicas import ReplicaSet
from complaintcore.projections.case_view import load_index_key
from complaintcore.reference.calendars import CalendarRepository
from complaintcore.reference.institutions import InstitutionDirectory
from projection_support import SWEPT_ON, CaseDesk, closed_in_2019, erase_past_retention
from testsupport import session_case_keys

REGULATOR = Principal("regulator-1", "regulator", None)


async def _erased_between_the_reads(pool: asyncpg.Pool) -> tuple[ComplaintService, str, list]:
    """A serving process of its own (its own key cache, nothing cached yet), whose first read of
    a closed case's stream is followed by the sweep erasing it; the case, and the sweep's count."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await closed_in_2019(desk)
    case_keys = session_case_keys()
    async with pool.acquire() as connection:
        index_key = await load_index_key(connection, case_keys.provider, case_keys.suite.name)
    host = ComplaintService(
        pool,
        PostgresEventStore(pool),
        InstitutionDirectory(pool),
        CalendarRepository(pool),
        case_keys,
        index_key,
        today=lambda: SWEPT_ON,
    )
    read_stream, sweeps = host.case_events, []

    async def stream_then_erasure_elsewhere(*args, **kwargs):
        events = await read_stream(*args, **kwargs)
        if not sweeps:  # the sweep commits between the first read and the key's
            sweeps.append(await erase_past_retention(pool, "case-read-meets-erasure"))
        return events

    host.case_events = stream_then_erasure_elsewhere  # type: ignore[method-assign]
    return host, case_id, sweeps


async def test_a_case_erased_between_its_stream_and_its_key_reads_as_erased(
    pool: asyncpg.Pool,
) -> None:
    host, case_id, sweeps = await _erased_between_the_reads(pool)

    state, today, policy = await host.case(REGULATOR, case_id)

    document = case_document(state, today, policy)  # what the route does with it
    assert sweeps == [1]
    assert document["personal_data"] == "erased"
    assert document["complainant"]["name"] is None


async def test_the_audit_of_a_case_erased_between_its_stream_and_its_key_answers(
    pool: asyncpg.Pool,
) -> None:
    host, case_id, sweeps = await _erased_between_the_reads(pool)
    reads = ReplicaSet(pool, [], max_lag_s=1.0, check_s=1.0)

    audited = await get_complaint_audit(case_id, REGULATOR, host, reads, None)

    assert sweeps == [1]
    assert audited["state"]["id"] == case_id
    assert audited["state"]["personal_data"] == "erased"
