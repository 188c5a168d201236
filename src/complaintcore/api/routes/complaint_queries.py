"""Case queries and the regulator's replay (API.md "Queries")."""

from datetime import date
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from complaintcore.api.auth import CurrentPrincipal, Principal
from complaintcore.api.deps import Complaints, ConsistencyPosition, Reads
from complaintcore.api.problems import (
    STREAM_DAMAGED,
    FieldProblem,
    invalid,
    not_found,
    problem_responses,
)
from complaintcore.api.routes.complaint_commands import ETAG_HEADER, CaseId, CaseJSONResponse
from complaintcore.api.schemas.cases import AuditOut, CaseListOut, CaseOut, StoredEventOut
from complaintcore.application.business_day import shanghai_today
from complaintcore.application.case_audit import audit_case, respondent_of, stored_event_document
from complaintcore.application.case_document import case_document
from complaintcore.application.complaint_service import (
    CaseNotFound,
    ComplaintService,
    VersionNotFound,
)
from complaintcore.application.requests.fields import IsoDate
from complaintcore.auth.principals import may_see
from complaintcore.crypto.suites import UnknownSuite
from complaintcore.domain.policy import DueSoonDays
from complaintcore.domain.roles import sees_everything
from complaintcore.domain.state import CaseStatus, clock_is_paused
from complaintcore.events.model import StoredEvent
from complaintcore.events.stream_cipher import CaseKeyUnusable
from complaintcore.infra.read_replicas import ReplicaSet
from complaintcore.projections.case_queries import (
    CaseFilter,
    InvalidCursor,
    cases_by_due_date,
    clock_reading,
    list_cases,
)
from complaintcore.projections.clock_sql import CLOCK_STATUSES, RUNNING_REVIEW_STATUSES

router = APIRouter(prefix="/v1", tags=["complaint queries"])

