"""A case as the queries of API.md show it, built from its folded state as of a given day.

Personal data (DOMAIN.md "Personal data", Masking): the complainant is masked, and every free
text (findings, basis, grounds, agreed terms, the notes of a redress approval and of a
follow-up, a rectification action's description, an attribution's third party) reads as None:
complainants write account numbers, names and addresses into them, and their plaintext is given
only by the logged reveal (`GET /v1/complaints/{id}/personal-data`). Once erased, the masked
fields are None too and `personal_data` says `erased`.
"""

from dataclasses import asdict, is_dataclass
from datetime import date
from enum import Enum
from typing import Any

from complaintcore.domain.deadlines import clock_status, review_clock_status
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.domain.state import ComplaintState, is_closed
from complaintcore.projections.case_view import masked_complainant


def jsonable(value: Any) -> Any:
    """Dataclasses, enums, dates and tuples as JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {key: jsonable(item) for key, item in asdict(value).items()}
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return value


def case_document(state: ComplaintState, today: date, policy: InstitutionPolicy) -> dict[str, Any]:
    clock = clock_status(state, today, policy)
    document: dict[str, Any] = {
        "id": state.id,
        "registration_no": state.registration_no,
        "status": state.status.value,
        "closed": is_closed(state, today),
        "version": state.version,
        "respondent_institution": state.respondent_institution,
        "handler_id": state.handler_id,
        "category": jsonable(state.category),
        "channel": state.channel,
        "major": state.major_flag is not None,
        "major_cause": state.major_flag.cause.value if state.major_flag else None,
        "received_on": state.received_on.isoformat(),
        "last_business_date": state.last_business_date.isoformat(),
        "deadline": {
            "due_on": clock.due_on.isoformat(),
            "level": state.clock.level,
            "paused_days": state.clock.paused_days,
            "paused": state.clock.is_paused,
            "status": clock.status.value,
            "days_left": clock.days_left,
        },
        "complainant": masked_complainant(state),
        "personal_data": state.personal_data,
        "decision": _decision(state),
        "review": _review(state, today, policy),
        "regulator_transfer": jsonable(state.regulator_transfer),
        "merged_into": state.merged_into,
        "redress_approval": _redress_approval(state),
        "attribution": _attribution(state, today),
        "follow_up": _follow_up(state),
    }
    return document


def _decision(state: ComplaintState) -> dict[str, Any] | None:
    decision = state.decision
    if decision is None:
        return None
    return {
        "handler_id": decision.handler_id,
        "outcome": decision.outcome.value,
        "findings": None,
        "basis": None,
        "redress_fen": decision.redress_fen,
        "remedies": [remedy.value for remedy in decision.remedies],
        "notice": _notice(decision.notice),
        "decided_on": decision.notice.notified_on.isoformat(),
        "on_time": decision.on_time,
        "handling_days": decision.handling_days,
        "review_window_ends_on": jsonable(decision.review_window_ends_on),
    }


def _review(state: ComplaintState, today: date, policy: InstitutionPolicy) -> dict[str, Any] | None:
    review = state.review
    if review is None:
        return None
    reading = review_clock_status(state, today, policy)
    return {
        "requested_on": review.requested_on.isoformat(),
        "grounds": None,
        "reviewing_institution": review.reviewing_institution,
        "due_on": review.due_on.isoformat(),
        "status": reading.status.value if reading else None,
        "days_left": reading.days_left if reading else None,
        "decision": _review_decision(review.decision),
    }


def _notice(notice: Any) -> dict[str, Any]:
    return jsonable(notice) | {"agreed_terms": None}


def _review_decision(decision: Any) -> dict[str, Any] | None:
    if decision is None:
        return None
    return jsonable(decision) | {"findings": None, "notice": _notice(decision.notice)}


def _redress_approval(state: ComplaintState) -> dict[str, Any] | None:
    """The unused approval on the case (Art. 24); its note is personal data, not shown."""
    approval = state.redress_approval
    if approval is None:
        return None
    return {
        "up_to_fen": approval.up_to_fen,
        "approver_id": approval.approver_id,
        "approved_on": approval.approved_on.isoformat(),
        "note": None,
    }


def _attribution(state: ComplaintState, today: date) -> dict[str, Any] | None:
    """The current attribution (Art. 26), each action's status as of `today`. The third party's
    name and the actions' descriptions are personal data, not shown."""
    attribution = state.attribution
    if attribution is None:
        return None
    return {
        "attributed_on": attribution.attributed_on.isoformat(),
        "responsible_institution": attribution.responsible_institution,
        "department": attribution.department,
        "responsible_staff": list(attribution.responsible_staff),
        "root_cause": attribution.root_cause.value,
        "third_party": None,
        "actions": [
            {
                "action_id": action.action_id,
                "description": None,
                "owner_id": action.owner_id,
                "due_on": action.due_on.isoformat(),
                "status": action.status(today).value,
                "closed_on": jsonable(action.closed_on),
                "evidence_ref": action.evidence_ref,
            }
            for action in attribution.actions
        ],
    }


def _follow_up(state: ComplaintState) -> dict[str, Any] | None:
    follow_up = state.follow_up
    if follow_up is None:
        return None
    return {
        "reached": follow_up.reached,
        "satisfaction": jsonable(follow_up.satisfaction),
        "followed_up_on": follow_up.followed_up_on.isoformat(),
        "note": None,
    }
