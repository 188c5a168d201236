"""The one declaration of which date each statistic counts on (projections/statistics/dating.py)
reads the same in Python (the bucket writer) and in SQL (the query builder): on any facts rows,
PostgreSQL's sums of the SQL reading equal the Python reading's, figure by figure and day by day.
"""

from collections import Counter
from datetime import date, timedelta
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaintcore.projections.statistics import TABLE, buckets, dating
from complaintcore.projections.statistics.facts import COLUMNS, upsert_sql
from testsupport import examples

DAY = date(2026, 1, 1)
days = st.integers(0, 5).map(lambda n: DAY + timedelta(days=n))
maybe_days = st.none() | days
maybe_flags = st.none() | st.booleans()

# Any combination of the columns, possible or not: the two readings must agree on all of them.
_GIVEN: dict[str, Any] = {
    "version": st.just(1),
    "respondent_institution": st.just("SB-1"),
    "channel": st.just("phone"),
    "category_business": st.just("credit_card"),
    "category_reason": st.just("pricing_and_fees"),
    "major": st.booleans(),
    "status": st.sampled_from(("received", "decided", "merged")),
    "received_on": days,
    "due_on": days,
    "paused_now": st.booleans(),
    "decision_outcome": st.none(),
    "final_outcome": st.none() | st.just("upheld"),
    "on_time": maybe_flags,
    "handling_days": st.none() | st.integers(0, 90),
    "redress_fen": st.none() | st.integers(0, 3),
    "pause_dates": st.lists(days, max_size=2),
    "review_changed": maybe_flags,
    "handler_id": st.none() | st.just("staff-1"),
    "respondent_staff": st.lists(st.sampled_from(("staff-1", "staff-2")), unique=True),
    "root_cause": st.none() | st.just("systems"),
    "responsible_institution": st.none() | st.just("SB-1"),
    "third_party": maybe_flags,
    "action_due_on": st.lists(days, max_size=2),
    "action_closed_on": st.lists(maybe_days, max_size=2),
    "follow_up_reached": maybe_flags,
    "satisfied": maybe_flags,
    "basically_satisfied": maybe_flags,
    "dissatisfied": maybe_flags,
    "actions_closed": st.integers(0, 2),
    "actions_not_closed": st.integers(0, 2),
}


@st.composite
def facts_rows(draw: st.DrawFn, number: int) -> tuple[Any, ...]:
    values = {"case_id": f"case-{number}"}
    for column in COLUMNS[1:]:
        values[column] = draw(_GIVEN.get(column, maybe_days))
    return tuple(values[column] for column in COLUMNS)


rows_lists = st.integers(0, 25).flatmap(
    lambda count: st.tuples(*(facts_rows(number) for number in range(count)))
)


def test_every_bucket_value_but_paused_is_dated_once() -> None:
    figures = [dated.figure for dated in dating.DATED]
    assert sorted(figures) == sorted(set(buckets.MONTHLY_VALUES) - {"paused"})


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=rows_lists)
async def test_the_sql_reading_of_the_dating_sums_what_the_python_reading_does(
    pool: asyncpg.Pool, rows: tuple[tuple[Any, ...], ...]
) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(f"DELETE FROM {TABLE}")
        await connection.executemany(upsert_sql(TABLE), rows)

    in_python: Counter[tuple[str, date]] = Counter()
    for row in rows:
        for figure, on, amount in dating.dated_amounts(row):
            in_python[(figure, on)] += amount

    in_sql: Counter[tuple[str, date]] = Counter()
    for on, values, condition in dating.dated_sql("f"):
        where = f"{on} IS NOT NULL" + (f" AND {condition}" if condition else "")
        sums = ", ".join(f"sum({value})::bigint AS {figure}" for figure, value in values.items())
        for found in await pool.fetch(
            f"SELECT {on} AS on_date, {sums} FROM {TABLE} f WHERE {where} GROUP BY 1"
        ):
            for figure in values:
                if found[figure]:
                    in_sql[(figure, found["on_date"])] += found[figure]

    assert in_sql == in_python
