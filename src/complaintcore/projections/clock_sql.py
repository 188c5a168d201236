"""The SQL mirrors of the clock rules the domain owns, each beside the domain function it mirrors.

The domain states the rules (DOMAIN.md "Deadlines" and "Lifecycle"), as pure functions:

- `domain.deadlines.handling_clock_reading` (which `clock_status` reads a case's state with):
  the handling clock's status as of today: met, missed, stopped, paused, overdue, due soon or
  on track;
- `domain.deadlines.review_clock_status`: the review's own clock (Art. 20);
- `domain.state.is_closed`: whether a case is closed as of today;
- `domain.state.action_status`: a rectification action open, closed or overdue as of today.

Queries that select or count cases by these cannot fold every case, so they ask the same of the
projections' rows in SQL, and this module is the only place that SQL is written: the case list
and the deadline queries (projections/case_queries.py) filter `case_view` rows by clock status,
the statistics (projections/statistics/query_sql.py) count the `case_statistics` rows open and
overdue now. Each function below names the domain function it mirrors; the two tables keep the
same facts of a clock under their own columns (`ClockColumns`).

tests/integration/projections/test_clock_sql.py holds them together: it generates cases through
the domain's commands (receipts, extensions, pauses, restarts, decisions, reviews, withdrawals,
declines, merges) and days of judgement, writes the cases' real rows to PostgreSQL and checks
that every condition here selects exactly the rows whose domain reading matches.
"""

from collections.abc import Callable
from dataclasses import dataclass

from complaintcore.domain.deadlines import ClockStatus
from complaintcore.domain.state import TERMINAL, CaseStatus

CLOCK_STATUSES = tuple(status.value for status in ClockStatus)

# The SQL of a day, given only when a condition needs it (so that a query built parameter by
# parameter takes only the parameters it uses).
Day = Callable[[], str]
# `handling_clock_is` or `review_clock_is`: (status, columns, today, soon) to conditions
ClockReadingSql = Callable[[str, "ClockColumns", Day, Day], list[str]]


@dataclass(frozen=True)
class ClockColumns:
    """Where a projection's rows keep a case's clock: SQL expressions, alias included."""

    status: str
    due_on: str
    decided_on: str
    on_time: str
    stopped_on: str
    paused: str  # true while the handling clock is paused (asked only of a running clock)
    not_paused: str
    review_due_on: str
    review_window_ends_on: str


def case_view_columns(alias: str = "") -> ClockColumns:
    """The case list's rows (projections/case_view.py): the open pause's start is kept."""
    a = f"{alias}." if alias else ""
    return _columns(a, paused=f"{a}paused_since IS NOT NULL", not_paused=f"{a}paused_since IS NULL")


def statistics_columns(alias: str = "f") -> ClockColumns:
    """The statistics facts rows (projections/statistics/facts.py): whether paused is kept."""
    a = f"{alias}." if alias else ""
    return _columns(a, paused=f"{a}paused_now", not_paused=f"NOT {a}paused_now")


def _columns(a: str, *, paused: str, not_paused: str) -> ClockColumns:
    """Both tables name the clock's dates alike (`a`: the alias and its dot, or nothing)."""
    return ClockColumns(
        status=f"{a}status",
        due_on=f"{a}due_on",
        decided_on=f"{a}decided_on",
        on_time=f"{a}on_time",
        stopped_on=f"{a}clock_stopped_on",
        paused=paused,
        not_paused=not_paused,
        review_due_on=f"{a}review_due_on",
        review_window_ends_on=f"{a}review_window_ends_on",
    )


CASE_VIEW = case_view_columns()


# --- the handling clock: mirrors domain.deadlines.handling_clock_reading ---------------------


def running(columns: ClockColumns = CASE_VIEW) -> tuple[str, str]:
    """The handling clock is neither met, missed nor stopped (it runs, or is paused): each
    condition apart, so that a query asking for one twice (a clock status of an open clock, in
    the deadline query of open clocks) can say it once: PostgreSQL counts a repeated condition's
    selectivity twice and, thinking almost no row is left, sorts instead of reading in order."""
    return (f"{columns.decided_on} IS NULL", f"{columns.stopped_on} IS NULL")


