"""Periods of a statistics question: their kinds (month, quarter, half-year), labels and days,
the periods of a range, and which of a range's days the monthly buckets answer and which the
facts rows (`range_parts`).

Periods are calendar months, quarters and half-years, the first and last clipped to the range;
with no kind the range is the one period. `period_start` finds a day's period in Python and
`period_start_sql` in SQL (the queries sum rows by it); the figures tests check both against
each other through the answers (tests/integration/projections/test_statistics_buckets.py).
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

PeriodKind = Literal["month", "quarter", "half_year"]

_MONTHS = {"month": 1, "quarter": 3, "half_year": 6}


@dataclass(frozen=True)
class Period:
    label: str
    key: date  # the period's first day, before clipping to the range
    starts_on: date
    ends_on: date


def period_start(day: date, kind: PeriodKind | None, range_start: date) -> date:
    if kind == "month":
        return day.replace(day=1)
    if kind == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if kind == "half_year":
        return day.replace(month=1 if day.month <= 6 else 7, day=1)
    return range_start


def _next_start(start: date, kind: PeriodKind) -> date:
    month_index = start.year * 12 + start.month - 1 + _MONTHS[kind]
    return date(month_index // 12, month_index % 12 + 1, 1)


def _label(start: date, kind: PeriodKind) -> str:
    if kind == "month":
        return f"{start:%Y-%m}"
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}-H{1 if start.month == 1 else 2}"


def periods_between(from_on: date, to_on: date, kind: PeriodKind | None) -> list[Period]:
    """The periods covering [from_on, to_on], the first and last clipped to it."""
    if kind is None:
        label = f"{from_on.isoformat()}/{to_on.isoformat()}"
        return [Period(label, from_on, from_on, to_on)]
    periods = []
    start = period_start(from_on, kind, from_on)
    while start <= to_on:
        following = _next_start(start, kind)
        periods.append(
            Period(
                _label(start, kind),
                start,
                max(start, from_on),
                min(following - timedelta(days=1), to_on),
            )
        )
        start = following
    return periods


def count_periods(from_on: date, to_on: date, kind: PeriodKind | None) -> int:
    if kind is None:
        return 1
    months = _MONTHS[kind]
    first, last = period_start(from_on, kind, from_on), period_start(to_on, kind, from_on)
    return ((last.year - first.year) * 12 + last.month - first.month) // months + 1


def period_start_sql(kind: PeriodKind | None, on_date: str = "on_date") -> str:
    """`period_start` in SQL: the first day of the period of the date `on_date`; with no kind,
    the range's first day (the query's `$3`)."""
    if kind == "month":
        return f"date_trunc('month', {on_date})::date"
    if kind == "quarter":
        return f"date_trunc('quarter', {on_date})::date"
    if kind == "half_year":
        return (
            f"make_date(extract(year FROM {on_date})::int,"
            f" CASE WHEN extract(month FROM {on_date}) <= 6 THEN 1 ELSE 7 END, 1)"
        )
    return "$3::date"


# --- a range's parts: whole months from the buckets, days from the facts rows ------------------


@dataclass(frozen=True)
class RangeParts:
    """Where a range's figures come from: `months`, the first and last month read from the
    buckets (None: none); `added_days`, days of months the range covers in part, counted from
    the facts rows; `excluded_days`, days of bucket months outside the range, taken back from
    the facts rows. A month the range covers in part is read whichever way reads fewer days
    (days after today count for nothing: no event is dated there yet), so a range ending today
    reads its last month from the buckets."""

    months: tuple[date, date] | None
    added_days: tuple[tuple[date, date], ...] = ()
    excluded_days: tuple[tuple[date, date], ...] = ()

    @property
    def whole_months_only(self) -> bool:
        return not (self.added_days or self.excluded_days)


def range_parts(from_on: date, to_on: date, today: date | None = None) -> RangeParts:
    """The parts of [from_on, to_on]: its whole months, and each month it covers in part read
    whichever way reads fewer days (as of `today`)."""
    bucket_months: list[date] = []
    added: list[tuple[date, date]] = []
    excluded: list[tuple[date, date]] = []
    month = from_on.replace(day=1)
    while month <= to_on:
        month_end = _next_month(month) - timedelta(days=1)
        first, last = max(month, from_on), min(month_end, to_on)
        outside = [(month, first - timedelta(days=1))] if first > month else []
        if last < month_end:
            outside.append((last + timedelta(days=1), month_end))
        if not outside:
            bucket_months.append(month)
        elif _days_to_read(outside, today) < _days_to_read([(first, last)], today):
            bucket_months.append(month)
            excluded.extend(outside)
        else:
            added.append((first, last))
        month = _next_month(month)
    months = (bucket_months[0], bucket_months[-1]) if bucket_months else None
    return RangeParts(months, tuple(added), tuple(excluded))


def whole_years(
    first_month: date, last_month: date
) -> tuple[tuple[date, date] | None, tuple[tuple[date, date], ...]]:
    """The calendar years lying wholly in the months `first_month` to `last_month` (as the
    first days of the first and last of them; None: none), and the runs of months around them."""
    first_year = first_month.year + (first_month.month != 1)
    last_year = last_month.year - (last_month.month != 12)
    if first_year > last_year:
        return None, ((first_month, last_month),)
    around = []
    if first_month.year < first_year:
        around.append((first_month, date(first_year - 1, 12, 1)))
    if last_month.year > last_year:
        around.append((date(last_year + 1, 1, 1), last_month))
    return (date(first_year, 1, 1), date(last_year, 1, 1)), tuple(around)


def _days_to_read(ranges: list[tuple[date, date]], today: date | None) -> int:
    days = 0
    for start, end in ranges:
        last = end if today is None else min(end, today)
        days += max(0, (last - start).days + 1)
    return days


def _next_month(day: date) -> date:
    return _next_start(day.replace(day=1), "month")
