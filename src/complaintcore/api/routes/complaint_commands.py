"""The complaint commands of API.md: each returns the case as a query would show it afterwards."""

import json
import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Path, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from complaintcore.api.auth import CurrentPrincipal, Principal
from complaintcore.api.deps import Complaints
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import FieldProblem, Problem, invalid, problem_responses
from complaintcore.api.response_headers import location_header
from complaintcore.api.schemas.cases import CaseOut
from complaintcore.application.business_day import shanghai_today
from complaintcore.application.case_document import case_document
from complaintcore.application.complaint_service import (
    ActorConfirmation,
    ComplaintService,
    Render,
    Rendered,
    RequestInfo,
)
from complaintcore.application.idempotency import IdempotentRequest
from complaintcore.application.requests import complaints as bodies
from complaintcore.application.requests.complaints import COMMAND_BODIES
from complaintcore.domain.identity import looks_like_a_personal_number, personal_numbers_redacted
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.domain.state import ComplaintState

router = APIRouter(prefix="/v1/complaints", tags=["complaint commands"], route_class=ExactJsonRoute)

CASE_ID_PATTERN = r"^[0-9a-fA-F-]{36}$"
CaseId = Annotated[str, Path(pattern=CASE_ID_PATTERN, description="The case id (a UUID).")]
IfMatch = Annotated[
    str | None,
    Header(
        description='Apply only if the case is still at this version: `"<version>"` (or at one '
        'of a list, `"3", "4"`; `*`: any). Compared strongly: a weak tag never matches.'
    ),
]
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
IDEMPOTENCY_KEY_MAX_LENGTH = 200
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Same key and body: the first response again, nothing stored. Never an "
        "identity or mobile number (422 `idempotency_key_personal`): the key is kept in clear.",
    ),
]

