"""The regulator's replay of one case: chain verdict, rebuilt state, deadline timeline, and the
institution policy version each event was judged under."""

from dataclasses import asdict
from datetime import UTC, date
from typing import Any

from complaintcore.application.case_document import case_document, jsonable
from complaintcore.application.policies import policy_in_force
from complaintcore.domain.deadlines import deadline_timeline
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.domain.state import ComplaintState, fold
from complaintcore.events.codec import domain_events, stream_suite
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import StoredEvent
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.projections.case_view import PERSONAL_FIELDS_SHOWN


def stored_event_document(event: StoredEvent) -> dict[str, Any]:
    """An event as `/events` and the feed give it: as stored, `recorded_at` in RFC 3339, UTC
    written `Z` (written out as it is, not through a response model: see the routes)."""
    return {
        "position": event.position,
        "stream_id": event.stream_id,
        "version": event.version,
        "type": event.event_type,
        "schema_version": event.schema_version,
        "data": event.data,
        "metadata": event.metadata.to_dict(),
        "recorded_at": event.recorded_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def respondent_of(events: list[StoredEvent]) -> str:
    """The respondent institution the stream's receipt names, which says who may see the case
    and which policy reads it: "" when the receipt holds none as text (altered behind the
    store's back; the audit's chain verdict names it)."""
    data = events[0].data if events else None
    named = data.get("respondent_institution") if isinstance(data, dict) else None
    return named if isinstance(named, str) else ""


def audit_case(
    case_id: str,
    events: list[StoredEvent],
    today: date,
    cipher: StreamCipher | None,
    policy: InstitutionPolicy | None = None,
) -> dict[str, Any]:
    """The chain's verdict (over the events as stored, ciphertext included), the state rebuilt
    from the events (opened by the case's `cipher`) as `policy` (the one in force today at its
    respondent; None: the default) reads it, and per event the policy version it was judged
    under (None for events stored before policies had versions)."""
    verdict = verify_chain(events)
    try:
        # only what the document shows is opened: an altered free text spoils no more than
        # its own event's chain link
        decoded = domain_events(events, cipher, PERSONAL_FIELDS_SHOWN)
        state = fold(decoded)
        versions = [event.version for event in events]
        timeline = [jsonable(change) for change in deadline_timeline(decoded, versions)]
    except Exception as error:
        # An altered payload (or ciphertext: CiphertextRejected is a ValueError) may no longer
        # decode, in any way (a receipt turned into a list has no fields to get); the chain
        # verdict already says where. An intact chain that does not decode is this code's fault.
        if verdict.intact and not isinstance(error, (ValueError, TypeError, KeyError)):
            raise
        state, timeline = None, []
    return {
        "case_id": case_id,
        "cipher_suite": stream_suite(events),
        "chain": asdict(verdict),
        "state": _document(state, today, policy) if state is not None else None,
        "timeline": timeline,
        "policy_versions": [_judged_under(event) for event in events],
    }


def _document(
    state: ComplaintState, today: date, policy: InstitutionPolicy | None
) -> dict[str, Any]:
    if policy is None:
        policy = policy_in_force(state.respondent_institution, today)
    return case_document(state, today, policy)


def _judged_under(event: StoredEvent) -> dict[str, Any]:
    return {
        "version": event.version,
        "type": event.event_type,
        "policy_version": event.metadata.policy_version,
    }
