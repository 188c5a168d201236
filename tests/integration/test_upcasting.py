"""Old events are upcast when read, never rewritten (STYLE.md "schema changes").

No event type has a second schema version yet, so the test gives `ComplaintWithdrawn` one: in
this made-up v1 the reason was called `note`; v2 renamed it `reason`. A v1 event stored as such
must read as v2 through every reader: the command path, the case query and the audit replay.
"""

from datetime import date

import asyncpg
import pytest

from complaintcore.application.case_audit import audit_case
from complaintcore.domain.events import ComplaintWithdrawn
from complaintcore.domain.state import CaseStatus, fold
from complaintcore.events import codec as event_codec
from complaintcore.events.codec import UnreadableEvent, domain_events, upcast
from complaintcore.events.model import NewEvent
from complaintcore.events.store import PostgresEventStore

RECEIVED = {
    "case_id": "c-1",
    "registration_no": "BR-A-202603-000001",
    "respondent_institution": "BR-A",
    "channel": "phone",
    "received_on": "2026-03-02",
    "complainant": {
        "kind": "natural_person",
        "name": "张三",
        "contact": "13800138000",
        "id_type": "resident_id",
        "id_number": "11010519491231002X",
        "address": "",
        "unified_social_credit_code": "",
        "legal_representative_name": "",
        "legal_representative_contact": "",
    },
    "claims": "退费",
    "facts": "扣费",
    "category": {"business": "credit_card", "reason": "pricing_and_fees"},
    "agent": None,
    "filed_by_heir": False,
    "heir_proof_ref": "",
    "respondent_staff": [],
    "joint": None,
    "regulator_transfer": None,
    "due_on": "2026-03-17",
}


@pytest.fixture
def withdrawn_v2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ComplaintWithdrawn, "schema_version", 2)

    def note_became_reason(payload: dict) -> dict:
        upgraded = {key: value for key, value in payload.items() if key != "note"}
        return upgraded | {"reason": payload["note"]}

    monkeypatch.setitem(event_codec.UPCASTERS, ("ComplaintWithdrawn", 1), note_became_reason)


@pytest.mark.usefixtures("withdrawn_v2")
async def test_an_event_stored_in_an_old_schema_reads_as_the_current_one(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    old_withdrawal = NewEvent(
        "ComplaintWithdrawn", {"received_on": "2026-03-05", "note": "已协商"}, schema_version=1
    )
    await store.append(
        "c-1", [NewEvent("ComplaintReceived", RECEIVED), old_withdrawal], expected_version=0
    )
    stored = await store.read_stream("c-1")
    assert stored[1].schema_version == 1 and "note" in stored[1].data  # never rewritten

    state = fold(domain_events(stored))
    assert state is not None and state.status is CaseStatus.WITHDRAWN
    assert state.withdrawal is not None and state.withdrawal.reason == "已协商"
    audit = audit_case("c-1", stored, date(2026, 3, 6), None)
    assert audit["chain"]["intact"] and audit["state"]["status"] == "withdrawn"


def test_an_event_newer_than_the_code_is_refused_clearly() -> None:
    with pytest.raises(UnreadableEvent, match="newer than this code"):
        upcast("ComplaintWithdrawn", 9, {})


@pytest.mark.usefixtures("withdrawn_v2")
def test_a_missing_upcaster_step_is_refused_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(event_codec.UPCASTERS, ("ComplaintWithdrawn", 1))
    with pytest.raises(UnreadableEvent, match="no upcaster"):
        upcast("ComplaintWithdrawn", 1, {"note": "x"})