# no 403: every role reads the cases it sees, and a case out of sight is 404 (API.md)
_PROBLEMS = problem_responses(401, 404, 422, 503)
_LIST_PROBLEMS = problem_responses(401, 422, 503)
# the domain's clock statuses and case statuses, as query parameters (their values: a refusal
# lists them as a client writes them)
Clock = Literal[CLOCK_STATUSES]  # type: ignore[valid-type]
Status = Literal[tuple(status.value for status in CaseStatus)]  # type: ignore[valid-type]
ReviewClock = Literal[  # type: ignore[valid-type]
    tuple(status.value for status in RUNNING_REVIEW_STATUSES)
]
InstitutionCode = Annotated[
    str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (default 50, max 500).")]
Cursor = Annotated[
    str | None,
    Query(max_length=500, pattern=r"^[A-Za-z0-9_-]+$", description="`next_cursor` of a page."),
]
DateParam = Annotated[IsoDate | None, Query(ge=date(1990, 1, 1), le=date(2100, 12, 31))]


@router.get(
    "/complaints/{case_id}",
    operation_id="get_complaint",
    response_model=CaseOut,
    response_description="The case.",
    responses={
        200: {"headers": ETAG_HEADER},
        **_PROBLEMS,
        **problem_responses(409, descriptions={409: STREAM_DAMAGED}),
    },
)
async def get_complaint(
    case_id: CaseId,
    principal: CurrentPrincipal,
    complaints: Complaints,
    as_of_version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> JSONResponse:
    """The case as of today, or as it was right after event `as_of_version` (rebuilt from the
    stream). Deadline status and days left are computed for today."""
    try:
        state, today, policy = await complaints.case(principal, case_id.lower(), as_of_version)
    except (CaseNotFound, VersionNotFound):
        raise not_found("complaint (or version)") from None
    document = case_document(state, today, policy)
    return CaseJSONResponse(document, headers={"ETag": f'"{state.version}"'})


@router.get(
    "/complaints/{case_id}/events",
    operation_id="get_complaint_events",
    response_model=list[StoredEventOut],
    responses=_PROBLEMS,
)
async def get_complaint_events(
    case_id: CaseId,
    principal: CurrentPrincipal,
    complaints: Complaints,
    reads: Reads,
    position: ConsistencyPosition = None,
) -> JSONResponse:
    """The case's whole stream in order, with each event's position, hash and previous hash, so
    the chain can be verified independently. Payloads are as stored (hashes cover them). Read on
    a read replica when one keeps up."""
    try:
        events = await _replayed(reads, complaints, principal, case_id.lower(), position)
    except CaseNotFound:
        raise not_found("complaint") from None
    # as stored, written out as it is: `StoredEventOut` documents it (a regulator's replay of a
    # long stream paid for a model's validation and serialization of every event)
    return CaseJSONResponse([stored_event_document(event) for event in events])


@router.get(
    "/complaints/{case_id}/audit",
    operation_id="audit_complaint",
    response_model=AuditOut,
    responses=_PROBLEMS,
)
async def get_complaint_audit(
    case_id: CaseId,
    principal: CurrentPrincipal,
    complaints: Complaints,
    reads: Reads,
    position: ConsistencyPosition = None,
) -> dict[str, Any]:
    """Replay verdict: whether the hash chain is intact (or the first bad version), the state
    rebuilt from the events, and the timeline of deadline changes. Read on a read replica when
    one keeps up."""
    try:
        events = await _replayed(reads, complaints, principal, case_id.lower(), position)
    except CaseNotFound:
        raise not_found("complaint") from None
    try:
        events, cipher = await complaints.opened_stream(principal, case_id.lower(), events)
    except (UnknownSuite, CaseKeyUnusable):
        # an altered suite name (the chain verdict names its version), a key row gone or
        # altered: the chain is verified all the same, and the state is not opened
        cipher = None
    today = shanghai_today()
    policy = await complaints.policy_in_force(respondent_of(events), today)
    return audit_case(case_id.lower(), events, today, cipher, policy.policy)


async def _replayed(
    reads: ReplicaSet,
    complaints: ComplaintService,
    principal: Principal,
    case_id: str,
    position: int | None,
) -> list[StoredEvent]:
    """The case's events, from a read replica when one keeps up (and shows `position`); on the
    primary, read as the commands read them (the stream's head remembered)."""
    return await reads.read(
        lambda pool: complaints.case_events(
            principal, case_id, None if pool is reads.primary else pool
        ),
        position,
        not_final=(CaseNotFound,),
    )


@router.get(
    "/complaints",
    operation_id="list_complaints",
    response_model=CaseListOut,
    responses=_LIST_PROBLEMS,
)
async def list_complaints(
    request: Request,
    principal: CurrentPrincipal,
    institution: InstitutionCode = None,
    status: Status | None = None,
    clock: Clock | None = None,
    review_clock: Annotated[
        ReviewClock | None,
        Query(
            description="The review's own clock (Art. 20: decided within 30 days of the "
            "request), for cases under review: `overdue`, `due_soon` or `on_track` today. "
            "`clock` reads the handling clock."
        ),
    ] = None,
    major: bool | None = None,
    received_from: DateParam = None,
    received_to: DateParam = None,
    category: InstitutionCode = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: ConsistencyPosition = None,
) -> dict[str, Any]:
    """Cases of the caller's subtree (or of `institution`'s subtree within it), newest first.
    Read on a read replica when one keeps up."""
    scope = await _visible_institutions(request, principal, institution)
    case_filter = CaseFilter(
        institutions=scope,
        status=status,
        clock=clock,
        review_clock=review_clock,
        major=major,
        received_from=received_from,
        received_to=received_to,
        category=category,
    )
    return await _page(request, case_filter, limit, cursor, list_cases, position)


@router.get(
    "/deadlines",
    operation_id="list_deadlines",
    response_model=CaseListOut,
    responses=_LIST_PROBLEMS,
)
async def list_deadlines(
    request: Request,
    principal: CurrentPrincipal,
    institution: InstitutionCode = None,
    due_within_days: Annotated[int | None, Query(ge=0, le=3660)] = None,
    clock: Literal["on_track", "due_soon", "overdue", "paused"] | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    position: ConsistencyPosition = None,
) -> dict[str, Any]:
    """Open cases by handling due date, soonest first: what falls due within N days, what is
    overdue. Served from the deadline index, without replaying streams; on a read replica when
    one keeps up."""
    scope = await _visible_institutions(request, principal, institution)
    case_filter = CaseFilter(institutions=scope, clock=clock, due_within_days=due_within_days)
    return await _page(request, case_filter, limit, cursor, cases_by_due_date, position)


async def _page(
    request: Request,
    case_filter: CaseFilter,
    limit: int,
    cursor: str | None,
    query: Any,
    position: int | None,
) -> dict[str, Any]:
    today = shanghai_today()
    due_soon_days = await request.app.state.policies.due_soon_days(today)
    try:
        rows, next_cursor = await request.app.state.reads.read(
            lambda pool: query(pool, case_filter, today, due_soon_days, limit, cursor), position
        )
    except InvalidCursor as error:
        problem = FieldProblem(field="cursor", code="invalid_cursor", message=str(error))
        raise invalid([problem]) from None
    return {
        "items": [_summary(row, today, due_soon_days) for row in rows],
        "next_cursor": next_cursor,
    }


async def _visible_institutions(
    request: Request, principal: Principal, institution: str | None
) -> list[str] | None:
    """The institution codes the caller may list: None means every one."""
    directory = request.app.state.institutions
    if institution is None:
        if sees_everything(principal.role):
            return None
        return await directory.subtree(principal.institution)
    if not await may_see(principal, institution, directory):
        return []
    return await directory.subtree(institution)


def _summary(row: asyncpg.Record, today: date, due_soon_days: DueSoonDays) -> dict[str, Any]:
    reading = clock_reading(row, today, due_soon_days.of(row["respondent_institution"]))
    return {
        "id": row["case_id"],
        "registration_no": row["registration_no"],
        "status": row["status"],
        "version": row["version"],
        "respondent_institution": row["respondent_institution"],
        "handler_id": row["handler_id"],
        "category": {"business": row["category_business"], "reason": row["category_reason"]},
        "channel": row["channel"],
        "major": row["major"],
        "received_on": row["received_on"],
        "deadline": {
            "due_on": row["due_on"],
            "level": row["level"],
            "paused_days": row["paused_days"],
            "paused": clock_is_paused(row["paused_since"], row["clock_stopped_on"]),
            "status": reading.status,
            "days_left": reading.days_left,
        },
        "review_due_on": row["review_due_on"],
        "complainant": row["complainant"],
    }
