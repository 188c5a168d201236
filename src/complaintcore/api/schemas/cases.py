"""Response models of the case queries, so the OpenAPI document describes what is returned."""

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from complaintcore.application.requests.fields import Channel
from complaintcore.domain.commands import (
    ComplainantKind,
    IdType,
    MajorCause,
    NoticeMethod,
    Outcome,
    Remedy,
    ReviewOutcome,
    RootCause,
    Satisfaction,
)
from complaintcore.domain.deadlines import ClockStatus
from complaintcore.domain.state import ActionStatus, CaseStatus


class AsGiven(BaseModel):
    """A document written out with the members it was given and no others: one not given is
    absent, not null (the case document's masked complainant in a list as in the case itself;
    an event's metadata as stored)."""

    # no return annotation: pydantic would describe the output by it (a bare object) rather
    # than by the fields
    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler):
        given = self.model_fields_set | set(self.model_extra or ())
        return {name: value for name, value in handler(self).items() if name in given}


class CategoryOut(BaseModel):
    business: str
    reason: str


class DeadlineOut(BaseModel):
    """The handling clock (Art. 18), read as of today."""

    due_on: date = Field(description="The handling due date, pauses and extensions included.")
    level: int = Field(ge=0, le=2, description="Extensions granted: 0, 1 (30 days) or 2 (60).")
    paused_days: int = Field(ge=0, description="Paused days counting toward the due date.")
    paused: bool = Field(description="Whether the clock is paused now.")
    status: ClockStatus
    days_left: int | None = Field(
        description="Days to the due date (negative once overdue, frozen while paused); null "
        "once met, missed or stopped."
    )


_NOT_SHOWN = (
    "Personal data (a free text): always null here; its plaintext is given, and logged, by "
    "`GET /v1/complaints/{id}/personal-data`."
)


class NoticeOut(BaseModel):
    notified_on: date
    method: NoticeMethod | None
    proof_ref: str
    agreed_terms: str | None = Field(description=_NOT_SHOWN)
    unreachable: bool
    attempts: int


class DecisionOut(BaseModel):
    handler_id: str
    outcome: Outcome
    findings: str | None = Field(description=_NOT_SHOWN)
    basis: str | None = Field(description=_NOT_SHOWN)
    redress_fen: int
    remedies: list[Remedy]
    notice: NoticeOut
    decided_on: date
    on_time: bool
    handling_days: int
    review_window_ends_on: date | None


class ReviewDecisionOut(BaseModel):
    reviewer_id: str
    outcome: ReviewOutcome
    findings: str | None = Field(description=_NOT_SHOWN)
    new_outcome: Outcome | None
    new_redress_fen: int | None
    notice: NoticeOut
    on_time: bool


class ReviewOut(BaseModel):
    requested_on: date
    grounds: str | None = Field(description=_NOT_SHOWN)
    reviewing_institution: str
    due_on: date = Field(description="The review's own due date.")
    status: ClockStatus | None
    days_left: int | None
    decision: ReviewDecisionOut | None


class RegulatorTransferOut(BaseModel):
    regulator_received_on: date
    forwarded_on: date
    working_days: int
    within_limit: bool


class RedressApprovalOut(BaseModel):
    """The approval on the case no decision has used yet (核决权限; Art. 24): the next decision or
    review decision may give redress up to `up_to_fen` beyond the decider's own limit."""

    up_to_fen: int
    approver_id: str
    approved_on: date
    note: str | None = Field(description=_NOT_SHOWN)


class RectificationActionOut(BaseModel):
    action_id: str
    description: str | None = Field(description=_NOT_SHOWN)
    owner_id: str = Field(description="The staff id of the action's owner.")
    due_on: date
    status: ActionStatus = Field(
        description="As of today: `closed` once rectified, `overdue` when past its due date and "
        "not closed, else `open`."
    )
    closed_on: date | None
    evidence_ref: str | None


class AttributionOut(BaseModel):
    """The current responsibility, root cause and rectification actions (責任歸屬; Art. 26)."""

    attributed_on: date
    responsible_institution: str
    department: str | None
    responsible_staff: list[str]
    root_cause: RootCause
    third_party: str | None = Field(description=_NOT_SHOWN)
    actions: list[RectificationActionOut]


