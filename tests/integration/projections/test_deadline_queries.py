"""The deadline queries read each institution's soonest open clocks apart and merge them: paged
through, they give exactly the open clocks the filter asks for, soonest first."""

from datetime import date, timedelta

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaintcore.domain.policy import DueSoonDays
from complaintcore.projections.case_queries import CaseFilter, cases_by_due_date, clock_reading
from testsupport import examples

TODAY = date(2026, 3, 16)
DUE_SOON_DAYS = 3
INSTITUTIONS = ("BR-A", "BR-B", "SUB-A1", "SUB-A2")

_INSERT = """
INSERT INTO case_view (case_id, registration_no, version, status, respondent_institution,
    channel, category_business, category_reason, major, received_on, last_business_date, due_on,
    level, paused_days, paused_since, clock_stopped_on, decided_on, on_time, complainant)
VALUES ($1, $1, 1, $2, $3, 'phone', 'credit_card', 'pricing_and_fees', false, $4, $4, $5,
    0, 0, $6, $7, $8, $9, '{}'::jsonb)
"""

# A case's clock: running, paused, stopped (withdrawn), or decided on time or late.
clocks = st.sampled_from(("running", "running", "running", "paused", "stopped", "decided"))
cases = st.lists(
    st.tuples(st.sampled_from(INSTITUTIONS), st.integers(-20, 20), clocks), max_size=40
)
filters = st.fixed_dictionaries(
    {
        "institutions": st.one_of(
            st.none(), st.lists(st.sampled_from(INSTITUTIONS), min_size=1, unique=True)
        ),
        "clock": st.sampled_from((None, "overdue", "due_soon", "on_track", "paused")),
        "due_within_days": st.one_of(st.none(), st.integers(0, 10)),
    }
)


async def insert_cases(connection: asyncpg.Connection, drawn: list[tuple[str, int, str]]) -> None:
    for number, (institution, due_in_days, clock) in enumerate(drawn):
        due_on = TODAY + timedelta(days=due_in_days)
        received_on = due_on - timedelta(days=15)
        await connection.execute(
            _INSERT,
            f"00000000-0000-4000-8000-{number:012d}",  # as case ids are written
            "decided" if clock == "decided" else "assigned",
            institution,
            received_on,
            due_on,
            received_on + timedelta(days=2) if clock == "paused" else None,
            received_on + timedelta(days=3) if clock in ("stopped", "decided") else None,
            received_on + timedelta(days=3) if clock == "decided" else None,
            True if clock == "decided" else None,
        )


def expected(rows: list[dict], case_filter: CaseFilter, due_soon: DueSoonDays) -> list[str]:
    """The open clocks the filter asks for, by the definitions, soonest due first."""
    chosen = [row for row in rows if _asked_for(row, case_filter, due_soon)]
    return [row["case_id"] for row in sorted(chosen, key=lambda r: (r["due_on"], r["case_id"]))]


def _asked_for(row: dict, case_filter: CaseFilter, due_soon: DueSoonDays) -> bool:
    institutions, clock, within = (
        case_filter.institutions,
        case_filter.clock,
        case_filter.due_within_days,
    )
    return (
        row["decided_on"] is None
        and row["clock_stopped_on"] is None
        and (institutions is None or row["respondent_institution"] in institutions)
        and (clock is None or _clock(row, due_soon) == clock)
        and (within is None or _days_left(row, due_soon) <= within)
    )


def _days_left(row: dict, due_soon: DueSoonDays) -> int:
    """Days left by the domain's rule: frozen at the pause's start while paused."""
    days_left = clock_reading(row, TODAY, due_soon.of(row["respondent_institution"])).days_left
    assert days_left is not None, "an open clock has days left"
    return days_left


def _clock(row: dict, due_soon: DueSoonDays) -> str:
    """The row's clock status by the domain's rule, under its own institution's days."""
    return clock_reading(row, TODAY, due_soon.of(row["respondent_institution"])).status


async def every_page(
    pool: asyncpg.Pool, case_filter: CaseFilter, limit: int, due_soon: DueSoonDays
) -> list[str]:
    found, cursor = [], None
    while True:
        rows, cursor = await cases_by_due_date(pool, case_filter, TODAY, due_soon, limit, cursor)
        assert len(rows) <= limit
        found.extend(row["case_id"] for row in rows)
        if cursor is None:
            return found


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    drawn=cases,
    filter_fields=filters,
    limit=st.integers(1, 7),
    own_days=st.dictionaries(st.sampled_from(INSTITUTIONS), st.integers(0, 10)),
)
async def test_pages_of_open_clocks_hold_each_asked_for_case_once_soonest_first(
    pool: asyncpg.Pool,
    drawn: list[tuple[str, int, str]],
    filter_fields: dict,
    limit: int,
    own_days: dict[str, int],
) -> None:
    """Each institution's `due_soon_days` its own (`own_days`; the others the default's)."""
    case_filter = CaseFilter(**filter_fields)
    due_soon = DueSoonDays(DUE_SOON_DAYS, own_days)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("DELETE FROM case_view")
        await insert_cases(connection, drawn)
    rows = [dict(row) for row in await pool.fetch("SELECT * FROM case_view")]

    assert await every_page(pool, case_filter, limit, due_soon) == expected(
        rows, case_filter, due_soon
    )


async def test_a_head_office_overdue_page_reads_only_each_branch_first_clocks(
    pool: asyncpg.Pool,
) -> None:
    # 400 overdue clocks in one branch: a page of 5 for the whole tree reads at most 6 index
    # entries per institution (the page and one more), not all 400 of them.
    async with pool.acquire() as connection, connection.transaction():
        await insert_cases(connection, [("BR-A", -10 - n % 9, "running") for n in range(400)])
        await connection.execute("ANALYZE case_view")
    case_filter = CaseFilter(institutions=list(INSTITUTIONS), clock="overdue")
    async with pool.acquire() as connection:
        await connection.execute("SET enable_seqscan = off")  # a 400-row table: plan as if big
        plan = await _plan_of_first_page(connection, case_filter)
    scans = [line for line in plan if "Index Scan" in line]
    assert scans and all("case_view_running_clock_due" in line for line in scans), plan
    assert all(_actual_rows(line) <= 6 for line in scans), plan


async def _plan_of_first_page(connection: asyncpg.Connection, case_filter: CaseFilter) -> list[str]:
    statements: list[tuple[str, tuple]] = []

    class Recorder:
        async def fetch(self, statement: str, *arguments: object) -> list:
            statements.append((statement, arguments))
            return []

    await cases_by_due_date(Recorder(), case_filter, TODAY, DueSoonDays(DUE_SOON_DAYS), 5, None)  # type: ignore[arg-type]
    statement, arguments = statements[0]
    rows = await connection.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) {statement}", *arguments)
    return [row[0] for row in rows]


def _actual_rows(plan_line: str) -> float:
    """Rows per loop (PostgreSQL 18 shows them with two decimals, earlier versions without)."""
    return float(plan_line.split("rows=")[-1].split()[0])
