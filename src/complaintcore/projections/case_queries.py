"""Reads of the case-state projection: the case list and the deadline queries.

Clock status depends on today, so it is computed at query time from the stored dates (the rows
never hold a status that could go stale): for a row read, by the domain's own rule
(`domain.deadlines.handling_clock_reading`, in `clock_reading`); for the rows a filter selects,
by its SQL mirror (projections/clock_sql.py, held to the domain's rule by
tests/integration/projections/test_clock_sql.py).
"""

import base64
import binascii
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from complaintcore.domain.deadlines import handling_clock_reading
from complaintcore.domain.policy import DueSoonDays
from complaintcore.projections import clock_sql
from complaintcore.projections.clock_sql import CLOCK_STATUSES as CLOCK_STATUSES

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CASE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True)
class CaseFilter:
    institutions: list[str] | None = None  # None: every institution
    status: str | None = None
    clock: str | None = None
    review_clock: str | None = None  # the review's own clock, for cases under review
    major: bool | None = None
    received_from: date | None = None
    received_to: date | None = None
    category: str | None = None
    due_within_days: int | None = None


@dataclass(frozen=True)
class ClockFromRow:
    status: str
    days_left: int | None


def clock_reading(
    row: dict[str, Any] | asyncpg.Record, today: date, due_soon_days: int
) -> ClockFromRow:
    """The handling clock of a case_view row as of `today`, by the domain's rule (a call per
    row of a page: a handful of field reads, no state to build)."""
    reading = handling_clock_reading(
        due_on=row["due_on"],
        decided_on=row["decided_on"],
        on_time=row["on_time"],
        stopped_on=row["clock_stopped_on"],
        paused_since=row["paused_since"],
        today=today,
        due_soon_days=due_soon_days,
    )
    return ClockFromRow(reading.status.value, reading.days_left)


def _clock_conditions(
    clock: str,
    query: "_Query",
    today: date,
    due_soon_days: DueSoonDays,
    reading: clock_sql.ClockReadingSql = clock_sql.handling_clock_is,
) -> list[str]:
    """SQL for one status of the clock `reading` reads (the handling clock, or the review's:
    projections/clock_sql.py), adding only the parameters that status needs; `soon` is each
    row's institution's (one parameter while all share it)."""

    def soon() -> str:
        default = query.param(today + timedelta(days=due_soon_days.default))
        others = due_soon_days.others()
        if not others:
            return default
        cases = " ".join(
            f"WHEN respondent_institution = ANY({query.param(codes)}::text[])"
            f" THEN {query.param(today + timedelta(days=days))}::date"
            for days, codes in others.items()
        )
        return f"(CASE {cases} ELSE {default}::date END)"

    return reading(clock, clock_sql.CASE_VIEW, today=lambda: query.param(today), soon=soon)


class _Query:
    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def where(self, *conditions: str) -> None:
        self.conditions.extend(c for c in conditions if c not in self.conditions)


def encode_cursor(list_name: str, values: tuple[str, str]) -> str:
    """An opaque cursor of the list `list_name` pointing after the row of sort key `values`.
    The name is in it so that a list refuses another's cursor (a cursor of the case list took
    the deadlines to an unrelated due date: found by a review pass)."""
    return base64.urlsafe_b64encode(orjson.dumps([list_name, *values])).decode().rstrip("=")


def decode_cursor(list_name: str, cursor: str) -> tuple[str, str]:
    """The two values of a cursor `encode_cursor(list_name, ...)` wrote, else `InvalidCursor`."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as error:
        raise InvalidCursor("the cursor is not one this service gave out") from error
    if not (
        isinstance(values, list)
        and len(values) == 3
        and all(isinstance(v, str) for v in values)
        and values[0] == list_name
    ):
        raise InvalidCursor("the cursor is not one this service gave out")
    return values[1], values[2]


_NOT_OURS = "the cursor is not one this service gave out"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ROW_ID = re.compile(r"[1-9][0-9]{0,18}")
_BIGINT_MAX = 2**63 - 1
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def cursor_instant(text: str) -> datetime:
    """A cursor's timestamp as the service writes it (ISO 8601 with its offset, a plausible
    year), or `InvalidCursor`: never a value the database would refuse."""
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidCursor(_NOT_OURS) from None
    if _CONTROL.search(text) or at.tzinfo is None or not 1900 <= at.year <= 2200:
        raise InvalidCursor(_NOT_OURS)
    return at


def cursor_row_id(text: str) -> int:
    """A cursor's row id (a positive bigint, in decimal as written), or `InvalidCursor`."""
    if not _ROW_ID.fullmatch(text) or int(text) > _BIGINT_MAX:
        raise InvalidCursor(_NOT_OURS)
    return int(text)


def cursor_uuid(text: str) -> str:
    """A cursor's UUID (lower-case and hyphenated, as written), or `InvalidCursor`."""
    if not _UUID.fullmatch(text):
        raise InvalidCursor(_NOT_OURS)
    return text


