"""`/v1/calendars/{year}`: the PRC holiday calendar behind the regulator's 7 working days (Art. 33).

A year is effective when it is stored (loaded through this route or `complaintcore calendar
load`) or seeded from the `chinesecalendar` package; a stored year replaces the seed's.
"""

import re
from datetime import date
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from complaintcore.api.auth import AdminPrincipal, CurrentPrincipal
from complaintcore.api.deps import Calendars
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import FieldProblem, Problem, invalid, problem_responses
from complaintcore.api.response_headers import location_header
from complaintcore.application.requests.fields import IsoDate
from complaintcore.domain.calendar import YearCalendar, year_calendar_problems
from complaintcore.reference.calendars import FIRST_YEAR, LAST_YEAR, CalendarYearMissing

log = structlog.get_logger("complaintcore.api.calendars")

router = APIRouter(prefix="/v1/calendars", tags=["calendars"], route_class=ExactJsonRoute)


def _canonical_year(value: object) -> object:
    """Only the year as written, four digits: `00002026` or `+2026` would be read as 2026."""
    if isinstance(value, str) and not _FOUR_DIGIT_YEAR.fullmatch(value):
        raise PydanticCustomError("year_format", "expected a year of four digits, e.g. 2027")
    return value


_FOUR_DIGIT_YEAR = re.compile(r"[1-9][0-9]{3}")
YearPath = Annotated[
    int,
    BeforeValidator(_canonical_year),
    Path(
        ge=FIRST_YEAR,
        le=LAST_YEAR,
        description=f"The calendar year, {FIRST_YEAR} to {LAST_YEAR}.",
        examples=[2027],
    ),
]


class CalendarYearBody(BaseModel):
    """One year of the State Council's holiday arrangement (国务院办公厅部分节假日安排)."""

    model_config = ConfigDict(extra="forbid")

    holidays: list[IsoDate] = Field(
        max_length=366,
        description="Every day of the announced holiday periods (放假), weekend days inside a "
        "period included, all in the path's year.",
    )
    adjusted_working_days: list[IsoDate] = Field(
        max_length=366,
        description="The Saturdays and Sundays made working days (调休上班), in the path's year.",
    )


class CalendarYearView(BaseModel):
    """The effective calendar of one year."""

    year: int = Field(description="The calendar year.")
    holidays: list[date] = Field(description="The holiday days, in date order.")
    adjusted_working_days: list[date] = Field(
        description="The weekend days made working days, in date order."
    )
    source: Literal["stored", "seeded"] = Field(
        description="`stored` when loaded into this service, `seeded` when it comes from the "
        "`chinesecalendar` package shipped with it."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2025,
                    "holidays": ["2025-01-01", "2025-01-28", "2025-01-29"],
                    "adjusted_working_days": ["2025-01-26", "2025-02-08"],
                    "source": "seeded",
                }
            ]
        }
    )

    @classmethod
    def of(
        cls, year_calendar: YearCalendar, source: Literal["stored", "seeded"]
    ) -> "CalendarYearView":
        return cls(
            year=year_calendar.year,
            holidays=sorted(year_calendar.holidays),
            adjusted_working_days=sorted(year_calendar.adjusted_working_days),
            source=source,
        )


CALENDAR_BODY_EXAMPLES: dict[str, Any] = {
    "new_year_and_spring_festival": {
        "summary": "Part of a year: New Year's Day and the Spring Festival with its 调休",
        "value": {
            "holidays": [
                "2027-01-01",
                "2027-02-06",
                "2027-02-07",
                "2027-02-08",
                "2027-02-09",
                "2027-02-10",
                "2027-02-11",
                "2027-02-12",
            ],
            "adjusted_working_days": ["2027-02-14", "2027-02-20"],
        },
    }
}


@router.put(
    "/{year}",
    operation_id="put_calendar_year",
    response_model=CalendarYearView,
    response_description="The year replaced the calendar it had.",
    responses={
        201: {
            "model": CalendarYearView,
            "description": "The year had no calendar before.",
            "headers": location_header("The year's calendar: `/v1/calendars/{year}`."),
        },
        **problem_responses(401, 403, 422, 503),
    },
)
async def put_calendar_year(
    year: YearPath,
    body: Annotated[CalendarYearBody, Body(openapi_examples=CALENDAR_BODY_EXAMPLES)],
    admin: AdminPrincipal,
    calendars: Calendars,
    response: Response,
) -> CalendarYearView:
    """Load one year's holidays and adjusted working days. Admin only.

    The year replaces any stored or seeded data for it, whole. 201 when the year had no calendar
    at all before, 200 when it replaces one. Every date must lie in the year, appear once and not
    in both lists, and an adjusted working day must be a Saturday or Sunday; each bad item is
    listed in the 422 answer.
    """
    problems = calendar_body_problems(year, body)
    if problems:
        raise invalid(problems)
    year_calendar = YearCalendar(
        year, frozenset(body.holidays), frozenset(body.adjusted_working_days)
    )
    if await calendars.store_year(year_calendar):
        response.status_code = 201
        response.headers["Location"] = f"{router.prefix}/{year}"
    log.info("calendar year stored", year=year, actor=admin.id)
    return CalendarYearView.of(year_calendar, "stored")


@router.get(
    "/{year}",
    operation_id="get_calendar_year",
    response_model=CalendarYearView,
    response_description="The year's effective calendar.",
    responses=problem_responses(
        401,
        404,
        422,
        503,
        descriptions={404: "No calendar for the year (`calendar_year_missing`)."},
    ),
)
async def get_calendar_year(
    year: YearPath, principal: CurrentPrincipal, calendars: Calendars
) -> CalendarYearView:
    """The effective calendar of a year: stored if loaded, else seeded.

    404 `calendar_year_missing` when neither has the year: working days are then unknown, and the
    service refuses to guess them.
    """
    try:
        year_calendar, source = await calendars.effective_year(year)
    except CalendarYearMissing:
        raise Problem(
            404,
            "calendar_year_missing",
            "Calendar year missing",
            f"No holiday calendar is loaded for {year}.",
        ) from None
    return CalendarYearView.of(year_calendar, source)


def calendar_body_problems(year: int, body: CalendarYearBody) -> list[FieldProblem]:
    """Every item of the body that does not fit the year, one entry each."""
    return [
        FieldProblem(field=problem.field, code=problem.code, message=problem.message)
        for problem in year_calendar_problems(year, body.holidays, body.adjusted_working_days)
    ]
