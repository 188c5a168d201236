"""Monthly buckets of the statistics facts: what a year's figures read instead of every case.

Every figure of DOMAIN.md "Statistics" but those judged as of today counts the facts rows whose own
date for it falls in a period (see `dating`). Periods are whole months, quarters or
half-years, so the sums of the rows dated in each month, per institution and breakdown key, add up
to any period's figures:

- `statistics_monthly`: per (institution, month, dimension, key) the counts of `COUNTS` and the
  redress of the cases decided that month. Dimension '' (key '') is every case; the others are
  `business`, `reason`, `channel` and `outcome` (the final outcome; '' while undecided), and for
  attributed cases only `root_cause` and `responsible_institution` (the current attribution).
- `statistics_yearly`: the same per calendar year (`year`, its first day), the sums of its
  months' rows (`paused` too: the pause spans take a case paused in several months back), so a
  question over whole years reads about a twelfth of the rows.
- `statistics_handling_days`: the decided cases per handling-days value, so the mean and the exact
  90th percentile of any union of months come from the summed histogram.
- `statistics_handling_days_yearly`: the same histogram per calendar year, the sum of its
  months' (a head office's year at 1M cases: 6,173 rows instead of 70,428).
- `statistics_pause_spans`: `paused` counts a case once in a period however many times it was
  paused there. A case counts +1 in each distinct month with a pause of its (`paused` in
  `statistics_monthly`) and -1 for each pair of consecutive such months (a span); the months of a
  case inside one period are a run of consecutive ones, and a run of n months holds n - 1 spans,
  so subtracting the spans lying wholly inside the period leaves exactly 1.

`contributions` is the one mapping from a facts row to what it adds to these tables. The runner
(projections/runner.py) subtracts the old rows' contributions of a batch's cases and adds the new
ones', in the transaction that writes the rows and the checkpoint; a rebuild sums the rows'
contributions while it scans and writes the totals with COPY (projections/rebuild/). One
function, both paths: the buckets always equal the sums of the facts rows they sit beside.
No personal data here either: keys are institutions, categories, channels and outcomes.
"""

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from itertools import pairwise
from typing import Any

import asyncpg

from complaintcore.domain.state import ComplaintState
from complaintcore.projections.statistics import dating, facts

MONTHLY = "statistics_monthly"
HANDLING_DAYS = "statistics_handling_days"
PAUSE_SPANS = "statistics_pause_spans"
HANDLING_DAYS_YEARLY = "statistics_handling_days_yearly"
YEARLY = "statistics_yearly"
TABLES = (MONTHLY, HANDLING_DAYS, PAUSE_SPANS, HANDLING_DAYS_YEARLY, YEARLY)

COUNTS = (
    "received",
    "decided",
    "decided_on_time",
    "decided_late",
    "withdrawn",
    "declined",
    "merged",
    "extended_once",
    "extended_twice",
    "paused",
    "reviews_requested",
    "reviews_changed",
    "major",
    "attributed",
    "third_party",
    "follow_up_reached",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "actions_closed",  # rectification closed, and overdue (not closed), once settled (`dating`)
    "actions_not_closed",
)
MONTHLY_VALUES = (*COUNTS, "redress_fen")
MONTHLY_COLUMNS = ("institution", "month", "dimension", "key", *MONTHLY_VALUES)
HANDLING_DAYS_COLUMNS = ("institution", "month", "dimension", "key", "handling_days", "cases")
PAUSE_SPANS_COLUMNS = ("institution", "from_month", "to_month", "dimension", "key", "cases")
HANDLING_DAYS_YEARLY_COLUMNS = ("institution", "year", "dimension", "key", "handling_days", "cases")
YEARLY_COLUMNS = ("institution", "year", "dimension", "key", *MONTHLY_VALUES)
DIMENSIONS = ("business", "reason", "channel", "outcome", "root_cause", "responsible_institution")