def handling_clock_is(status: str, columns: ClockColumns, today: Day, soon: Day) -> list[str]:
    """Conditions (to join with AND) selecting the rows whose handling clock reads `status` as
    of today; mirrors `domain.deadlines.handling_clock_reading`. `today()` is the SQL of today,
    `soon()` of today + the policy's `due_soon_days`; each is asked for only when needed."""
    c = columns
    if status == ClockStatus.MET:
        return [f"{c.decided_on} IS NOT NULL", c.on_time]
    if status == ClockStatus.MISSED:
        return [f"{c.decided_on} IS NOT NULL", f"NOT {c.on_time}"]
    if status == ClockStatus.STOPPED:
        return [f"{c.decided_on} IS NULL", f"{c.stopped_on} IS NOT NULL"]
    if status == ClockStatus.PAUSED:
        return [*running(c), c.paused]
    if status == ClockStatus.OVERDUE:
        return [*running(c), c.not_paused, f"{c.due_on} < {today()}"]
    if status == ClockStatus.DUE_SOON:
        return [*running(c), c.not_paused, f"{c.due_on} BETWEEN {today()} AND {soon()}"]
    if status == ClockStatus.ON_TRACK:
        return [*running(c), c.not_paused, f"{c.due_on} > {soon()}"]
    raise ValueError(f"unknown clock status {status!r}")


# --- the review's clock: mirrors domain.deadlines.review_clock_status -------------------------


# the statuses a review's clock reads while it runs (the case is under review)
RUNNING_REVIEW_STATUSES = (ClockStatus.ON_TRACK, ClockStatus.DUE_SOON, ClockStatus.OVERDUE)


def review_clock_is(status: str, columns: ClockColumns, today: Day, soon: Day) -> list[str]:
    """Conditions (to join with AND) selecting the rows whose review clock runs (under review:
    requested, not yet decided, not withdrawn) and reads `status` (one of
    `RUNNING_REVIEW_STATUSES`) as of today; mirrors `domain.deadlines.review_clock_status`."""
    under_review = f"{columns.status} = '{CaseStatus.UNDER_REVIEW}'"
    due_on = columns.review_due_on
    if status == ClockStatus.OVERDUE:
        return [under_review, f"{due_on} < {today()}"]
    if status == ClockStatus.DUE_SOON:
        return [under_review, f"{due_on} BETWEEN {today()} AND {soon()}"]
    if status == ClockStatus.ON_TRACK:
        return [under_review, f"{due_on} > {soon()}"]
    raise ValueError(f"not a running review clock's status: {status!r}")


def review_overdue(columns: ClockColumns, today: str) -> str:
    """The review's clock reads overdue as of `today` (SQL)."""
    return " AND ".join(review_clock_is(ClockStatus.OVERDUE, columns, lambda: today, lambda: today))


def overdue(columns: ClockColumns, today: str) -> str:
    """The handling clock or the review's reads overdue as of `today` (the statistics'
    `overdue_now`)."""
    handling = " AND ".join(
        handling_clock_is(ClockStatus.OVERDUE, columns, lambda: today, lambda: today)
    )
    return f"(({handling}) OR ({review_overdue(columns, today)}))"


# --- open or closed: mirrors domain.state.is_closed ------------------------------------------


def _statuses(statuses: list[CaseStatus]) -> str:
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"


_TERMINAL = _statuses([status for status in CaseStatus if status in TERMINAL])
# Open whatever the day: neither terminal nor decided (before the decision, or under review).
_OPEN_UNTIL_DECIDED = _statuses(
    [status for status in CaseStatus if status not in TERMINAL and status != CaseStatus.DECIDED]
)


def is_open(columns: ClockColumns, today: str) -> str:
    """Open as of `today` (SQL); mirrors `not domain.state.is_closed(state, today)`: neither
    withdrawn, declined, merged nor review-decided, nor decided with the review window passed
    (or with none, when the deciding node has no superior)."""
    c = columns
    return (
        f"NOT ({c.status} IN {_TERMINAL} OR ({c.status} = '{CaseStatus.DECIDED}'"
        f" AND ({c.review_window_ends_on} IS NULL OR {today} > {c.review_window_ends_on})))"
    )


def is_open_indexed(columns: ClockColumns, today: str) -> str:
    """The rows `is_open` selects, in the form the statistics facts' partial indexes serve
    (migration 0005: `case_statistics_open` on the statuses open whatever the day,
    `case_statistics_review_window` on the decided cases by review window)."""
    c = columns
    return (
        f"({c.status} IN {_OPEN_UNTIL_DECIDED}"
        f" OR ({c.status} = '{CaseStatus.DECIDED}' AND {c.review_window_ends_on} >= {today}))"
    )


# --- a rectification action's status: mirrors domain.state.action_status --------------------


def action_status(due_on: str, closed_on: str, today: str) -> str:
    """A rectification action's status as of `today` (SQL of its due and done dates and of the
    day: 'open', 'closed' or 'overdue'); mirrors `domain.state.action_status`: closed once its
    done date has come, overdue when past its due date and not closed by then, else open. The
    statistics' `rectification` counts actions by it (tests/integration/projections/
    test_clock_sql.py holds the two equal)."""
    return (
        f"CASE WHEN {closed_on} IS NOT NULL AND {closed_on} <= {today} THEN 'closed'"
        f" WHEN {today} > {due_on} THEN 'overdue' ELSE 'open' END"
    )
