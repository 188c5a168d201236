"""Events are stored as JSON payloads and read back exactly (the stream is the record, Art. 28)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import (
    BRANCH_SUPERVISOR,
    STAFF_WITH_LIMIT,
    action,
    appeal,
    approve_redress,
    assigned_case,
    attribute,
    d,
    decided_case,
    decision,
    follow_up,
    notice,
    pause,
    rectify,
    resume,
    review_decision,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import (
    EVENT_TYPES,
    ClockPaused,
    ComplaintDecided,
    DomainEvent,
    EventPayloadError,
    UnknownEventType,
    event_from_payload,
    event_to_payload,
    fold,
)
from complaintcore.domain.commands import PauseKind, RootCause


def through_json(event: DomainEvent) -> DomainEvent:
    payload = json.loads(json.dumps(event_to_payload(event)))
    return event_from_payload(event.event_type, payload)


@pytest.mark.parametrize("event_class", EVENT_TYPES.values(), ids=EVENT_TYPES.keys())
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_event_type_survives_a_json_round_trip(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event = data.draw(st.from_type(event_class))

    assert through_json(event) == event


def test_every_event_type_has_a_stable_name_and_a_schema_version() -> None:
    assert set(EVENT_TYPES) == {
        "ComplaintReceived",
        "HandlerAssigned",
        "HandlerRecused",
        "DeadlineExtended",
        "ClockPaused",
        "ClockResumed",
        "ComplaintSupplemented",
        "ComplaintMerged",
        "ComplaintDecided",
        "ComplainantNotified",
        "ReviewRequested",
        "ReviewDecided",
        "ComplaintWithdrawn",
        "ComplaintDeclined",
        "MarkedMajor",
        "PersonalDataErased",
        "RedressApproved",
        "CaseAttributed",
        "RectificationActionClosed",
        "FollowedUp",
    }
    assert all(event_class.schema_version == 1 for event_class in EVENT_TYPES.values())


def test_a_payload_is_plain_json_with_iso_dates_and_enum_values() -> None:
    case = decided_case(d("2026-03-02"), d("2026-03-16"))
    decided = case.events[-1]
    assert isinstance(decided, ComplaintDecided)

    payload = event_to_payload(decided)

    assert payload["outcome"] == "partially_upheld"
    assert payload["remedies"] == ["review", "mediation", "arbitration", "litigation"]
    assert payload["notice"] == {
        "notified_on": "2026-03-16",
        "method": "sms",
        "proof_ref": "sms-2026-03-16",
        "agreed_terms": "",
        "unreachable": False,
        "attempts": 0,
    }
    assert payload["review_window_ends_on"] == "2026-04-15"


def test_a_whole_stream_read_back_from_payloads_folds_to_the_same_state() -> None:
    case = decided_case(d("2026-03-02"), d("2026-03-16"))
    case.do(appeal(d("2026-03-20")))
    case.do(review_decision(d("2026-04-10")))
    stored = [(event.event_type, json.dumps(event_to_payload(event))) for event in case.events]

    read_back = [event_from_payload(kind, json.loads(payload)) for kind, payload in stored]

    assert fold(read_back) == case.state


def test_the_internal_control_events_read_back_and_fold_to_the_same_state() -> None:
    """Art. 24, 26 and 回访: approvals, attributions, rectifications and follow-ups are stored
    like every other fact."""
    case = assigned_case(d("2026-03-02"))
    case.do(approve_redress(d("2026-03-09")), **BRANCH_SUPERVISOR)
    case.do(decision(d("2026-03-10"), redress_fen=150_000), **STAFF_WITH_LIMIT)
    case.do(
        attribute(d("2026-03-12"), action("A1", d("2026-04-01")), root_cause=RootCause.THIRD_PARTY)
    )
    case.do(rectify("A1", d("2026-03-20")))
    case.do(follow_up(d("2026-03-21"), satisfaction=None))
    stored = [(event.event_type, json.dumps(event_to_payload(event))) for event in case.events]

    read_back = [event_from_payload(kind, json.loads(payload)) for kind, payload in stored]

    assert read_back == case.events
    assert fold(read_back) == case.state
    assert json.loads(stored[-3][1]) == {
        "attributed_on": "2026-03-12",
        "responsible_institution": "SB-SH-PD",
        "department": "信用卡中心",
        "responsible_staff": ["s-zhao"],
        "root_cause": "third_party",
        "third_party": "某催收公司",
        "actions": [
            {
                "action_id": "A1",
                "description": "修订年费减免流程 A1",
                "owner_id": "o-qian",
                "due_on": "2026-04-01",
            }
        ],
    }
    assert json.loads(stored[-1][1]) == {
        "reached": False,
        "satisfaction": None,
        "followed_up_on": "2026-03-21",
        "note": "电话无人接听",
    }


def test_an_unknown_event_type_is_a_clear_error() -> None:
    with pytest.raises(UnknownEventType, match="ComplaintTeleported"):
        event_from_payload("ComplaintTeleported", {})


PAUSED = ClockPaused(PauseKind.APPRAISAL, d("2026-03-05"), "鉴定", notice(d("2026-03-05")))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"kind": "appraisal", "paused_on": "2026-03-05", "reason": "x"}, "missing"),
        ({**event_to_payload(PAUSED), "extra": 1}, "unknown"),
        ({**event_to_payload(PAUSED), "kind": "coffee"}, "PauseKind"),
        ({**event_to_payload(PAUSED), "paused_on": "05/03/2026"}, "ISO"),
        ({**event_to_payload(PAUSED), "reason": 7}, "expected str"),
    ],
)
def test_a_payload_that_does_not_fit_its_type_is_refused(
    payload: dict[str, Any], message: str
) -> None:
    with pytest.raises(EventPayloadError, match=message):
        event_from_payload("ClockPaused", payload)


def test_a_resume_payload_keeps_the_pause_length_and_the_new_due_date() -> None:
    case = assigned_case(d("2026-03-02"))
    case.do(pause(d("2026-03-05")))

    (resumed,) = case.do(resume(d("2026-03-12")))

    assert event_to_payload(resumed) == {
        "paused_on": "2026-03-05",
        "resumed_on": "2026-03-12",
        "paused_days": 7,
        "due_on": "2026-03-24",
    }
