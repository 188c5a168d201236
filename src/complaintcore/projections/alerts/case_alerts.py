"""Case alerts: what the feed's events announce (DOMAIN.md "Alerts and escalation").

`case.received` (ComplaintReceived), `case.decided` (ComplaintDecided), `case.major`
(MarkedMajor: the decider appends it right after the receipt of a joint complaint of 20 or more,
or when staff or the regulator flag the case; Art. 29 wants it reported at once),
`review.requested` (ReviewRequested) and `personal_data.erased` (PersonalDataErased).

Each is keyed by its event, `<name>:<case id>:<version>`: an event announces once, however often
its batch is applied. The events are decoded without their personal fields (they read as None:
no data key is read), and `data` takes only codes, dates, amounts and counts from them.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from complaintcore.crypto.suites import suite_named
from complaintcore.domain.events import (
    ComplaintDecided,
    ComplaintReceived,
    Event,
    MarkedMajor,
    PersonalDataErased,
    ReviewRequested,
)
from complaintcore.domain.state import ComplaintState
from complaintcore.events.codec import opened_event
from complaintcore.events.model import StoredEvent
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.projections.alerts.model import Alert, AlertName


def _received(event: ComplaintReceived) -> dict[str, Any]:
    return {
        "received_on": event.received_on,
        "due_on": event.due_on,
        "channel": event.channel,
        "business": event.category.business,
        "reason": event.category.reason,
        "complainants": event.joint.complainants if event.joint is not None else 1,
    }


def _decided(event: ComplaintDecided) -> dict[str, Any]:
    return {
        "outcome": event.outcome,
        "redress_fen": event.redress_fen,
        "decided_on": event.notice.notified_on,
        "due_on": event.due_on,
        "on_time": event.on_time,
        "handling_days": event.handling_days,
        "review_window_ends_on": event.review_window_ends_on,
    }


def _major(event: MarkedMajor) -> dict[str, Any]:
    return {"cause": event.cause, "marked_on": event.marked_on}


def _review_requested(event: ReviewRequested) -> dict[str, Any]:
    return {
        "requested_on": event.received_on,
        "due_on": event.due_on,
        "reviewing_institution": event.reviewing_institution,
    }


def _erased(event: PersonalDataErased) -> dict[str, Any]:
    return {
        "erased_on": event.erased_on,
        "closed_on": event.closed_on,
        "retention_years": event.retention_years,
    }


_Data = Callable[[Any], dict[str, Any]]
ANNOUNCED: Mapping[str, tuple[AlertName, _Data]] = {
    ComplaintReceived.event_type: (AlertName.CASE_RECEIVED, _received),
    ComplaintDecided.event_type: (AlertName.CASE_DECIDED, _decided),
    MarkedMajor.event_type: (AlertName.CASE_MAJOR, _major),
    ReviewRequested.event_type: (AlertName.REVIEW_REQUESTED, _review_requested),
    PersonalDataErased.event_type: (AlertName.PERSONAL_DATA_ERASED, _erased),
}


def without_personal_fields(stored: StoredEvent) -> Event:
    """The domain event of a stored one, every personal field None (nothing is opened)."""
    suite = stored.metadata.cipher_suite
    cipher = StreamCipher(stored.stream_id, suite_named(suite), None) if suite else None
    return opened_event(
        stored.event_type,
        stored.schema_version,
        stored.version,
        stored.data,
        suite,
        cipher,
        frozenset(),
    )


def case_alerts(
    events: Sequence[StoredEvent], states: Mapping[str, ComplaintState], after: int
) -> list[Alert]:
    """The case alerts of a batch's `events`, in feed order; those at or before position
    `after` announce nothing (the history a deployment had before alerts existed). `states`:
    the batch's cases, by id (their institution and registration number)."""
    alerts = []
    for stored in events:
        announced = ANNOUNCED.get(stored.event_type)
        if announced is None or stored.position <= after:
            continue
        state = states.get(stored.stream_id)
        if state is None:
            continue
        name, data_of = announced
        data = {"version": stored.version, **data_of(without_personal_fields(stored))}
        alerts.append(
            Alert(
                event=name,
                case_id=stored.stream_id,
                institution=state.respondent_institution,
                registration_no=state.registration_no,
                occurred_at=stored.recorded_at,
                data=data,
                dedupe_key=f"{name}:{stored.stream_id}:{stored.version}",
            )
        )
    return alerts
