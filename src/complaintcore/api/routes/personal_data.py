"""The reveal of a case's personal data and its access log (API.md "Personal data")."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

from complaintcore.api.auth import CurrentPrincipal, require_role
from complaintcore.api.deps import Complaints
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import (
    STREAM_DAMAGED,
    FieldProblem,
    invalid,
    not_found,
    problem_responses,
)
from complaintcore.api.routes.complaint_commands import (
    COMMITTED_HEADER,
    ETAG_HEADER,
    CaseId,
    IdempotencyKey,
    IfMatch,
    run_command,
)
from complaintcore.api.routes.complaint_queries import Cursor, Limit
from complaintcore.api.schemas.cases import CaseOut
from complaintcore.api.schemas.personal_data import PersonalDataAccessListOut, PersonalDataOut
from complaintcore.application.complaint_service import CaseNotFound
from complaintcore.application.personal_data_reveal import (
    PURPOSE_MAX_LENGTH,
    PURPOSE_PATTERN,
    AccessFilter,
    InvalidCursor,
    access_log,
    purpose_refused,
    reveal,
)
from complaintcore.application.requests.complaints import ErasePersonalDataBody
from complaintcore.application.requests.fields import IsoDate
from complaintcore.domain.roles import PERSONAL_DATA_ACCESS_READERS

router = APIRouter(prefix="/v1", tags=["personal data"], route_class=ExactJsonRoute)

NO_STORE_HEADER = {
    "Cache-Control": {
        "description": "Always `no-store`: personal data is never kept by a cache.",
        "required": True,
        "schema": {"type": "string", "enum": ["no-store"]},
    }
}


def _purpose_shown_and_not_personal(purpose: str) -> str:
    refused = purpose_refused(purpose)
    if refused is not None:
        raise PydanticCustomError(*refused)
    return purpose


Purpose = Annotated[
    str,
    Query(
        min_length=1,
        max_length=PURPOSE_MAX_LENGTH,
        pattern=PURPOSE_PATTERN,
        description="Why the plaintext is needed: one line of 1 to 200 characters, not all "
        "spaces, with no control characters and a character that shows, and no identity or "
        "mobile number; recorded in the access log.",
    ),
    AfterValidator(_purpose_shown_and_not_personal),
]
# any id a token may carry (`auth.tokens`: printable, no spaces), in any script; a class
# every regex dialect of the schema's readers takes (no \p{...})
ActorId = Annotated[
    str | None, Query(min_length=1, max_length=200, pattern=r"^[^\s\x00-\x1f\x7f-\x9f]+$")
]
LogCaseId = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
BusinessDate = Annotated[
    IsoDate | None,
    Query(
        ge=date(1990, 1, 1),
        le=date(2100, 12, 31),
        description="An Asia/Shanghai business date, inclusive.",
    ),
]


@router.get(
    "/complaints/{case_id}/personal-data",
    operation_id="reveal_personal_data",
    response_model=PersonalDataOut,
    responses={
        200: {"headers": NO_STORE_HEADER},
        **problem_responses(401, 403, 404, 409, 410, 422, 503, descriptions={409: STREAM_DAMAGED}),
    },
)
async def reveal_personal_data(
    case_id: CaseId,
    purpose: Purpose,
    request: Request,
    response: Response,
    principal: CurrentPrincipal,
    complaints: Complaints,
) -> dict[str, Any]:
    """The case's personal fields in plaintext, by event version, for its assigned handler
    (staff), supervisors of its subtree and regulators. Each call is recorded in the access log
    (who, role, when, case, purpose) before it is answered. Never cached."""
    try:
        revealed = await reveal(
            request.app.state.pool, complaints, principal, case_id.lower(), purpose
        )
    except CaseNotFound:
        raise not_found("complaint") from None
    response.headers["Cache-Control"] = "no-store"
    return revealed


@router.post(
    "/complaints/{case_id}/erase-personal-data",
    operation_id="erase_personal_data",
    response_model=CaseOut,
    response_description="The case, its personal fields shown as erased.",
    responses={
        200: {"headers": {**ETAG_HEADER, **COMMITTED_HEADER}},
        **problem_responses(401, 403, 404, 409, 410, 412, 422, 503),
    },
)
async def erase_personal_data(
    case_id: CaseId,
    request: Request,
    principal: CurrentPrincipal,
    body: Annotated[ErasePersonalDataBody, Body()],
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Erase the case's personal data once its retention has ended (admins; 403 for another
    role that can see the case, 404 outside one's subtree): its data key is
    destroyed and `PersonalDataErased` appended, in one transaction. Every personal field then
    reads as null, statistics stay as they were, and the hash chain still verifies. 409
    `case_open` or `retention_not_expired`, 409 `personal_data_not_encrypted` for a case stored
    before encryption, 410 `personal_data_erased` when already erased."""
    return await run_command(request, principal, case_id, body, if_match, idempotency_key)


@router.get(
    "/personal-data-access",
    operation_id="list_personal_data_access",
    response_model=PersonalDataAccessListOut,
    responses=problem_responses(401, 403, 422, 503),
    dependencies=[Depends(require_role(*PERSONAL_DATA_ACCESS_READERS))],
)
async def list_personal_data_access(
    request: Request,
    case_id: LogCaseId = None,
    actor: ActorId = None,
    date_from: Annotated[BusinessDate, Query(alias="from")] = None,
    date_to: Annotated[BusinessDate, Query(alias="to")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The personal data access log, newest first (regulators and admins). `from` and `to` are
    Asia/Shanghai business dates, both inclusive."""
    access_filter = AccessFilter(
        case_id=case_id.lower() if case_id else None,
        actor=actor,
        date_from=date_from,
        date_to=date_to,
    )
    try:
        return await access_log(request.app.state.pool, access_filter, limit, cursor)
    except InvalidCursor as error:
        problem = FieldProblem(field="cursor", code="invalid_cursor", message=str(error))
        raise invalid([problem]) from None
