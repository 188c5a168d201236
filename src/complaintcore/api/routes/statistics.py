"""Per-branch statistics (DOMAIN.md "Statistics", Art. 26, 36) and the projections' lag.

Figures are read from the statistics projection, which follows the event feed a moment behind
the commands; `checkpoint` in each answer is the feed position they are as of, and
`GET /v1/projections` shows how far behind the feed each projection is.
"""

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from complaintcore.api.auth import (
    CurrentPrincipal,
    FeedReader,
    Principal,
    can_see,
    check_role,
)
from complaintcore.api.deps import ConsistencyPosition, Institutions
from complaintcore.api.problems import FieldProblem, invalid, not_found, problem_responses
from complaintcore.application.business_day import shanghai_today
from complaintcore.application.requests.fields import IsoDate
from complaintcore.domain.roles import Role
from complaintcore.projections import alerts, statistics
from complaintcore.projections.runner import projection_lag
from complaintcore.projections.statistics.csv_return import statistics_csv
from complaintcore.projections.statistics.periods import PeriodKind, count_periods
from complaintcore.projections.statistics.queries import (
    institution_statistics,
)
from complaintcore.projections.statistics.staff import staff_statistics
from complaintcore.reference.institutions import (
    INSTITUTION_CODE_PATTERN,
    MAX_INSTITUTION_CODE_LENGTH,
    InstitutionDirectory,
)

router = APIRouter(prefix="/v1", tags=["statistics"])

FEED_PROJECTIONS = (statistics.NAME, alerts.NAME)  # the runners `GET /v1/projections` shows
MAX_PERIODS = 240  # 20 years of months in one answer
FIRST_DAY = date(1990, 1, 1)
LAST_DAY = date(2100, 12, 31)

CodePath = Annotated[
    str,
    Path(
        pattern=INSTITUTION_CODE_PATTERN,
        max_length=MAX_INSTITUTION_CODE_LENGTH,
        description="The institution's code.",
    ),
]
FromParam = Annotated[
    IsoDate | None,
    Query(
        alias="from",
        ge=FIRST_DAY,
        le=LAST_DAY,
        description="First day of the range (default: 1 January of `to`'s year).",
    ),
]
ToParam = Annotated[
    IsoDate | None,
    Query(ge=FIRST_DAY, le=LAST_DAY, description="Last day of the range (default: today)."),
]
PeriodParam = Annotated[
    PeriodKind | None,
    Query(description="Split the range into months, quarters or half-years; none: one period."),
]
RollupParam = Annotated[
    bool,
    Query(description="Count the institution's whole subtree (true) or the node alone (false)."),
]


class Figures(BaseModel):
    """Every figure of DOMAIN.md "Statistics"; each counted on its own date (see the route)."""

    received: int = Field(description="Received (merged duplicates not counted).")
    decided: int = Field(description="Decided (by decision notice date).")
    decided_on_time: int = Field(description="Decided with the notice on or before the due date.")
    decided_late: int = Field(description="Decided with the notice after the due date.")
    open_now: int = Field(description="Received in the period and open as of `as_of`.")
    overdue_now: int = Field(description="Received in the period and overdue as of `as_of`.")
    withdrawn: int = Field(description="Withdrawn (by the day the withdrawal was received).")
    declined: int = Field(description="Declined (by the decline notice date).")
    merged: int = Field(description="Merged into another case as duplicates.")
    extended_once: int = Field(description="First extensions, to 30 days (by notice date).")
    extended_twice: int = Field(description="Second extensions, to 60 days (by notice date).")
    paused: int = Field(description="Cases with a pause that began in the period.")
    reviews_requested: int = Field(description="Review requests received (Art. 20).")
    reviews_changed: int = Field(description="Review decisions that changed the outcome.")
    major: int = Field(description="Major complaints received (Art. 29).")
    redress_total_fen: int = Field(
        description="Final redress of the cases decided in the period, in fen."
    )
    handling_days_mean: float | None = Field(
        description="Mean handling days of the cases decided in the period (receipt to decision "
        "notice, paused days excluded), to two decimals; null when none was decided."
    )
    handling_days_p90: int | None = Field(
        description="Exact 90th percentile of the same handling days; null when none was decided."
    )

    attributed: int = Field(
        description="Cases attributed (responsibility and root cause), by the date of their "
        "current attribution: the cases of `by_root_cause` and `by_responsible_institution`."
    )
    third_party: int = Field(
        description="Cases attributed to a third party (root cause `third_party`), by the date "
        "of their current attribution."
    )
    rectification: "RectificationFigures"
    follow_up: "FollowUpFigures"


