"""Reading events after erasure: None at each personal value, every other field checked as
strictly as before (DOMAIN.md "Personal data": every personal field reads as erased, on replay
too)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
from builders import RESPONDENT_STAFF_ID, d, decided_case, received_with_everything
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import (
    EVENT_TYPES,
    ComplaintReceived,
    DomainEvent,
    EventPayloadError,
    JointComplaint,
    RespondentStaff,
    UnknownEventType,
    event_from_payload,
    event_to_payload,
)
from complaintcore.domain.personal_data import (
    EACH,
    PERSONAL,
    Path,
    erased,
    event_from_erased_payload,
    event_keeping_personal,
    map_personal,
    path_pattern,
)

EVENT_CLASSES = pytest.mark.parametrize("event_class", EVENT_TYPES.values(), ids=EVENT_TYPES.keys())
HYPOTHESIS = settings(max_examples=30, deadline=None)


def with_none_at(value: Any, path: Path) -> Any:
    """`value` with None at `path` (`EACH`: every item), written apart from the module under
    test with `dataclasses.replace`."""
    if value is None:
        return None
    head, rest = path[0], path[1:]
    if head == EACH:
        return tuple(with_none_at(item, rest) if rest else None for item in value)
    inner = with_none_at(getattr(value, head), rest) if rest else None
    return dataclasses.replace(value, **{head: inner})


def everything_personal_gone(event: DomainEvent) -> DomainEvent:
    for path in PERSONAL[event.event_type]:
        event = with_none_at(event, path)
    return event


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_an_erased_payload_decodes_to_the_event_with_none_at_every_personal_value(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event = data.draw(st.from_type(event_class))
    payload = erased(event.event_type, event_to_payload(event))
    before = copy.deepcopy(payload)

    decoded = event_from_erased_payload(event.event_type, payload)

    assert decoded == everything_personal_gone(event)
    assert type(decoded) is event_class
    assert payload == before


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_a_payload_with_nothing_erased_decodes_as_the_strict_decoder_decodes_it(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    payload = event_to_payload(data.draw(st.from_type(event_class)))

    decoded = event_from_erased_payload(event_class.event_type, payload)

    assert decoded == event_from_payload(event_class.event_type, payload)


def test_values_opened_stay_and_only_the_values_not_opened_read_as_none() -> None:
    received = received_with_everything()
    payload = event_to_payload(received)
    payload["complainant"]["contact"] = None
    payload["agent"]["id_type"] = None
    payload["joint"]["representatives"][1] = None

    decoded = event_from_erased_payload("ComplaintReceived", payload)

    assert isinstance(decoded, ComplaintReceived)
    assert decoded.complainant.contact is None
    assert decoded.complainant.name == "张三"
    assert decoded.agent is not None and decoded.agent.id_type is None
    assert decoded.agent.name == "王五"
    assert decoded.joint == JointComplaint(8, ("代表甲", None))  # type: ignore[arg-type]
    assert decoded.respondent_staff == (RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),)


@pytest.mark.parametrize(
    ("field", "value"),
    [("redress_fen", None), ("outcome", None), ("due_on", None), ("on_time", "yes")],
)
def test_a_field_that_is_not_personal_is_still_checked_strictly(field: str, value: Any) -> None:
    decided = decided_case(d("2026-03-02"), d("2026-03-16")).events[-1]
    payload = erased("ComplaintDecided", event_to_payload(decided)) | {field: value}

    with pytest.raises(EventPayloadError, match=f"ComplaintDecided.{field}"):
        event_from_erased_payload("ComplaintDecided", payload)


def test_a_payload_of_the_wrong_shape_is_refused_as_the_strict_decoder_refuses_it() -> None:
    payload = erased("ComplaintReceived", event_to_payload(received_with_everything()))

    with pytest.raises(EventPayloadError, match="missing fields"):
        event_from_erased_payload("ComplaintReceived", payload | {"complainant": {"name": None}})
    with pytest.raises(EventPayloadError, match="expected a list"):
        event_from_erased_payload("ComplaintReceived", payload | {"respondent_staff": None})
    with pytest.raises(UnknownEventType):
        event_from_erased_payload("ComplaintTeleported", payload)


@EVENT_CLASSES
@HYPOTHESIS
@given(data=st.data())
def test_a_decoder_keeping_some_personal_fields_reads_the_others_as_none_unlooked_at(
    event_class: type[DomainEvent], data: st.DataObject
) -> None:
    event = data.draw(st.from_type(event_class))
    paths = PERSONAL[event.event_type]
    kept = frozenset(data.draw(st.sets(st.sampled_from(paths))) if paths else ())
    # what a projection reads: the fields it does not keep still hold their ciphertext
    payload = map_personal(
        event.event_type,
        event_to_payload(event),
        lambda where, value: value if path_pattern(where) in kept else "enc:v1:AAAA",
    )

    decoded = event_keeping_personal(event.event_type, payload, kept)

    expected = event
    for path in paths:
        if path not in kept:
            expected = with_none_at(expected, path)
    assert decoded == expected
    assert type(decoded) is event_class
    assert event_keeping_personal(event.event_type, erased(event.event_type, payload)) == (
        everything_personal_gone(event)
    )
