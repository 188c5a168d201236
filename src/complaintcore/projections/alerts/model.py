"""An alert (DOMAIN.md "Alerts and escalation") as the runner inserts it into `alerts`."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AlertName(StrEnum):
    """The alert names of DOMAIN.md, which webhook subscriptions list (API.md "Webhooks")."""

    CASE_RECEIVED = "case.received"
    CASE_DECIDED = "case.decided"
    CASE_MAJOR = "case.major"
    REVIEW_REQUESTED = "review.requested"
    PERSONAL_DATA_ERASED = "personal_data.erased"
    CASE_DUE_SOON = "case.due_soon"
    CASE_OVERDUE = "case.overdue"
    REVIEW_DUE_SOON = "review.due_soon"
    REVIEW_OVERDUE = "review.overdue"
    RECTIFICATION_OVERDUE = "rectification.overdue"


@dataclass(frozen=True)
class Alert:
    """One row of `alerts`. `data` holds codes, dates, amounts and counts only, never a
    personal field (DOMAIN.md "Personal data"); `dedupe_key` names the case and the state the
    alert announces, so the same state is announced once however often it is judged.
    `occurred_at` None: the moment of the sweep that found it (the database's `now()`)."""

    event: AlertName
    case_id: str
    institution: str
    registration_no: str
    occurred_at: datetime | None
    data: dict[str, Any]
    dedupe_key: str
