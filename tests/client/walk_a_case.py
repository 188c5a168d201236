"""Walk one case through the client generated from `openapi.yaml` by openapi-python-client:
receive, assign, decide, read, events, audit. Run by `make test-client` with the generator's
own Python (`.client-tools/`), the generated package on `sys.path`:

    walk_a_case.py GENERATED_FOLDER BASE_URL TOKEN TODAY

Exit status 0 when every step answers as the contract says, with the generated models."""

import sys
from datetime import date, timedelta

sys.path.insert(0, sys.argv[1])

from complaintcore_client import AuthenticatedClient
from complaintcore_client.api.complaint_commands import (
    assign_handler,
    decide_complaint,
    receive_complaint,
)
from complaintcore_client.api.complaint_queries import (
    audit_complaint,
    get_complaint,
    get_complaint_events,
)
from complaintcore_client.models import (
    AssignBody,
    AuditOut,
    CaseOut,
    DecideBody,
    ReceiveBody,
)

base_url, token, today = sys.argv[2], sys.argv[3], date.fromisoformat(sys.argv[4])
client = AuthenticatedClient(base_url=base_url, token=token)
received_on = (today - timedelta(days=3)).isoformat()

received = receive_complaint.sync_detailed(
    client=client,
    body=ReceiveBody.from_dict(
        {
            "respondent_institution": "BR-A",
            "channel": "phone",
            "received_on": received_on,
            "complainant": {
                "kind": "natural_person",
                "name": "张三",
                "id_type": "resident_id",
                "id_number": "11010519491231002X",
                "contact": "13800138000",
            },
            "claims": "退还信用卡年费",
            "facts": "未经同意扣收年费",
            "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        }
    ),
)
assert received.status_code == 201, received.content
case = received.parsed
assert isinstance(case, CaseOut), case
assert received.headers["location"] == f"/v1/complaints/{case.id}"

assigned = assign_handler.sync(case.id, client=client, body=AssignBody(handler_id="staff-a1"))
assert isinstance(assigned, CaseOut) and assigned.handler_id == "staff-a1", assigned

decision = DecideBody.from_dict(
    {
        "handler_id": "staff-a1",
        "outcome": "upheld",
        "findings": "未经同意扣收年费属实",
        "basis": "信用卡章程第十二条",
        "redress_fen": 30000,
        "remedies": ["review", "litigation"],
        "notice": {"method": "sms", "proof_ref": "SMS-1", "notified_on": today.isoformat()},
    }
)
decided = decide_complaint.sync(case.id, client=client, body=decision)
assert isinstance(decided, CaseOut) and decided.status == "decided", decided

read = get_complaint.sync(case.id, client=client)
assert isinstance(read, CaseOut) and read.version == decided.version, read

events = get_complaint_events.sync(case.id, client=client)
assert isinstance(events, list), events
assert [event.type_ for event in events] == [
    "ComplaintReceived",
    "HandlerAssigned",
    "ComplaintDecided",
]

audit = audit_complaint.sync(case.id, client=client)
assert isinstance(audit, AuditOut) and audit.chain.intact, audit
print(f"walked case {case.id} through the generated client: {len(events)} events, chain intact")