class FollowUpOut(BaseModel):
    """The latest follow-up (回访) after the decision notice."""

    reached: bool
    satisfaction: Satisfaction | None
    followed_up_on: date
    note: str | None = Field(description=_NOT_SHOWN)


class MaskedComplainantOut(AsGiven):
    """The complainant with name, identity number and contact masked; absent keys were not
    given. Once the case's personal data is erased, each of them is null."""

    kind: ComplainantKind
    name: str | None
    id_type: IdType | None = None
    id_number: str | None = None
    contact: str | None = None
    unified_social_credit_code: str | None = None


class CaseOut(BaseModel):
    """A case as of today (or as of a version): deadlines are computed at query time."""

    id: str = Field(description="The case id (a UUID).")
    registration_no: str
    status: CaseStatus
    closed: bool = Field(description="Whether the procedure has ended as of today.")
    version: int = Field(ge=1, description="The version of the case's last event: its ETag.")
    respondent_institution: str
    handler_id: str | None
    category: CategoryOut
    channel: Channel
    major: bool
    major_cause: MajorCause | None
    received_on: date
    last_business_date: date = Field(
        description="The latest business date of the case; a command may not date before it."
    )
    deadline: DeadlineOut
    complainant: MaskedComplainantOut
    personal_data: Literal["held", "erased"] = Field(
        description="`erased` once the case's retention ended and its data key was destroyed: "
        "every personal field then reads as null."
    )
    decision: DecisionOut | None
    review: ReviewOut | None
    regulator_transfer: RegulatorTransferOut | None
    merged_into: str | None
    redress_approval: RedressApprovalOut | None = None
    attribution: AttributionOut | None = None
    follow_up: FollowUpOut | None = None


class CaseSummaryOut(BaseModel):
    id: str
    registration_no: str
    status: CaseStatus
    version: int
    respondent_institution: str
    handler_id: str | None
    category: CategoryOut
    channel: Channel
    major: bool
    received_on: date
    deadline: DeadlineOut
    review_due_on: date | None
    complainant: MaskedComplainantOut


class CaseListOut(BaseModel):
    items: list[CaseSummaryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class EventMetadataOut(AsGiven):
    """Who did it, on whose behalf, and which request caused it: the members stored, exactly
    (the chain's hash covers them as stored), so a member not known is absent, and a member
    this service never writes (added to the row by other means) is shown too."""

    # as stored, not as this model knows metadata: any other member is kept too
    model_config = ConfigDict(extra="allow")

    actor_id: str | None = None
    actor_role: str | None = None
    institution: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    idempotency_key: str | None = None
    client: str | None = None
    cipher_suite: str | None = Field(
        default=None,
        description="The suite the event's personal fields are sealed under (`aes-256-gcm`, "
        "`sm4-gcm`), which also gives its chain hash (SHA-256, SM3); null for an event stored "
        "before encryption (plaintext, SHA-256).",
    )
    policy_version: str | None = Field(
        default=None,
        description="The institution policy the command was judged under: the ids "
        "(`<institution>/v<number>`) of the policy versions in force along the respondent's "
        "lineage, head office first, or `default`; absent on events stored before policies had "
        "versions.",
    )


class StoredEventOut(BaseModel):
    position: int
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any] = Field(description="The payload as stored (the hash covers it).")
    metadata: EventMetadataOut
    recorded_at: datetime
    prev_hash: str
    hash: str


class EventPageOut(BaseModel):
    items: list[StoredEventOut]
    next_after: int = Field(ge=0, description="The position to read on from: pass as `after`.")


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


class EventPolicyOut(BaseModel):
    version: int = Field(description="The event's version in the stream.")
    type: str
    policy_version: str | None = Field(
        description="The institution policy the command was judged under (the event's "
        "`metadata.policy_version`); null for an event stored before policies had versions."
    )


class AuditOut(BaseModel):
    case_id: str
    cipher_suite: str | None = Field(
        description="The suite the stream's personal fields are sealed under, whose hash chains "
        "it (`aes-256-gcm`: SHA-256; `sm4-gcm`: SM3); null for a stream stored before encryption."
    )
    chain: ChainVerdictOut
    state: CaseOut | None
    timeline: list[DeadlineChangeOut]
    policy_versions: list[EventPolicyOut] = Field(
        description="Per event, in version order, the policy version it was judged under."
    )