def _filtered(case_filter: CaseFilter, today: date, due_soon_days: DueSoonDays) -> _Query:
    query = _Query()
    if case_filter.institutions is not None:
        query.where(f"respondent_institution = ANY({query.param(case_filter.institutions)})")
    if case_filter.status:
        query.where(f"status = {query.param(case_filter.status)}")
    if case_filter.major is not None:
        query.where(f"major = {query.param(case_filter.major)}")
    if case_filter.received_from:
        query.where(f"received_on >= {query.param(case_filter.received_from)}")
    if case_filter.received_to:
        query.where(f"received_on <= {query.param(case_filter.received_to)}")
    if case_filter.category:
        query.where(f"category_business = {query.param(case_filter.category)}")
    if case_filter.clock:
        query.where(*_clock_conditions(case_filter.clock, query, today, due_soon_days))
    if case_filter.review_clock:
        query.where(
            *_clock_conditions(
                case_filter.review_clock, query, today, due_soon_days, clock_sql.review_clock_is
            )
        )
    if case_filter.due_within_days is not None:
        query.where(_due_within(case_filter.due_within_days, query, today))
    return query


def _due_within(days: int, query: _Query, today: date) -> str:
    """Cases with `days` or fewer left, as the case document counts them
    (`domain.deadlines.handling_clock_reading`): a paused clock by the days left frozen at its
    pause's start, not by the due date it had then (a case paused with 14 days left is not due
    within 0 days because the pause began past its old due date)."""
    last_day = query.param(today + timedelta(days=days))
    return (
        f"(paused_since IS NULL AND due_on <= {last_day}"
        f" OR paused_since IS NOT NULL AND due_on - paused_since <= {query.param(days)})"
    )


async def list_cases(
    pool: asyncpg.Pool,
    case_filter: CaseFilter,
    today: date,
    due_soon_days: DueSoonDays,
    limit: int,
    cursor: str | None,
) -> tuple[list[asyncpg.Record], str | None]:
    """Newest receipts first, keyset-paginated on (received_on, case_id)."""
    query = _filtered(case_filter, today, due_soon_days)
    return await _page(pool, query, COMPLAINTS_LIST, limit, cursor)


async def cases_by_due_date(
    pool: asyncpg.Pool,
    case_filter: CaseFilter,
    today: date,
    due_soon_days: DueSoonDays,
    limit: int,
    cursor: str | None,
) -> tuple[list[asyncpg.Record], str | None]:
    """Open handling clocks, soonest due first, keyset-paginated on (due_on, case_id).

    Each institution's soonest are read apart, in the order of the open clocks' index on
    (institution, due_on, case_id), and merged: the work grows with the number of institutions
    asked for, never with the number of open clocks. (One scan in due order over every
    institution walks all the others' clocks when the asker's branch has few; one over the
    asker's institutions then sorted reads all their clocks: 20,000 overdue ones for a head
    office of the bench.)"""
    query = _filtered(replace(case_filter, institutions=None), today, due_soon_days)
    query.where(*clock_sql.running(clock_sql.CASE_VIEW))
    if case_filter.institutions is None:
        return await _page(pool, query, DEADLINES_LIST, limit, cursor)
    institutions = query.param(case_filter.institutions)
    query.where("respondent_institution = institution.code")
    per_institution = f"(SELECT DISTINCT unnest({institutions}::text[])) AS institution(code)"
    return await _page(pool, query, DEADLINES_LIST, limit, cursor, per_institution)


@dataclass(frozen=True)
class _DatedList:
    """A list of cases paged on (a date column, case id): its cursors' name and its order."""

    name: str
    key_column: str
    descending: bool


COMPLAINTS_LIST = _DatedList("complaints", "received_on", descending=True)
DEADLINES_LIST = _DatedList("deadlines", "due_on", descending=False)


async def _page(
    pool: asyncpg.Pool,
    query: _Query,
    listed: _DatedList,
    limit: int,
    cursor: str | None,
    per_institution: str | None = None,
) -> tuple[list[asyncpg.Record], str | None]:
    """A page of the rows the query selects; with `per_institution` (a FROM item naming
    `institution.code`), the first rows of each institution on its own, merged."""
    key_column = listed.key_column
    direction, after = ("DESC", "<") if listed.descending else ("ASC", ">")
    if cursor:
        key, case_id = dated_cursor_position(listed.name, cursor)
        query.where(f"({key_column}, case_id) {after} ({query.param(key)}, {query.param(case_id)})")
    where = " AND ".join(query.conditions) or "TRUE"
    order = f"ORDER BY {key_column} {direction}, case_id {direction} LIMIT {query.param(limit + 1)}"
    select = f"SELECT * FROM case_view WHERE {where} {order}"
    if per_institution is not None:
        select = (
            f"SELECT page.* FROM {per_institution} CROSS JOIN LATERAL ({select}) AS page {order}"
        )
    rows = await pool.fetch(select, *query.params)
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, dated_cursor(listed.name, rows[-1][key_column], rows[-1]["case_id"])


def dated_cursor(list_name: str, day: date, case_id: str) -> str:
    return encode_cursor(list_name, (day.isoformat(), case_id))


def dated_cursor_position(list_name: str, cursor: str) -> tuple[date, str]:
    """The (date, case id) a cursor of `dated_cursor` points after, each checked as strictly as
    a query parameter: a `YYYY-MM-DD` date and a case id as the service writes them (lower-case
    UUID)."""
    key, case_id = decode_cursor(list_name, cursor)
    try:
        position = date.fromisoformat(key)
    except ValueError as error:
        raise InvalidCursor("the cursor is not one this service gave out") from error
    if not _ISO_DATE.fullmatch(key) or not _CASE_ID.fullmatch(case_id):
        raise InvalidCursor("the cursor is not one this service gave out")
    return position, case_id
