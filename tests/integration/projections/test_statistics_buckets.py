"""The monthly statistics buckets against the facts rows they sum, and the figures read from them
against the same figures computed by hand from the facts rows.

Random histories go through the command path (those of test_rebuild_equals_live.py); then:
- the buckets the runner kept batch by batch equal the buckets computed afresh from the facts
  rows, and a rebuild swaps in exactly those buckets again;
- for random ranges (whole months or not), period kinds and days of judgement, every figure and
  breakdown the route's query gives equals a plain Python count over the facts rows following
  the dating rules of `statistics.dating` — so answers are the same whether they come from
  buckets, from the facts rows at a range's edges or from both.
"""

import asyncio
import math
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rebuild_equals_live import FIRST_DAY, Step, histories, play
from test_rebuild_resume import DAY, SMALL_BATCHES, InterruptAt, Interrupted, some_cases

from complaintcore.domain.commands import Outcome
from complaintcore.domain.state import action_status
from complaintcore.infra.migrations import alembic_config, upgrade_to_head
from complaintcore.projections import statistics
from complaintcore.projections.rebuild import TARGETS, Rebuilder, RebuildSettings, rebuild
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.statistics import buckets as statistics_buckets
from complaintcore.projections.statistics.periods import (
    RangeParts,
    period_start,
    periods_between,
    range_parts,
    whole_years,
)
from complaintcore.projections.statistics.queries import (
    DIMENSIONS,
    GROUPED_FIGURES,
    institution_statistics,
    zero_figures,
)
from projection_support import CaseDesk, table_rows
from testsupport import examples

# the scan in this process: spawning scan workers for each example is what the partition tests
# cover, and would cost each example two interpreters' start
IN_PROCESS = RebuildSettings(scan_workers=1)
EXAMPLES = settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ALL = ["HO", "BR-A", "BR-B", "SUB-A1"]


async def _catch_up(pool: asyncpg.Pool, database_url: str, history: list) -> None:
    desk = CaseDesk(pool)
    if await pool.fetchval("SELECT count(*) FROM institutions") == 0:
        await desk.plant_tree()
    await play(desk, history)
    # small batches, so the buckets move many times, with cases written again and again
    await ProjectionRunner(database_url, desk.store, batch_size=7).catch_up()


async def _bucket_tables(pool: asyncpg.Pool) -> dict[str, list[dict]]:
    return {table: await table_rows_sorted(pool, table) for table in statistics_buckets.TABLES}


async def table_rows_sorted(pool: asyncpg.Pool, table: str) -> list[dict]:
    rows = await pool.fetch(f"SELECT * FROM {table}")
    return sorted((dict(row) for row in rows), key=lambda row: tuple(map(str, row.values())))


def _as_rows(buckets: statistics_buckets.Buckets) -> dict[str, list[dict]]:
    return {
        table: sorted(
            (dict(zip(columns, record, strict=True)) for record in records),
            key=lambda row: tuple(map(str, row.values())),
        )
        for table, columns, records in statistics_buckets.tables_records(buckets)
    }


@EXAMPLES
@given(history=histories)
async def test_buckets_kept_live_equal_the_sums_of_the_facts_and_the_rebuilt_ones(
    pool: asyncpg.Pool, database_url: str, history: list[tuple[int, list[Step]]]
) -> None:
    await _catch_up(pool, database_url, history)
    live = await _bucket_tables(pool)
    async with pool.acquire() as connection:
        from_scratch = await statistics_buckets.buckets_of_table(connection, statistics.TABLE)
    assert live == _as_rows(from_scratch)
    assert all(row["cases"] > 0 for row in live[statistics_buckets.HANDLING_DAYS])
    facts = await table_rows(pool, statistics.TABLE)
    await rebuild(database_url, ["statistics"], settings=IN_PROCESS)
    assert await table_rows(pool, statistics.TABLE) == facts
    assert await _bucket_tables(pool) == live


def test_whole_years_are_cut_from_a_run_of_months_with_the_months_around_them() -> None:
    d = date
    assert whole_years(d(2025, 1, 1), d(2025, 12, 1)) == ((d(2025, 1, 1), d(2025, 1, 1)), ())
    assert whole_years(d(2024, 11, 1), d(2026, 2, 1)) == (
        (d(2025, 1, 1), d(2025, 1, 1)),
        ((d(2024, 11, 1), d(2024, 12, 1)), (d(2026, 1, 1), d(2026, 2, 1))),
    )
    assert whole_years(d(2024, 1, 1), d(2026, 12, 1)) == ((d(2024, 1, 1), d(2026, 1, 1)), ())
    assert whole_years(d(2025, 2, 1), d(2025, 12, 1)) == (None, ((d(2025, 2, 1), d(2025, 12, 1)),))
    assert whole_years(d(2024, 12, 1), d(2025, 11, 1)) == (
        None,
        ((d(2024, 12, 1), d(2025, 11, 1)),),
    )


