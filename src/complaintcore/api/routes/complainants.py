"""The search for a complainant's cases by identity document (API.md "Personal data")."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response

from complaintcore.api.auth import Principal, require_role
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import FieldProblem, invalid, problem_responses
from complaintcore.api.routes.complaint_queries import Cursor, Limit
from complaintcore.api.routes.personal_data import NO_STORE_HEADER
from complaintcore.api.schemas.complainants import ComplainantCasesOut, ComplainantSearchBody
from complaintcore.application.complainant_search import (
    IdentityDocument,
    InvalidCursor,
    complainant_cases,
)
from complaintcore.domain.roles import CASE_HANDLERS

router = APIRouter(prefix="/v1", tags=["personal data"], route_class=ExactJsonRoute)

CaseHandler = Annotated[Principal, Depends(require_role(*CASE_HANDLERS))]


@router.post(
    "/complainants/search",
    operation_id="search_complainant_cases",
    response_model=ComplainantCasesOut,
    responses={
        200: {"headers": NO_STORE_HEADER},
        **problem_responses(401, 403, 422, 503),
    },
)
async def search_complainant_cases(
    request: Request,
    response: Response,
    principal: CaseHandler,
    body: Annotated[ComplainantSearchBody, Body()],
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The cases of the caller's subtree whose complainant holds this identity document (staff
    and supervisors; Art. 18, repeat complainants), by receipt date then id. Found by the blind
    index (a keyed hash of the normalised document), so the number is stored nowhere; an erased
    case is not found. Never cached."""
    document = IdentityDocument(str(body.id_type), body.id_number)
    state = request.app.state
    try:
        page = await complainant_cases(
            state.pool, state.institutions, state.index_key, principal, document, limit, cursor
        )
    except InvalidCursor as error:
        problem = FieldProblem(field="cursor", code="invalid_cursor", message=str(error))
        raise invalid([problem]) from None
    response.headers["Cache-Control"] = "no-store"
    return page