class RectificationFigures(BaseModel):
    """The rectification actions of the cases attributed in the period, by status as of `as_of`."""

    open: int = Field(description="Not closed, due date not passed.")
    closed: int = Field(description="Closed (done date on or before `as_of`).")
    overdue: int = Field(description="Not closed and past the due date.")


class FollowUpFigures(BaseModel):
    """The follow-ups (回访) of the period, by the date of each case's latest follow-up."""

    reached: int = Field(description="Complainants reached.")
    satisfied: int
    basically_satisfied: int
    dissatisfied: int


Figures.model_rebuild()


class BreakdownEntry(BaseModel):
    key: str | None = Field(description="The code broken down by (null: no outcome yet).")
    figures: Figures


class PeriodFigures(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    period: str = Field(
        description="`2026-01`, `2026-Q1`, `2026-H1`; `from/to` for a whole range; `total`."
    )
    from_on: date = Field(alias="from", description="First day counted (clipped to the range).")
    to: date = Field(description="Last day counted (clipped to the range).")
    figures: Figures
    by_business: list[BreakdownEntry] = Field(description="By business line (category).")
    by_reason: list[BreakdownEntry] = Field(description="By cause (category).")
    by_channel: list[BreakdownEntry] = Field(description="By channel of receipt.")
    by_outcome: list[BreakdownEntry] = Field(description="By final outcome (after review).")
    by_root_cause: list[BreakdownEntry] = Field(
        description="Attributed cases by the root cause of their current attribution."
    )
    by_responsible_institution: list[BreakdownEntry] = Field(
        description="Attributed cases by the responsible unit of their current attribution."
    )


class StatisticsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    institution: str
    rollup: bool
    institutions: list[str] = Field(description="The institutions counted.")
    from_on: date = Field(alias="from")
    to: date
    period: PeriodKind | None
    as_of: date = Field(description="The day `open_now` and `overdue_now` are judged at.")
    checkpoint: int = Field(description="The event feed position the figures are as of.")
    periods: list[PeriodFigures]
    total: PeriodFigures = Field(description="The whole range as one period.")


class HandlerSatisfaction(BaseModel):
    satisfied: int
    basically_satisfied: int
    dissatisfied: int


class HandlerFigures(BaseModel):
    staff_id: str
    decided: int = Field(description="Cases they decided (by decision notice date).")
    on_time: int = Field(description="Of those, decided on time.")
    review_changed: int = Field(
        description="Reviews that changed their decision (by review decision notice date)."
    )
    satisfaction: HandlerSatisfaction = Field(
        description="Follow-ups of the cases they decided (by follow-up date)."
    )


class RespondentStaffFigures(BaseModel):
    staff_id: str
    named: int = Field(description="Complaints naming them (by receipt date).")
    upheld: int = Field(
        description="Complaints naming them whose final outcome is upheld or partially upheld "
        "(by decision notice date)."
    )


class StaffStatisticsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    institution: str
    institutions: list[str] = Field(description="The institutions counted (the subtree).")
    from_on: date = Field(alias="from")
    to: date
    checkpoint: int = Field(description="The event feed position the figures are as of.")
    handlers: list[HandlerFigures]
    respondent_staff: list[RespondentStaffFigures]


class ProjectionStatus(BaseModel):
    name: str
    checkpoint: int = Field(description="The last feed position applied.")
    head: int = Field(description="The last position in the feed.")
    lag_events: int = Field(description="Events in the feed not applied yet.")
    runner: Literal["here", "elsewhere", "none"] = Field(
        description="Where the one active runner is: this process, another one, or none "
        "(a standby takes over within seconds)."
    )


class ProjectionsOut(BaseModel):
    projections: list[ProjectionStatus]


STATISTICS_DOC = """The figures of DOMAIN.md "Statistics" for the institution (rolled up its
subtree unless `rollup=false`), for `from`..`to` and for each month, quarter or half-year of it,
broken down by business, cause, channel and final outcome. Merged duplicates are counted once.

Each figure counts the cases whose own date for it falls in the period: received on the receipt
date; decided, on time, late, handling days and redress on the decision notice date; withdrawn
on the day the withdrawal was received; declined on the decline notice date; merged on the merge
day; extensions on their notice dates; paused on a pause's first day; reviews requested on the
request's date and reviews changed on the review decision's notice date; major on the receipt
date; `open_now` and `overdue_now` are the cases received in the period that are open, or
overdue, as of today. Internal control: `attributed` and `third_party` on the date of the case's
current attribution (a later attribution moves the case to its own date, root cause and unit),
broken down `by_root_cause` and `by_responsible_institution` (attributed cases only);
`rectification` counts the actions of the cases attributed in the period by their status as of
today (open, closed, overdue); `follow_up` counts on the date of the latest follow-up. Staff and
supervisors see only their own subtree (404 otherwise)."""


async def _with_checkpoint(
    request: Request,
    figures_of: Callable[[asyncpg.Pool], Awaitable[tuple[dict[str, Any], int]]],
    position: int | None,
) -> tuple[dict[str, Any], int]:
    """Figures and the projection checkpoint they are as of, read in one snapshot of one
    database (a read replica when one keeps up and shows `position`)."""
    return await request.app.state.reads.read(figures_of, position)


@router.get(
    "/institutions/{code}/statistics",
    operation_id="get_institution_statistics",
    response_model=StatisticsOut,
    responses=problem_responses(401, 404, 422, 503),
    description=STATISTICS_DOC,
)
async def get_institution_statistics(
    code: CodePath,
    request: Request,
    principal: CurrentPrincipal,
    institutions: Institutions,
    from_on: FromParam = None,
    to: ToParam = None,
    period: PeriodParam = None,
    rollup: RollupParam = True,
    position: ConsistencyPosition = None,
) -> dict[str, Any]:
    today = shanghai_today()
    await _visible(principal, code, institutions)
    first, last = _range(from_on, to, period, today)
    counted = await institutions.subtree(code) if rollup else [code]

    figures, checkpoint = await _with_checkpoint(
        request,
        lambda pool: institution_statistics(pool, code, counted, first, last, period, today),
        position,
    )
    return {
        "institution": code,
        "rollup": rollup,
        "institutions": counted,
        "from": first,
        "to": last,
        "period": period,
        "as_of": today,
        "checkpoint": checkpoint,
        **figures,
    }


@router.get(
    "/institutions/{code}/statistics.csv",
    operation_id="get_institution_statistics_csv",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "CSV (UTF-8, header row): institution, institution_name, rollup, "
            "period, from, to, then every figure in the order of the JSON answer's `figures`, "
            "the groups flattened: ..., handling_days_p90, attributed, third_party, "
            "rectification_open, rectification_closed, rectification_overdue, "
            "follow_up_reached, follow_up_satisfied, follow_up_basically_satisfied, "
            "follow_up_dissatisfied.",
        },
        **problem_responses(401, 404, 422, 503),
    },
)
async def get_institution_statistics_csv(
    code: CodePath,
    request: Request,
    principal: CurrentPrincipal,
    institutions: Institutions,
    from_on: FromParam = None,
    to: ToParam = None,
    period: PeriodParam = None,
    rollup: RollupParam = True,
    position: ConsistencyPosition = None,
) -> Response:
    """The regulator's data return as CSV: one row per institution of the subtree and period,
    with every figure of `GET /v1/institutions/{code}/statistics` (no breakdowns). Each row
    counts that institution's subtree (`rollup=true`, the default) or the node alone."""
    today = shanghai_today()
    await _visible(principal, code, institutions)
    first, last = _range(from_on, to, period, today)
    text = await request.app.state.reads.read(
        lambda pool: statistics_csv(pool, code, first, last, period, today, rollup), position
    )
    filename = f"statistics-{code}-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