def test_a_range_reads_whole_months_from_buckets_and_the_fewer_days_from_facts() -> None:
    d, parts = date, RangeParts
    assert range_parts(d(2025, 1, 1), d(2025, 12, 31)) == parts((d(2025, 1, 1), d(2025, 12, 1)))
    # 12 days of January counted (fewer than the 19 left out), 10 of March (than 21)
    assert range_parts(d(2025, 1, 20), d(2025, 3, 10)) == parts(
        (d(2025, 2, 1), d(2025, 2, 1)),
        added_days=((d(2025, 1, 20), d(2025, 1, 31)), (d(2025, 3, 1), d(2025, 3, 10))),
    )
    # the whole of January but its first 4 days, of March but its last 3
    assert range_parts(d(2025, 1, 5), d(2025, 3, 28)) == parts(
        (d(2025, 1, 1), d(2025, 3, 1)),
        excluded_days=((d(2025, 1, 1), d(2025, 1, 4)), (d(2025, 3, 29), d(2025, 3, 31))),
    )
    assert range_parts(d(2025, 2, 1), d(2025, 2, 27)) == parts(
        (d(2025, 2, 1), d(2025, 2, 1)), excluded_days=((d(2025, 2, 28), d(2025, 2, 28)),)
    )
    assert range_parts(d(2025, 1, 31), d(2025, 2, 1)) == parts(
        None, added_days=((d(2025, 1, 31), d(2025, 1, 31)), (d(2025, 2, 1), d(2025, 2, 1)))
    )
    # up to today: the days after it hold no events yet, the month comes from the buckets
    today = d(2026, 11, 22)
    assert range_parts(d(2026, 1, 1), today, today) == parts(
        (d(2026, 1, 1), d(2026, 11, 1)), excluded_days=((d(2026, 11, 23), d(2026, 11, 30)),)
    )
    assert range_parts(d(2026, 11, 2), today, today) == parts(
        (d(2026, 11, 1), d(2026, 11, 1)),
        excluded_days=((d(2026, 11, 1), d(2026, 11, 1)), (d(2026, 11, 23), d(2026, 11, 30))),
    )


# --- the figures by hand --------------------------------------------------------------------


def _is_open(row: dict, today: date) -> bool:
    if row["status"] in ("withdrawn", "declined", "merged", "review_decided"):
        return False
    window = row["review_window_ends_on"]
    return not (row["status"] == "decided" and (window is None or today > window))


def _is_overdue(row: dict, today: date) -> bool:
    running = (
        row["decided_on"] is None
        and row["clock_stopped_on"] is None
        and not row["paused_now"]
        and row["due_on"] < today
    )
    return running or (row["status"] == "under_review" and row["review_due_on"] < today)


def _occurrences(row: dict, today: date) -> list[tuple[str, date]]:
    """(figure, date counted on) of one facts row, as statistics.dating documents them."""
    found = []
    if row["merged_on"] is None:
        found.append(("received", row["received_on"]))
        if row["major"]:
            found.append(("major", row["received_on"]))
        if _is_open(row, today):
            found.append(("open_now", row["received_on"]))
        if _is_overdue(row, today):
            found.append(("overdue_now", row["received_on"]))
    dated = {
        "decided": "decided_on",
        "withdrawn": "withdrawn_on",
        "declined": "declined_on",
        "merged": "merged_on",
        "extended_once": "first_extended_on",
        "extended_twice": "second_extended_on",
        "reviews_requested": "review_requested_on",
    }
    for figure, column in dated.items():
        if row[column] is not None:
            found.append((figure, row[column]))
    if row["review_decided_on"] is not None and row["review_changed"]:
        found.append(("reviews_changed", row["review_decided_on"]))
    attributed_on = row["attributed_on"]
    if attributed_on is not None:
        found.append(("attributed", attributed_on))
        if row["root_cause"] == "third_party":
            found.append(("third_party", attributed_on))
        # each action by the domain's own rule, as of today
        for due_on, closed_on in zip(row["action_due_on"], row["action_closed_on"], strict=True):
            status = action_status(due_on, closed_on, today)
            found.append((f"rectification_{status}", attributed_on))
    followed_up_on = row["followed_up_on"]
    if followed_up_on is not None:
        for figure in ("satisfied", "basically_satisfied", "dissatisfied"):
            if row[figure]:
                found.append((f"follow_up_{figure}", followed_up_on))
        if row["follow_up_reached"]:
            found.append(("follow_up_reached", followed_up_on))
    return found