_AT = {column: index for index, column in enumerate(facts.COLUMNS)}
_SLOT = {name: index for index, name in enumerate(MONTHLY_VALUES)}
_HANDLING_DAYS_ON = _AT[dating.HANDLING_DAYS_ON]
_PAUSED_ON = _AT[dating.PAUSED_ON]
_PAUSED_SLOT = _SLOT["paused"]
# the columns every row is read at (a rebuild adds a row a case): positions looked up once
_INSTITUTION_AT = _AT["respondent_institution"]
_HANDLING_DAYS_AT = _AT["handling_days"]
_BUSINESS_AT, _REASON_AT = _AT["category_business"], _AT["category_reason"]
_CHANNEL_AT, _FINAL_OUTCOME_AT = _AT["channel"], _AT["final_outcome"]
_ROOT_CAUSE_AT, _RESPONSIBLE_AT = _AT["root_cause"], _AT["responsible_institution"]


@functools.lru_cache(maxsize=8192)  # a few thousand days occur, each in many rows of a rebuild
def month_of(day: date) -> date:
    return day.replace(day=1)


def year_of(day: date) -> date:
    return date(day.year, 1, 1)


def breakdown_keys(row: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    """The (dimension, key) pairs a facts row counts under: all cases, then each breakdown; the
    attribution's two only for an attributed case (the others would only repeat all cases)."""
    keys: tuple[tuple[str, str], ...] = (
        ("", ""),
        ("business", row[_BUSINESS_AT]),
        ("reason", row[_REASON_AT]),
        ("channel", row[_CHANNEL_AT]),
        ("outcome", row[_FINAL_OUTCOME_AT] or ""),
    )
    root_cause = row[_ROOT_CAUSE_AT]
    if root_cause is None:
        return keys
    return (
        *keys,
        ("root_cause", root_cause),
        ("responsible_institution", row[_RESPONSIBLE_AT]),
    )


def dated_amounts(row: Sequence[Any], months: Sequence[date]) -> dict[date, list[tuple[int, int]]]:
    """(slot in `MONTHLY_VALUES`, amount) for each figure the row counts, by the month of its
    own date (`dating`); `months`: the row's `pause_months`, each counting `paused` once."""
    by_month: dict[date, list[tuple[int, int]]] = {}
    for figure, on, amount in dating.dated_amounts(row):
        by_month.setdefault(month_of(on), []).append((_SLOT[figure], amount))
    for month in months:
        by_month.setdefault(month, []).append((_PAUSED_SLOT, 1))
    return by_month


def pause_months(row: Sequence[Any]) -> list[date]:
    """The distinct months with a pause of the case, in order."""
    paused_on = row[_PAUSED_ON]
    return sorted({month_of(day) for day in paused_on}) if paused_on else []


class Buckets:
    """Increments to the monthly tables, keyed by their primary keys (the yearly tables' are
    their sums by year, made as they are written); `add` a facts row's contributions with sign
    +1, or take an old row's back with -1."""

    def __init__(self) -> None:
        self.monthly: dict[tuple[str, date, str, str], list[int]] = {}
        self.handling_days: dict[tuple[str, date, str, str, int], int] = {}
        self.pause_spans: dict[tuple[str, date, date, str, str], int] = {}

    def add(self, row: Sequence[Any], sign: int = 1) -> None:
        institution = row[_INSTITUTION_AT]
        keys = breakdown_keys(row)
        width = len(MONTHLY_VALUES)
        months = pause_months(row)
        for month, amounts in dated_amounts(row, months).items():  # a lookup a month and key
            if sign != 1:
                amounts = [(slot, sign * amount) for slot, amount in amounts]
            for dimension, key in keys:
                values = self.monthly.get((institution, month, dimension, key))
                if values is None:
                    values = self.monthly[(institution, month, dimension, key)] = [0] * width
                for slot, amount in amounts:
                    values[slot] += amount
        decided_on, days = row[_HANDLING_DAYS_ON], row[_HANDLING_DAYS_AT]
        if decided_on is not None and days is not None:
            month = month_of(decided_on)
            for dimension, key in keys:
                bucket = (institution, month, dimension, key, days)
                self.handling_days[bucket] = self.handling_days.get(bucket, 0) + sign
        for from_month, to_month in pairwise(months):
            for dimension, key in keys:
                span = (institution, from_month, to_month, dimension, key)
                self.pause_spans[span] = self.pause_spans.get(span, 0) + sign

    def add_all(self, rows: Iterable[Sequence[Any]], sign: int = 1) -> None:
        for row in rows:
            self.add(row, sign)

    def merge(self, other: "Buckets") -> None:
        """Add another's increments to these (a rebuild's scan workers' sums)."""
        for bucket, values in other.monthly.items():
            mine = self.monthly.setdefault(bucket, [0] * len(values))
            for slot, amount in enumerate(values):
                mine[slot] += amount
        for bucket, cases in other.handling_days.items():
            self.handling_days[bucket] = self.handling_days.get(bucket, 0) + cases
        for span, cases in other.pause_spans.items():
            self.pause_spans[span] = self.pause_spans.get(span, 0) + cases

    def monthly_records(self) -> list[tuple[Any, ...]]:
        return [(*key, *values) for key, values in self.monthly.items() if any(values)]

    def handling_days_records(self) -> list[tuple[Any, ...]]:
        return [(*key, cases) for key, cases in self.handling_days.items() if cases]

    def pause_spans_records(self) -> list[tuple[Any, ...]]:
        return [(*key, cases) for key, cases in self.pause_spans.items() if cases]

    def handling_days_yearly_records(self) -> list[tuple[Any, ...]]:
        """The handling-days histogram summed by calendar year (`year_of` each month)."""
        yearly: dict[tuple[str, date, str, str, int], int] = {}
        for (institution, month, dimension, key, days), cases in self.handling_days.items():
            bucket = (institution, year_of(month), dimension, key, days)
            yearly[bucket] = yearly.get(bucket, 0) + cases
        return [(*key, cases) for key, cases in yearly.items() if cases]

    def yearly_records(self) -> list[tuple[Any, ...]]:
        """The monthly counts summed by calendar year (`year_of` each month)."""
        yearly: dict[tuple[str, date, str, str], list[int]] = {}
        for (institution, month, dimension, key), values in self.monthly.items():
            bucket = (institution, year_of(month), dimension, key)
            sums = yearly.get(bucket)
            if sums is None:
                yearly[bucket] = list(values)
            else:
                for slot, amount in enumerate(values):
                    sums[slot] += amount
        return [(*key, *values) for key, values in yearly.items() if any(values)]


def contributions(row: Sequence[Any]) -> Buckets:
    """What one facts row (in `facts.COLUMNS` order) adds to the bucket tables."""
    buckets = Buckets()
    buckets.add(row)
    return buckets


# --- writing ---------------------------------------------------------------------------------


async def copy_buckets(connection: asyncpg.Connection, buckets: Buckets, suffix: str) -> None:
    """Write `buckets` as they are into empty tables (a rebuild's, named with `suffix`)."""
    for table, columns, records in tables_records(buckets):
        if records:
            await connection.copy_records_to_table(
                f"{table}{suffix}", records=records, columns=columns
            )


async def add_buckets(connection: asyncpg.Connection, buckets: Buckets, suffix: str = "") -> None:
    """Add `buckets` (increments, maybe negative) to the tables; rows that reach zero go."""
    for table, columns, records in tables_records(buckets):
        if records:
            await _add_records(connection, f"{table}{suffix}", columns, records)


def tables_records(
    buckets: Buckets,
) -> list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
    """Each bucket table (`TABLES`), its columns and `buckets`' rows for it."""
    return [
        (MONTHLY, MONTHLY_COLUMNS, buckets.monthly_records()),
        (HANDLING_DAYS, HANDLING_DAYS_COLUMNS, buckets.handling_days_records()),
        (PAUSE_SPANS, PAUSE_SPANS_COLUMNS, buckets.pause_spans_records()),
        (
            HANDLING_DAYS_YEARLY,
            HANDLING_DAYS_YEARLY_COLUMNS,
            buckets.handling_days_yearly_records(),
        ),
        (YEARLY, YEARLY_COLUMNS, buckets.yearly_records()),
    ]


_TYPES = {"institution": "text", "dimension": "text", "key": "text", "handling_days": "integer"}
_KEY_COLUMNS = {
    MONTHLY_COLUMNS: ("month", "institution", "dimension", "key"),
    HANDLING_DAYS_COLUMNS: ("month", "institution", "dimension", "key", "handling_days"),
    PAUSE_SPANS_COLUMNS: ("from_month", "to_month", "institution", "dimension", "key"),
    HANDLING_DAYS_YEARLY_COLUMNS: ("year", "institution", "dimension", "key", "handling_days"),
    YEARLY_COLUMNS: ("year", "institution", "dimension", "key"),
}


def _type(column: str) -> str:
    if column.endswith("month") or column == "year":
        return "date"
    return _TYPES.get(column, "bigint")


async def _add_records(
    connection: asyncpg.Connection,
    table: str,
    columns: tuple[str, ...],
    records: list[tuple[Any, ...]],
) -> None:
    keys = _KEY_COLUMNS[columns]
    values = [column for column in columns if column not in keys]
    arrays = [list(column) for column in zip(*records, strict=True)]
    unnest = ", ".join(f"${n}::{_type(c)}[]" for n, c in enumerate(columns, start=1))
    await connection.execute(
        f"INSERT INTO {table} AS t ({', '.join(columns)}) SELECT * FROM unnest({unnest})"
        f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET "
        + ", ".join(f"{v} = t.{v} + EXCLUDED.{v}" for v in values),
        *arrays,
    )
    key_arrays = [arrays[columns.index(k)] for k in keys]
    key_unnest = ", ".join(f"${n}::{_type(k)}[]" for n, k in enumerate(keys, start=1))
    await connection.execute(
        f"DELETE FROM {table} WHERE ({', '.join(keys)}) IN (SELECT * FROM unnest({key_unnest}))"
        f" AND {' AND '.join(f'{v} = 0' for v in values)}",
        *key_arrays,
    )


async def write_statistics(
    connection: asyncpg.Connection, rows: Sequence[tuple[Any, ...]], suffix: str = ""
) -> None:
    """Upsert facts rows and move the buckets by the difference they make, together (call in a
    transaction): the old rows of the same cases are read first and their contributions taken
    back, so writing a case again, or again after a crash, never counts it twice."""
    if not rows:
        return
    table = f"{facts.TABLE}{suffix}"
    old = await connection.fetch(
        f"SELECT {', '.join(facts.COLUMNS)} FROM {table} WHERE case_id = ANY($1::text[])",
        [row[0] for row in rows],
    )
    buckets = Buckets()
    buckets.add_all(old, -1)
    buckets.add_all(rows, +1)
    await connection.executemany(facts.upsert_sql(table), rows)
    await add_buckets(connection, buckets, suffix)


async def buckets_of_table(
    connection: asyncpg.Connection, table: str, where: str = "TRUE", *arguments: Any
) -> Buckets:
    """The buckets of the facts rows of `table` (those `where` selects), computed afresh (a
    resumed rebuild's scan, the tests' check of the kept buckets, the bench's bulk rows)."""
    buckets = Buckets()
    async with connection.transaction():
        async for row in connection.cursor(
            f"SELECT {', '.join(facts.COLUMNS)} FROM {table} WHERE {where}",
            *arguments,
            prefetch=5_000,
        ):
            buckets.add(row)
    return buckets


async def upsert_statistics(
    connection: asyncpg.Connection, states: Iterable[ComplaintState], suffix: str = ""
) -> None:
    """Write the cases' facts rows and move the monthly buckets by the difference they make;
    in the caller's transaction."""
    rows = [facts.statistics_row(state) for state in states]
    await write_statistics(connection, rows, suffix)
