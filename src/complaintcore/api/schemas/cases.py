"""Response models of the case queries, so the OpenAPI document describes what is returned."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel


class CategoryOut(BaseModel):
    business: str
    reason: str


class DeadlineOut(BaseModel):
    due_on: date
    level: int
    paused_days: int
    paused: bool
    status: str
    days_left: int | None


class NoticeOut(BaseModel):
    notified_on: date
    method: str | None
    proof_ref: str
    agreed_terms: str
    unreachable: bool
    attempts: int


class DecisionOut(BaseModel):
    handler_id: str
    outcome: str
    findings: str
    basis: str
    redress_fen: int
    remedies: list[str]
    notice: NoticeOut
    decided_on: date
    on_time: bool
    handling_days: int
    review_window_ends_on: date | None


class ReviewDecisionOut(BaseModel):
    reviewer_id: str
    outcome: str
    findings: str
    new_outcome: str | None
    new_redress_fen: int | None
    notice: NoticeOut
    on_time: bool


class ReviewOut(BaseModel):
    requested_on: date
    grounds: str
    reviewing_institution: str
    due_on: date
    status: str | None
    days_left: int | None
    decision: ReviewDecisionOut | None


class RegulatorTransferOut(BaseModel):
    regulator_received_on: date
    forwarded_on: date
    working_days: int
    within_limit: bool


class MaskedComplainantOut(BaseModel):
    kind: str
    name: str
    id_type: str | None = None
    id_number: str | None = None
    contact: str | None = None
    unified_social_credit_code: str | None = None


class CaseOut(BaseModel):
    """A case as of today (or as of a version): deadlines are computed at query time."""

    id: str
    registration_no: str
    status: str
    closed: bool
    version: int
    respondent_institution: str
    handler_id: str | None
    category: CategoryOut
    channel: str
    major: bool
    major_cause: str | None
    received_on: date
    last_business_date: date
    deadline: DeadlineOut
    complainant: MaskedComplainantOut
    decision: DecisionOut | None
    review: ReviewOut | None
    regulator_transfer: RegulatorTransferOut | None
    merged_into: str | None


class CaseSummaryOut(BaseModel):
    id: str
    registration_no: str
    status: str
    version: int
    respondent_institution: str
    handler_id: str | None
    category: CategoryOut
    channel: str
    major: bool
    received_on: date
    deadline: DeadlineOut
    review_due_on: date | None
    complainant: MaskedComplainantOut


class CaseListOut(BaseModel):
    items: list[CaseSummaryOut]
    next_cursor: str | None


class StoredEventOut(BaseModel):
    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    prev_hash: str
    hash: str


class EventPageOut(BaseModel):
    items: list[StoredEventOut]
    next_after: int | None


class ChainVerdictOut(BaseModel):
    intact: bool
    events_checked: int
    first_bad_version: int | None
    reason: str | None


class DeadlineChangeOut(BaseModel):
    version: int
    event_type: str
    change: str
    business_date: date
    due_on: date
    level: int
    paused_days: int
    on_time: bool | None


class AuditOut(BaseModel):
    case_id: str
    chain: ChainVerdictOut
    state: CaseOut | None
    timeline: list[DeadlineChangeOut]