ATTRIBUTION_DIMENSIONS = ("root_cause", "responsible_institution")  # attributed cases only


def _round_half_up(total: int, count: int) -> float:
    exact = Decimal(total) / Decimal(count)
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _expected(
    rows: list[dict], institutions: list[str], from_on: date, to_on: date, kind: Any, today: date
) -> dict[tuple[date | None, str, str | None], dict[str, Any]]:
    """{(period key or None for the range, dimension or '', key): figures}"""
    counts: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    paused: dict[tuple, set[str]] = defaultdict(set)
    days: dict[tuple, list[int]] = defaultdict(list)
    redress: dict[tuple, int] = defaultdict(int)
    for row in rows:
        if row["respondent_institution"] not in institutions:
            continue
        keys = [("", None)] + [
            (name, row[column])
            for name, column in DIMENSIONS.items()
            if row[column] is not None or name not in ATTRIBUTION_DIMENSIONS
        ]

        def groups(on: date, keys: list[tuple] = keys) -> list[tuple]:
            periods = (period_start(on, kind, from_on), None)
            return [(period, *key) for period in periods for key in keys]

        for figure, on in _occurrences(row, today):
            if not from_on <= on <= to_on:
                continue
            for group in groups(on):
                counts[group][figure] += 1
                if figure == "decided":
                    counts[group]["decided_on_time" if row["on_time"] else "decided_late"] += 1
                    redress[group] += row["redress_fen"] or 0
                    days[group].append(row["handling_days"])
        for on in row["pause_dates"]:
            if from_on <= on <= to_on:
                for group in groups(on):
                    paused[group].add(row["case_id"])
    expected = {}
    for group in set(counts) | set(paused):
        figures: dict[str, Any] = {
            name: counts[group][name]
            for name in (
                "received",
                "decided",
                "decided_on_time",
                "decided_late",
                "open_now",
                "overdue_now",
                "withdrawn",
                "declined",
                "merged",
                "extended_once",
                "extended_twice",
                "reviews_requested",
                "reviews_changed",
                "major",
            )
        }
        figures["paused"] = len(paused[group])
        figures["attributed"] = counts[group]["attributed"]
        figures["third_party"] = counts[group]["third_party"]
        for name, names in GROUPED_FIGURES.items():
            figures[name] = {each: counts[group][f"{name}_{each}"] for each in names}
        figures["redress_total_fen"] = redress[group]
        values = sorted(days[group])
        figures["handling_days_mean"] = _round_half_up(sum(values), len(values)) if values else None
        figures["handling_days_p90"] = (
            values[max(math.ceil(0.9 * len(values)), 1) - 1] if values else None
        )
        expected[group] = figures
    return expected


def _answered(answer: dict[str, Any], kind: Any, from_on: date) -> dict[tuple, dict[str, Any]]:
    found = {}
    blocks = [(None, answer["total"])] + [
        (period_start(p["from"], kind, from_on), p) for p in answer["periods"]
    ]
    for period, block in blocks:
        if block["figures"] != zero_figures():
            found[(period, "", None)] = block["figures"]
        for name in DIMENSIONS:
            for entry in block[f"by_{name}"]:
                found[(period, name, entry["key"])] = entry["figures"]
    return found


def _differences(answered: dict, expected: dict) -> list[tuple]:
    """(group, figure, answered, expected) wherever they differ: a readable failure."""
    return [
        (group, figure, answered.get(group, {}).get(figure), expected.get(group, {}).get(figure))
        for group in sorted(set(answered) | set(expected), key=str)
        for figure in sorted(set(answered.get(group, {})) | set(expected.get(group, {})))
        if answered.get(group, {}).get(figure) != expected.get(group, {}).get(figure)
    ]


ranges = st.tuples(
    st.dates(date(2025, 10, 1), date(2026, 6, 30)),
    st.integers(0, 250),
    st.sampled_from([None, "month", "quarter", "half_year"]),
    st.integers(-30, 200),
    st.booleans(),
)