STAFF_STATISTICS_READERS = frozenset({Role.SUPERVISOR, Role.ADMIN})


@router.get(
    "/institutions/{code}/staff-statistics",
    operation_id="get_institution_staff_statistics",
    response_model=StaffStatisticsOut,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_institution_staff_statistics(
    code: CodePath,
    request: Request,
    principal: CurrentPrincipal,
    institutions: Institutions,
    from_on: FromParam = None,
    to: ToParam = None,
    position: ConsistencyPosition = None,
) -> dict[str, Any]:
    """Staff figures for appraisal (DOMAIN.md "Staff figures", Art. 27) over the institution's
    subtree: per handler, cases decided and on time (by decision notice date), reviews that
    changed their decision (by review decision date) and the follow-ups' satisfaction (by
    follow-up date); per staff member named in complaints, the complaints naming them (by receipt
    date) and those upheld in whole or in part (by decision date). Supervisors of the subtree
    and admins only (404 outside the caller's subtree, whatever the role; 403 for another role
    where the caller sees the institution)."""
    today = shanghai_today()
    await _visible(principal, code, institutions)
    check_role(principal, STAFF_STATISTICS_READERS)
    first, last = _range(from_on, to, None, today)
    counted = await institutions.subtree(code)

    figures, checkpoint = await _with_checkpoint(
        request, lambda pool: staff_statistics(pool, counted, first, last), position
    )
    return {
        "institution": code,
        "institutions": counted,
        "from": first,
        "to": last,
        "checkpoint": checkpoint,
        **figures,
    }


@router.get(
    "/projections",
    operation_id="list_projections",
    response_model=ProjectionsOut,
    responses=problem_responses(401, 403, 503),
)
async def list_projections(
    request: Request,
    principal: FeedReader,
) -> dict[str, Any]:
    """How far each projection that follows the event feed (the statistics, the alerts) is
    behind it, and where its one active runner is (only one runs across every API process and
    host). Regulators and admins only: the feed's head tells how busy every institution is
    together."""
    runners = getattr(request.app.state, "projection_runners", {})
    pool = request.app.state.pool
    return {
        "projections": [
            {"name": name, **await projection_lag(pool, name, runners.get(name))}
            for name in FEED_PROJECTIONS
        ]
    }


async def _visible(principal: Principal, code: str, institutions: InstitutionDirectory) -> None:
    if not await can_see(principal, code, institutions) or await institutions.get(code) is None:
        raise not_found("institution")


def _range(
    from_on: date | None, to: date | None, period: PeriodKind | None, today: date
) -> tuple[date, date]:
    last = to or min(today, LAST_DAY)
    first = from_on or date(last.year, 1, 1)
    if first > last:
        problem = FieldProblem(field="from", code="after_to", message="`from` is after `to`")
        raise invalid([problem])
    if count_periods(first, last, period) > MAX_PERIODS:
        problem = FieldProblem(
            field="period",
            code="too_many_periods",
            message=f"at most {MAX_PERIODS} periods in one answer: narrow the range",
        )
        raise invalid([problem])
    return first, last