# 410: a command on a case whose personal data was erased (a review pass found the answer
# undocumented on every command route)
_PROBLEMS = problem_responses(401, 403, 404, 409, 410, 412, 422, 503)
ETAG_HEADER = {
    "ETag": {
        "description": 'The case\'s version, `"<version>"`: send it as `If-Match` to apply a '
        "command only to that version.",
        "required": True,
        "schema": {"type": "string", "pattern": r'^"[0-9]+"$'},
    }
}
COMMITTED_HEADER = {
    "Consistency-Position": {
        "description": "The command's commit position. Send it back as `Consistency-Position` "
        "on a list, deadline, statistics, events or audit read to be served only where this "
        "write is visible (a read replica that has replayed it, else the primary). Absent from "
        "a replay of an answer stored before the header existed.",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
LOCATION_HEADER = location_header(
    "The new case: `/v1/complaints/{id}`.", r"^/v1/complaints/[0-9a-f-]{36}$"
)
# The case's ETag as it gives it, quoted: If-Match compares strongly (RFC 9110 13.1.1), so a
# weak tag never matches, and an unquoted number is no entity tag (found by a review pass: both
# were taken as the version). The header is `*` or a list of tags: the command applies when the
# case is at any version listed. The tags are the versions as the ETag writes them, so "01" is
# not "1" (strong comparison is character by character).
_ETAG = re.compile(r'^"(0|[1-9]\d{0,8})"$')
_WEAK_ETAG = re.compile(r'^W/"[^"]*"$')


def _if_match_versions(request: Request, if_match: str | None) -> frozenset[int] | None:
    """The versions `If-Match` accepts (its lines are one list, its empty items ignored, RFC
    9110 5.3 and 5.6.1.2); None for none given or `*`."""
    lines = request.headers.getlist("if-match")
    if lines:
        if_match = ", ".join(lines)
    if if_match is None or if_match.strip() == "*":
        return None
    tags = [tag for tag in (item.strip() for item in if_match.split(",")) if tag]
    strong = [parsed for tag in tags if (parsed := _ETAG.match(tag))]
    if not strong or len(strong) + sum(bool(_WEAK_ETAG.match(tag)) for tag in tags) != len(tags):
        raise Problem(
            412, "precondition_failed", "Precondition failed", 'If-Match must be "<version>".'
        )
    return frozenset(int(parsed.group(1)) for parsed in strong)


def _render(status_code: int) -> Render:
    def render(state: ComplaintState, today: date, policy: InstitutionPolicy) -> Rendered:
        headers = {"ETag": f'"{state.version}"'}
        if status_code == 201:
            headers["Location"] = f"/v1/complaints/{state.id}"
        return Rendered(status_code, case_document(state, today, policy), headers)

    return render


def _request_info(
    request: Request, principal: Principal, key: str | None, body: Any, case_id: str | None = None
) -> RequestInfo:
    """`case_id`: the case as the path names it; fingerprinted in the lower case the service
    reads it in, so the same request with the id spelled in upper case is the same request."""
    path = request.url.path
    if case_id is not None:
        path = path.replace(case_id, case_id.lower(), 1)
    if key and looks_like_a_personal_number(key):
        # stored with the response and in each event's metadata for good, as an imported
        # case's external id is (`external_id_personal`; found by a review pass). The whole
        # key, not a run of digits in it: a random hex key holds such runs now and then
        problem = FieldProblem(
            field="Idempotency-Key",
            code="idempotency_key_personal",
            message="an identity or mobile number is personal data, kept only sealed; use a key "
            "of your own (a UUID)",
        )
        raise invalid([problem], code="idempotency_key_personal")
    idempotency = (
        IdempotentRequest.of(
            request.app.state.fingerprint_key,
            principal.id,
            principal.institution,
            key,
            request.method,
            path,
            jsonable_encoder(body),
        )
        if key
        else None
    )
    return RequestInfo(
        correlation_id=request.scope.get("state", {}).get("correlation_id"),
        # stored in each event's metadata for good: never with a personal number in it
        client=personal_numbers_redacted(request.headers.get("user-agent", "")[:200]) or None,
        idempotency=idempotency,
    )


class CaseJSONResponse(JSONResponse):
    """A case document rendered by orjson: the same JSON, a fraction of the json module's cost."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:
            # an integer beyond 64 bits, shown as stored: only a tampered row holds one
            return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def _response(rendered: Rendered) -> JSONResponse:
    return CaseJSONResponse(
        rendered.body, status_code=rendered.status_code, headers=rendered.headers
    )


@router.post(
    "",
    operation_id="receive_complaint",
    status_code=201,
    response_model=CaseOut,
    response_description="The case as registered.",
    responses={
        201: {"headers": {**ETAG_HEADER, **COMMITTED_HEADER, **LOCATION_HEADER}},
        **problem_responses(401, 403, 409, 422, 503),
    },
)
async def receive_complaint(
    body: bodies.ReceiveBody,
    request: Request,
    principal: CurrentPrincipal,
    complaints: Complaints,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Register a complaint (Art. 12–14, 18): the response carries its registration number,
    deadline and `Location`."""
    today = shanghai_today()
    rendered = await complaints.receive(
        principal,
        body.respondent_institution,
        body.received_on or today,
        lambda case_id, registration_no: body.to_command(case_id, registration_no, today),
        _request_info(request, principal, idempotency_key, body),
        _render(201),
    )
    return _response(rendered)


async def run_command(
    request: Request,
    principal: Principal,
    case_id: str,
    body: Any,
    if_match: str | None,
    idempotency_key: str | None,
    confirmation: ActorConfirmation | None = None,
) -> Response:
    """A command on a case, its input validated: by its route, or by the command lane."""
    complaints: ComplaintService = request.app.state.complaints
    rendered = await complaints.handle(
        principal,
        case_id.lower(),
        body.to_command(shanghai_today()),
        _if_match_versions(request, if_match),
        _request_info(request, principal, idempotency_key, body, case_id),
        _render(200),
        confirmation,
    )
    return _response(rendered)


_COMMAND_ENDPOINTS: list[Callable[..., Any]] = []


def is_command_endpoint(endpoint: object) -> bool:
    """Whether `endpoint` is a command's, made by `_command_route`.

    The command lane (`api/command_lane.py`) answers such a route's requests itself: it reads
    the route's path, parameters, body and dependencies from the router at start-up, and calls
    `run_command` with what the endpoint would have been given."""
    return any(endpoint is command for command in _COMMAND_ENDPOINTS)


def _command_route(path: str, operation_id: str, body_type: type, doc: str) -> None:
    # Its parameters are the command lane's to fill too: one it does not know (a new `Header`,
    # `Depends`, ...) makes it leave the route to the router, and fails tests/unit/
    # test_command_lane_derivation.py until it is taught.
    async def endpoint(
        case_id: CaseId,
        request: Request,
        principal: CurrentPrincipal,
        body: Annotated[body_type, Body()],  # type: ignore[valid-type]
        if_match: IfMatch = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        return await run_command(request, principal, case_id, body, if_match, idempotency_key)

    endpoint.__doc__ = doc
    endpoint.__name__ = operation_id
    _COMMAND_ENDPOINTS.append(endpoint)
    router.add_api_route(
        f"/{{case_id}}/{path}",
        endpoint,
        methods=["POST"],
        operation_id=operation_id,
        response_model=CaseOut,
        response_description="The case after the command.",
        responses={200: {"headers": {**ETAG_HEADER, **COMMITTED_HEADER}}, **_PROBLEMS},
        summary=operation_id.replace("_", " ").capitalize(),
    )


_COMMANDS = [
    (
        "assign",
        "assign_handler",
        "Give the case to a handler with no conflict of interest (Art. 17).",
    ),
    (
        "recuse",
        "recuse_handler",
        "The current handler declares a conflict; the case returns to unassigned and that handler "
        "is barred from it for good (Art. 17).",
    ),
    (
        "extend",
        "extend_deadline",
        "Extend the handling period: to 30 days, then to 60 with a superior's or head-office"
        " senior manager's approval; never once overdue (Art. 18).",
    ),
    (
        "pause",
        "pause_clock",
        "Stop the clock for external appraisal, testing or evaluation, or agreed mediation "
        "(Art. 18, 23).",
    ),
    (
        "resume",
        "resume_clock",
        "Restart the clock; the due date moves out by the paused days.",
    ),
    (
        "supplement",
        "supplement_complaint",
        "Record the complainant repeating the complaint; new facts and reasons restart the period "
        "(Art. 18).",
    ),
    (
        "merge",
        "merge_complaint",
        "Merge a duplicate into another case; statistics count it once.",
    ),
    (
        "decide",
        "decide_complaint",
        "Record the decision and its notice; met when the notice is dated on or before the due"
        " date (Art. 19, 21).",
    ),
    (
        "notify",
        "notify_complainant",
        "Record a further notice to the complainant, such as acceptance (Art. 21).",
    ),
    (
        "appeal",
        "request_review",
        "Record the complainant's written request for review by the superior institution, within "
        "30 days of the decision notice (Art. 20).",
    ),
    (
        "decide-review",
        "decide_review",
        "Record the superior's review decision, which keeps or changes the outcome (Art. 20).",
    ),
    (
        "withdraw",
        "withdraw_complaint",
        "Record the complainant's withdrawal; the procedure ends that day (Art. 15).",
    ),
    (
        "decline",
        "decline_complaint",
        "Decline a complaint not made by the complainant, its legal representative or agent "
        "(Art. 18).",
    ),
    (
        "flag-major",
        "flag_major",
        "Mark the complaint major: disaster, accident or public-health cause (staff), or"
        " designated by the regulator (Art. 29).",
    ),
    (
        "approve-redress",
        "approve_redress",
        "A supervisor at the case's institution or above, whose own limit covers it, approves "
        "redress up to `up_to_fen` for the next decision or review decision (核决权限; Art. 24, "
        "desk rule 客訴金額核決權限). Other roles: 403. The approval is used by one decision; a "
        "decision above the decider's limit that no unused approval covers is refused "
        "`redress_exceeds_authority`.",
    ),
    (
        "attribute",
        "attribute_case",
        "After the decision, record the responsible unit of the case's tree, the root cause and "
        "the rectification actions (責任歸屬; Art. 26 溯源整改、责任追究); a later attribution "
        "supersedes the earlier.",
    ),
    (
        "rectify",
        "rectify_action",
        "Close one rectification action of the current attribution with its evidence (Art. 26); "
        "an action past its due date and not closed reads `overdue`.",
    ),
    (
        "follow-up",
        "follow_up",
        "Record the follow-up (回访) after the decision notice: whether the complainant was "
        "reached and their satisfaction.",
    ),
]

for _path, _operation_id, _doc in _COMMANDS:
    _command_route(_path, _operation_id, COMMAND_BODIES[_path], _doc)