# one period over whole years (read from the yearly buckets) and the months around them
WHOLE_YEARS = [
    (date(2025, 11, 1), (date(2026, 12, 31) - date(2025, 11, 1)).days, None, 200, True),
    (date(2025, 1, 1), (date(2026, 12, 31) - date(2025, 1, 1)).days, None, 90, True),
    (date(2024, 12, 1), (date(2027, 1, 31) - date(2024, 12, 1)).days, None, 120, True),
]


@EXAMPLES
@given(history=histories, asked=st.lists(ranges, min_size=3, max_size=3))
async def test_figures_from_buckets_equal_the_figures_counted_by_hand_from_the_facts(
    pool: asyncpg.Pool,
    database_url: str,
    history: list[tuple[int, list[Step]]],
    asked: list[tuple[date, int, Any, int, bool]],
) -> None:
    await _catch_up(pool, database_url, history)
    rows = await table_rows(pool, statistics.TABLE)
    for start, length, kind, judged_after, whole_months in [*asked, *WHOLE_YEARS]:
        from_on, to_on = start, start + timedelta(days=length)
        if whole_months:
            from_on = from_on.replace(day=1)
            to_on = periods_between(to_on, to_on, "month")[0].ends_on
        today = FIRST_DAY + timedelta(days=judged_after)
        for code, institutions in (("HO", ALL), ("BR-A", ["BR-A", "SUB-A1"])):
            answer, _ = await institution_statistics(
                pool, code, institutions, from_on, to_on, kind, today
            )
            expected = _expected(rows, institutions, from_on, to_on, kind, today)
            answered = _answered(answer, kind, from_on)
            assert _differences(answered, expected) == [], (from_on, to_on, kind, today)
            assert answered == expected


@pytest.mark.parametrize("interruption", [{"pages": 3}, {"phase": "swapping"}], ids=str)
async def test_an_interrupted_rebuild_resumes_with_the_buckets_of_every_row(
    pool: asyncpg.Pool, database_url: str, interruption: dict
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    cases = await some_cases(desk, 12, DAY)
    runner = ProjectionRunner(database_url, desk.store)
    await runner.catch_up()
    with pytest.raises(Interrupted):
        await Rebuilder(
            database_url, [TARGETS["statistics"]], InterruptAt(**interruption), SMALL_BATCHES
        ).run()
    # meanwhile: new cases, and old ones move to other months and outcomes (caught up later)
    later = DAY + timedelta(days=40)
    await some_cases(desk, 4, later)
    await desk.decide(cases[1], later, outcome=Outcome.REJECTED, redress_fen=900)
    await desk.withdraw(cases[2], later)
    await runner.catch_up()
    live = await _bucket_tables(pool)

    results = await rebuild(database_url, ["statistics"], settings=SMALL_BATCHES)
    assert [(r.name, r.resumed) for r in results] == [("statistics", True)]
    assert await _bucket_tables(pool) == live
    async with pool.acquire() as connection:
        from_scratch = await statistics_buckets.buckets_of_table(connection, statistics.TABLE)
    assert live == _as_rows(from_scratch)
    assert live[statistics_buckets.MONTHLY]  # not trivially empty


def _without_the_actions_counts(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("actions_closed", "actions_not_closed")}


async def test_the_migrations_fill_the_yearly_buckets_as_the_runner_keeps_them(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Migrations 0018 and 0020 make the yearly tables from the monthly ones already there: going
    down below both and up again gives the very rows the runner kept. 0027 empties them for
    the runner to write again from the feed, with the actions' counts: the same rows again."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await some_cases(desk, 12, date(2025, 12, 24))  # two calendar years
    await ProjectionRunner(database_url, desk.store).catch_up()
    live = await _bucket_tables(pool)
    assert {row["year"].year for row in live[statistics_buckets.YEARLY]} == {2025, 2026}

    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0017")
    for table in (statistics_buckets.YEARLY, statistics_buckets.HANDLING_DAYS_YEARLY):
        assert await pool.fetchval("SELECT to_regclass($1)", table) is None
    await asyncio.to_thread(command.upgrade, alembic_config(database_url), "0026")
    before_0027 = await _bucket_tables(pool)
    assert before_0027 == {
        table: sorted(
            (_without_the_actions_counts(row) for row in rows),
            key=lambda row: tuple(map(str, row.values())),
        )
        for table, rows in live.items()
    }

    await asyncio.to_thread(upgrade_to_head, database_url)
    assert await pool.fetchval("SELECT count(*) FROM statistics_yearly") == 0
    await ProjectionRunner(database_url, desk.store).catch_up()
    assert await _bucket_tables(pool) == live
