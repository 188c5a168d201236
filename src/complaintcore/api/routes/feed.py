"""The global event feed, for regulators and batch consumers."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from complaintcore.api.auth import require_role
from complaintcore.api.problems import problem_responses
from complaintcore.api.routes.complaint_commands import CaseJSONResponse
from complaintcore.api.schemas.cases import EventPageOut
from complaintcore.application.case_audit import stored_event_document
from complaintcore.domain.roles import FEED_READERS

router = APIRouter(prefix="/v1", tags=["events"])

_PROBLEMS = problem_responses(401, 403, 422, 503)


@router.get(
    "/events",
    operation_id="read_event_feed",
    response_model=EventPageOut,
    responses=_PROBLEMS,
    dependencies=[Depends(require_role(*FEED_READERS))],
)
async def read_event_feed(
    request: Request,
    after: Annotated[int, Query(ge=0, le=2**62, description="Last position already read.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> CaseJSONResponse:
    """Every event after position `after`, in position order. An event whose transaction commits
    late is never skipped: the feed stops short of any append still in flight, so reading on from
    the last position returned is always safe. `next_after` is the position to read from next."""
    events = await request.app.state.store.read_feed(after=after, limit=limit)
    # as stored, written out as it is (`EventPageOut` documents it): up to 5,000 events a page
    return CaseJSONResponse(
        {
            "items": [stored_event_document(event) for event in events],
            "next_after": events[-1].position if events else after,
        }
    )
