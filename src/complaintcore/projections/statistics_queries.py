"""Reads of the statistics projection: every figure of DOMAIN.md "Statistics" for a date range,
by period, per institution (alone or rolled up its subtree), broken down by business, cause,
channel and outcome.

Dating rule: each figure counts the cases whose *own* date for that figure falls in the range (or
period), whatever happened to them before or after:

- `received`: the receipt date. Merged duplicates are not counted (annual reports count "after
  merging duplicates"): they appear under `merged` only.
- `decided`, `decided_on_time`, `decided_late`: the decision notice date (the clock stops at the
  notice); on time when the notice is dated on or before the due date.
- `handling_days_mean`, `handling_days_p90`: over the cases decided in the period, receipt to
  decision notice in calendar days with paused days excluded. The 90th percentile is exact
  (`percentile_disc`: the smallest value with at least 90% of the cases at or below it).
- `redress_total_fen`: over the cases decided in the period, the final redress (a review that
  changed the outcome and set a new amount replaces the decision's).
- `withdrawn`: the day the institution received the withdrawal. `declined`: the decline notice
  date. `merged`: the day the duplicate was merged.
- `extended_once`, `extended_twice`: the notice date of the first extension (to 30 days), of the
  second (to 60 days).
- `paused`: each pause's first day; a case paused twice in one period counts once there.
- `reviews_requested`: the day the request was received. `reviews_changed`: the review decision's
  notice date, for reviews that changed the outcome.
- `major`: the receipt date, merged duplicates excepted (like `received`).
- `open_now`, `overdue_now`: the receipt date, judged as of `as_of` (today): of the cases received
  in the period, those still open (DOMAIN.md "Lifecycle": not withdrawn, declined, merged,
  review-decided, nor decided with the review window passed) and those overdue (handling clock
  running past its due date, or a review past its own).

The `outcome` breakdown is the case's final outcome (after a review that changed it), `null` while
undecided. Rolling up follows the institution tree as it is when asked (a branch moved under
another parent takes its history with it); periods are calendar months, quarters and half-years,
the first and last clipped to the range. Figures come from the facts rows the runner keeps, so
they are as of the projection's checkpoint (the route reports it).
"""

import asyncio
import csv
import io
import re
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

import asyncpg

from complaintcore.projections import statistics, statistics_buckets

PeriodKind = Literal["month", "quarter", "half_year"]

COUNT_FIGURES = (
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
    "paused",
    "reviews_requested",
    "reviews_changed",
    "major",
)
FIGURES = (*COUNT_FIGURES, "redress_total_fen", "handling_days_mean", "handling_days_p90")
DIMENSIONS = {
    "business": "category_business",
    "reason": "category_reason",
    "channel": "channel",
    "outcome": "final_outcome",
}


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
    months = {"month": 1, "quarter": 3, "half_year": 6}[kind]
    month_index = start.year * 12 + start.month - 1 + months
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
    months = {"month": 1, "quarter": 3, "half_year": 6}[kind]
    first, last = period_start(from_on, kind, from_on), period_start(to_on, kind, from_on)
    return ((last.year - first.year) * 12 + last.month - first.month) // months + 1


# --- SQL -------------------------------------------------------------------------------------
#
# The figures of a range are summed from three sources, each row shaped like `_VALUES`:
# - whole months inside the range: the monthly buckets (projections/statistics_buckets.py);
# - a month the range covers only in part (its first or last): the facts rows dated on its days
#   inside the range, as each figure dates them; or, when the days outside it are fewer (or
#   after today, so hold nothing yet), its bucket minus the facts rows dated on those days
#   (`RangeParts`);
# - `open_now` and `overdue_now`, judged as of today: the facts rows of the cases received in
#   the range that can still be open (two partial indexes find them).
# `paused` counts each case once a period: +1 for each distinct month (bucket) or day (facts)
# with a pause, -1 for each consecutive pair of those lying in one period (`span_same`) or, for
# the whole range, in it (`span_all`). With a range of whole months, the buckets hold it all;
# otherwise the pauses of the range are read from the facts rows of the paused cases (slower:
# every paused case of the scope; daily buckets would be the next step).

_VALUES = (
    *statistics_buckets.MONTHLY_VALUES,
    "open_now",
    "overdue_now",
    "span_all",
    "span_same",
)

_OPEN_STATUSES = "('received', 'assigned', 'under_review')"
_MAY_BE_OPEN = (
    f"(f.status IN {_OPEN_STATUSES}"
    " OR (f.status = 'decided' AND f.review_window_ends_on >= $5::date))"
)
_TERMINAL = "('withdrawn', 'declined', 'merged', 'review_decided')"
_OPEN_AS_OF = (
    f"NOT (f.status IN {_TERMINAL} OR (f.status = 'decided'"
    " AND (f.review_window_ends_on IS NULL OR $5::date > f.review_window_ends_on)))"
)
_OVERDUE_AS_OF = (
    "((f.decided_on IS NULL AND f.clock_stopped_on IS NULL AND NOT f.paused_now"
    " AND f.due_on < $5::date)"
    " OR (f.status = 'under_review' AND f.review_due_on < $5::date))"
)

# (the date a figure counts on, its values, an extra condition) for the facts rows
_FACTS_DATED = (
    (
        "f.received_on",
        {"received": "1", "major": "f.major::int"},
        "f.merged_on IS NULL",
    ),
    (
        "f.decided_on",
        {
            "decided": "1",
            "decided_on_time": "coalesce(f.on_time, false)::int",
            "decided_late": "coalesce(NOT f.on_time, false)::int",
            "redress_fen": "coalesce(f.redress_fen, 0)",
        },
        None,
    ),
    ("f.withdrawn_on", {"withdrawn": "1"}, None),
    ("f.declined_on", {"declined": "1"}, None),
    ("f.merged_on", {"merged": "1"}, None),
    ("f.first_extended_on", {"extended_once": "1"}, None),
    ("f.second_extended_on", {"extended_twice": "1"}, None),
    ("f.review_requested_on", {"reviews_requested": "1"}, None),
    ("f.review_decided_on", {"reviews_changed": "1"}, "f.review_changed"),
)

_FACTS_KEYS = "f.category_business, f.category_reason, f.channel, f.final_outcome"
_UNPIVOT = (
    "CROSS JOIN LATERAL (VALUES ('', ''), ('business', o.category_business),"
    " ('reason', o.category_reason), ('channel', o.channel),"
    " ('outcome', coalesce(o.final_outcome, ''))) AS d (dimension, key)"
)


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


def _days_to_read(ranges: list[tuple[date, date]], today: date | None) -> int:
    days = 0
    for start, end in ranges:
        last = end if today is None else min(end, today)
        days += max(0, (last - start).days + 1)
    return days


def _next_month(day: date) -> date:
    return _next_start(day.replace(day=1), "month")


def _previous_month(first_day: date) -> date:
    return (first_day - timedelta(days=1)).replace(day=1)


def _bucket(kind: PeriodKind | None, on_date: str = "on_date") -> str:
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


def _values(given: dict[str, str]) -> str:
    return ", ".join(f"{given.get(name, '0')}::bigint AS {name}" for name in _VALUES)


class _Query:
    """The SQL of one question, with its parameters: $1 nodes, $2 institutions (the scope),
    $3 from, $4 to, $5 today, then the whole months and the partial days."""

    def __init__(
        self, parts: RangeParts, kind: PeriodKind | None, breakdowns: bool, *, one_node: bool
    ) -> None:
        self.parts = parts
        self.kind = kind
        self.breakdowns = breakdowns
        self.one_node = one_node
        self.parameters: list[Any] = []

    def _scoped(self, column: str) -> tuple[str, str]:
        """How a source's rows get their node (alias `s`) and keep to the scope's institutions
        (`column`): the join to follow after its FROM, the condition to add to its WHERE. With one
        node, the institutions are a filter and the node a constant: the join cost a head office's
        year about a fifth of its handling-days read at 1M cases."""
        if self.one_node:
            return " CROSS JOIN (SELECT ($1::text[])[1] AS node) AS s", f" AND {column} = ANY($2)"
        return f" JOIN scope s ON s.institution = {column}", ""

    def _parameter(self, value: Any) -> str:
        self.parameters.append(value)
        return f"${5 + len(self.parameters)}::date"

    def _whole_months(self, column: str) -> str:
        assert self.parts.months is not None
        first, last = self.parts.months
        return f"{column} BETWEEN {self._parameter(first)} AND {self._parameter(last)}"

    def _days(self, column: str, ranges: tuple[tuple[date, date], ...]) -> str:
        return (
            "("
            + " OR ".join(
                f"{column} BETWEEN {self._parameter(start)} AND {self._parameter(end)}"
                for start, end in ranges
            )
            + ")"
        )

    def _signed_days(self) -> list[tuple[tuple[tuple[date, date], ...], int]]:
        """The facts rows' days to count (+1) and to take back (-1)."""
        return [
            (ranges, sign)
            for ranges, sign in ((self.parts.added_days, 1), (self.parts.excluded_days, -1))
            if ranges
        ]

    def _by_period_and_range(self, source: str, keys: list[str], values: list[str]) -> str:
        """CTEs `by_period` (sums per node, period and `keys`) and `grouped`: those rows with
        all_periods 0, and their sums over the whole range with all_periods 1 (with no period
        kind the range is the one period: those alone). Text keys sort in "C" order (fast)."""
        keyed = ", ".join(
            key if key == "handling_days" else f'{key} COLLATE "C" AS {key}' for key in keys
        )
        positions = ", ".join(str(n) for n in range(1, len(keys) + 3))
        sums = ", ".join(f"sum({value}) AS {value}" for value in values)
        names = ", ".join([*keys, *values])
        per_period = (
            f"SELECT node, bucket, 0 AS all_periods, {names} FROM by_period\n    UNION ALL\n    "
            if self.kind
            else ""
        )
        # Every row is dated on the first day of a month (buckets) or of its period (facts):
        # sum the months first, then find the periods of the few sums (cheaper per row).
        if self.kind in (None, "month"):
            months = source
            bucket = "on_date" if self.kind == "month" else "$3::date"
        else:
            months = (
                f"(SELECT node, on_date, {keyed}, {sums} FROM {source} GROUP BY {positions})"
                " AS by_month"
            )
            bucket = _bucket(self.kind)
        return f"""by_period AS (
    SELECT node, {bucket} AS bucket, {keyed}, {sums}
    FROM {months} GROUP BY {positions}
),
grouped AS (
    {per_period}SELECT node, NULL::date AS bucket, 1 AS all_periods, {", ".join(keys)}, {sums}
    FROM by_period GROUP BY node, {", ".join(keys)}
)"""

    def _totals_only(self, alias: str) -> str:
        return "" if self.breakdowns else f" AND {alias}.dimension = ''"

    def _facts(self, rows: list[str]) -> str:
        """Facts-derived rows (node, on_date, keys, values), summed by period and keys (dated
        on the period's first day), then unpivoted into their dimensions."""
        occurrences = "\n        UNION ALL\n        ".join(rows)
        sums = ", ".join(f"sum({name}) AS {name}" for name in _VALUES)
        return (
            "SELECT o.node, o.on_date, d.dimension, d.key, "
            + ", ".join(f"o.{name}" for name in _VALUES)
            + f"\n    FROM (SELECT node, {_bucket(self.kind)} AS on_date, category_business,"
            f" category_reason, channel, final_outcome, {sums}"
            f"\n      FROM (\n        {occurrences}\n      ) AS x GROUP BY 1, 2, 3, 4, 5, 6"
            f"\n    ) AS o {_UNPIVOT}" + ("" if self.breakdowns else " WHERE d.dimension = ''")
        )

    def _facts_row(self, on_date: str, values: dict[str, str], where: str) -> str:
        join, in_scope = self._scoped("f.respondent_institution")
        return (
            f"SELECT s.node, {on_date} AS on_date, {_FACTS_KEYS}, {_values(values)}"
            f" FROM {statistics.TABLE} f{join} WHERE {where}{in_scope}"
        )

    def counts_sql(self) -> str:
        sources = []
        if self.parts.months:
            # with partial months, every pause of the range is read from the facts rows instead
            from_facts = set() if self.parts.whole_months_only else {"paused"}
            names = ", ".join(
                "0" if name in from_facts else f"m.{name}"
                for name in statistics_buckets.MONTHLY_VALUES
            )
            join, in_scope = self._scoped("m.institution")
            sources.append(
                f"SELECT s.node, m.month, m.dimension, m.key, {names}, 0, 0, 0, 0"
                f" FROM {statistics_buckets.MONTHLY} m{join}"
                f" WHERE {self._whole_months('m.month')}{self._totals_only('m')}{in_scope}"
            )
        facts = []
        for ranges, sign in self._signed_days():
            for on_date, values, condition in _FACTS_DATED:
                where = self._days(on_date, ranges) + (f" AND {condition}" if condition else "")
                signed = {name: f"{sign} * ({value})" for name, value in values.items()}
                facts.append(self._facts_row(on_date, signed, where))
        facts.append(
            self._facts_row(
                "f.received_on",
                {"open_now": f"({_OPEN_AS_OF})::int", "overdue_now": f"({_OVERDUE_AS_OF})::int"},
                "f.received_on BETWEEN $3::date AND $4::date AND f.merged_on IS NULL"
                f" AND {_MAY_BE_OPEN}",
            )
        )
        if self.parts.whole_months_only:
            if self.parts.months:
                sources.append(self._pause_spans())
        else:
            facts.append(self._paused_facts_row())
        sources.append(self._facts(facts))
        union = "\n    UNION ALL\n    ".join(sources)
        values = ",\n       ".join(f"coalesce({name}, 0)::bigint AS {name}" for name in _VALUES)
        grouped = self._by_period_and_range("counted", ["dimension", "key"], list(_VALUES))
        return f"""
WITH scope (node, institution) AS (
    SELECT * FROM unnest($1::text[], $2::text[])
),
counted (node, on_date, dimension, key, {", ".join(_VALUES)}) AS (
    {union}
),
{grouped}
SELECT node, bucket, all_periods, dimension, key,
       {values}
FROM grouped
"""

    def _pause_spans(self) -> str:
        same = f"{_bucket(self.kind, 'p.from_month')} = {_bucket(self.kind, 'p.to_month')}"
        assert self.parts.months is not None
        first, last = self.parts.months
        join, in_scope = self._scoped("p.institution")
        return (
            "SELECT s.node, p.from_month, p.dimension, p.key, "
            + ", ".join("0" for _ in statistics_buckets.MONTHLY_VALUES)
            + f", 0, 0, p.cases, CASE WHEN {same} THEN p.cases ELSE 0 END"
            f" FROM {statistics_buckets.PAUSE_SPANS} p{join}"
            f" WHERE p.from_month >= {self._parameter(first)}"
            f" AND p.to_month <= {self._parameter(last)}{self._totals_only('p')}{in_scope}"
        )

    def _paused_facts_row(self) -> str:
        """Each distinct pause day of the range +1, each consecutive pair of them -1 (spans)."""
        same = f"{_bucket(self.kind, 'p.before')} = {_bucket(self.kind, 'p.on_date')}"
        join, in_scope = self._scoped("f.respondent_institution")
        return (
            f"SELECT s.node, p.on_date, {_FACTS_KEYS}, "
            + _values(
                {
                    "paused": "1",
                    "span_all": "(p.before IS NOT NULL)::int",
                    "span_same": f"(p.before IS NOT NULL AND {same})::int",
                }
            )
            + f" FROM {statistics.TABLE} f{join}"
            " CROSS JOIN LATERAL (SELECT on_date, lag(on_date) OVER (ORDER BY on_date) AS before"
            " FROM (SELECT DISTINCT day FROM unnest(f.pause_dates) AS day"
            " WHERE day BETWEEN $3::date AND $4::date) AS days (on_date)) AS p"
            f" WHERE cardinality(f.pause_dates) > 0{in_scope}"
        )

    def handling_days_sql(self) -> str:
        sources = []
        if self.parts.months:
            join, in_scope = self._scoped("h.institution")
            sources.append(
                "SELECT s.node, h.month, h.dimension, h.key, h.handling_days, h.cases"
                f" FROM {statistics_buckets.HANDLING_DAYS} h{join}"
                f" WHERE {self._whole_months('h.month')}{self._totals_only('h')}{in_scope}"
            )
        for ranges, sign in self._signed_days():
            join, in_scope = self._scoped("f.respondent_institution")
            sources.append(
                f"SELECT o.node, o.on_date, d.dimension, d.key, o.handling_days, {sign}"
                f" FROM (SELECT s.node, {_bucket(self.kind, 'f.decided_on')} AS on_date,"
                f" {_FACTS_KEYS}, f.handling_days"
                f" FROM {statistics.TABLE} f{join}"
                f" WHERE {self._days('f.decided_on', ranges)} AND f.handling_days IS NOT NULL"
                f"{in_scope}"
                f") AS o {_UNPIVOT}" + ("" if self.breakdowns else " WHERE d.dimension = ''")
            )
        grouped = self._by_period_and_range(
            "days", ["dimension", "key", "handling_days"], ["cases"]
        )
        union = "\n    UNION ALL\n    ".join(sources)
        return f"""
WITH scope (node, institution) AS (
    SELECT * FROM unnest($1::text[], $2::text[])
    WHERE ($3::date, $4::date, $5::date) IS NOT NULL  -- (typed; $3 is used by some kinds)
),
days (node, on_date, dimension, key, handling_days, cases) AS (
    {union}
),
{grouped},
running AS (
    SELECT *, sum(cases) OVER (w ORDER BY handling_days) AS at_or_below,
           sum(cases) OVER w AS total, sum(cases * handling_days) OVER w AS days_total
    FROM grouped
    WINDOW w AS (PARTITION BY node, all_periods, bucket, dimension, key)
)
-- avg() divides the numeric sum by the count, and percentile_disc(0.9) takes the value at
-- position ceil(0.9 * count) in float8: the same operations on the summed histogram.
SELECT node, bucket, all_periods, dimension, key,
       round(max(days_total) / nullif(max(total), 0), 2) AS handling_days_mean,
       min(handling_days) FILTER (
           WHERE total > 0 AND at_or_below >= ceil(0.9::float8 * total::float8)::bigint
       ) AS handling_days_p90
FROM running
GROUP BY node, all_periods, bucket, dimension, key
"""


# --- assembling the answer -------------------------------------------------------------------


def zero_figures() -> dict[str, Any]:
    figures: dict[str, Any] = dict.fromkeys(COUNT_FIGURES, 0)
    figures.update(redress_total_fen=0, handling_days_mean=None, handling_days_p90=None)
    return figures


@dataclass
class _Block:
    """The figures of one node for one period (or the whole range), with breakdowns."""

    figures: dict[str, Any]
    breakdowns: dict[str, list[dict[str, Any]]]

    @classmethod
    def empty(cls, breakdowns: bool) -> "_Block":
        return cls(zero_figures(), {name: [] for name in DIMENSIONS} if breakdowns else {})


_GroupKey = tuple[str, date | None, str, str]  # node, period (None: the range), dimension, key


def _group_key(row: asyncpg.Record) -> _GroupKey:
    return (
        row["node"],
        None if row["all_periods"] else row["bucket"],
        row["dimension"],
        row["key"],
    )


def _counted_figures(row: asyncpg.Record) -> dict[str, Any]:
    figures = zero_figures()
    for name in statistics_buckets.COUNTS:
        if name != "paused":
            figures[name] = row[name]
    span = row["span_all"] if row["all_periods"] else row["span_same"]
    figures["paused"] = row["paused"] - span
    figures["open_now"], figures["overdue_now"] = row["open_now"], row["overdue_now"]
    figures["redress_total_fen"] = row["redress_fen"]
    return figures


class FiguresByNode:
    """The query's rows as blocks: `block(node, period_key)` (None: the whole range)."""

    def __init__(
        self,
        counts: Sequence[asyncpg.Record],
        handling_days: Sequence[asyncpg.Record],
        breakdowns: bool,
        *,
        single_period: bool = False,
    ) -> None:
        self._breakdowns = breakdowns
        self._single_period = single_period  # no period kind: the range is the one period
        self._blocks: dict[tuple[str, date | None], _Block] = {}
        groups = {_group_key(row): _counted_figures(row) for row in counts}
        for row in handling_days:
            figures = groups.setdefault(_group_key(row), zero_figures())
            mean = row["handling_days_mean"]
            figures["handling_days_mean"] = float(mean) if mean is not None else None
            figures["handling_days_p90"] = row["handling_days_p90"]
        for (node, period, dimension, key), figures in groups.items():
            block = self._blocks.setdefault((node, period), _Block.empty(breakdowns))
            if dimension == "":
                block.figures = figures
            elif figures != zero_figures():
                shown = None if dimension == "outcome" and key == "" else key
                block.breakdowns[dimension].append({"key": shown, "figures": figures})

    def block(self, node: str, period_key: date | None) -> _Block:
        if self._single_period:
            period_key = None
        block = self._blocks.get((node, period_key)) or _Block.empty(self._breakdowns)
        for entries in block.breakdowns.values():
            entries.sort(key=lambda entry: (entry["key"] is None, entry["key"] or ""))
        return block


async def query_figures(
    executor: asyncpg.Pool | asyncpg.Connection,
    scope: Sequence[tuple[str, str]],
    from_on: date,
    to_on: date,
    kind: PeriodKind | None,
    today: date,
    *,
    breakdowns: bool = True,
) -> FiguresByNode:
    """Figures per node of `scope`, a list of (node, institution counted under it) pairs."""
    nodes = [node for node, _ in scope]
    institutions = [institution for _, institution in scope]
    parts = range_parts(from_on, to_on, today)
    common = (nodes, institutions, from_on, to_on, today)
    one_node = len(set(nodes)) == 1
    counts_query = _Query(parts, kind, breakdowns, one_node=one_node)
    counts_sql = counts_query.counts_sql()
    days_query = _Query(parts, kind, breakdowns, one_node=one_node)
    days_sql = days_query.handling_days_sql()
    counts_read = (counts_sql, *common, *counts_query.parameters)
    days_read = (days_sql, *common, *days_query.parameters)
    if isinstance(executor, asyncpg.Pool):
        counts, days = await _read_from_pool(executor, counts_read, days_read)
    else:
        counts, days = await _read_one_after_the_other(executor, counts_read, days_read)
    return FiguresByNode(counts, days, breakdowns, single_period=kind is None)


# A generic plan cannot pick the partial indexes for the day of judgement, and the groupings hash
# in memory rather than sort on disk. The facts table is locked first, before the snapshot, as a
# rebuild's swap does before it replaces the bucket tables: a swap and a read wait for each
# other, never deadlock.
_READ_SETTINGS = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL work_mem = '64MB'"
_LOCK_FACTS = f"LOCK TABLE {statistics.TABLE} IN ACCESS SHARE MODE"


async def _read_one_after_the_other(
    connection: asyncpg.Connection, *reads: tuple[Any, ...]
) -> list[list[asyncpg.Record]]:
    """Each (statement, *arguments) in one snapshot, so the runner committing in between cannot
    split them (a savepoint when the caller has a transaction open)."""
    snapshot = (
        connection.transaction()
        if connection.is_in_transaction()
        else connection.transaction(isolation="repeatable_read", readonly=True)
    )
    async with snapshot:
        await connection.execute(f"{_READ_SETTINGS}; {_LOCK_FACTS}")
        return [await connection.fetch(*read) for read in reads]


async def _read_from_pool(
    pool: asyncpg.Pool, *reads: tuple[Any, ...]
) -> list[list[asyncpg.Record]]:
    """The reads at once, each on its own connection, in one exported snapshot (PostgreSQL runs
    them on two cores: a head office's year is two heavy aggregations); one after the other on
    one connection when every other connection of the pool is in use, so that a read never
    waits for a second connection while holding a first (many such reads could wait forever)."""
    async with pool.acquire() as first:
        in_use = pool.get_size() - pool.get_idle_size()
        if in_use >= pool.get_max_size():
            return await _read_one_after_the_other(first, *reads)
        async with pool.acquire() as second:
            return await _read_in_one_snapshot([first, second], reads)


async def _read_in_one_snapshot(
    connections: list[asyncpg.Connection], reads: Sequence[tuple[Any, ...]]
) -> list[list[asyncpg.Record]]:
    first, *others = connections
    async with first.transaction(isolation="repeatable_read", readonly=True):
        await first.execute(f"{_READ_SETTINGS}; {_LOCK_FACTS}")
        snapshot = await first.fetchval("SELECT pg_export_snapshot()")
        async with AsyncExitStack() as transactions:
            for other in others:
                await transactions.enter_async_context(
                    other.transaction(isolation="repeatable_read", readonly=True)
                )
                # The snapshot's id is PostgreSQL's own text, not a value from the request.
                await other.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'; {_READ_SETTINGS}")
            fetches = (c.fetch(*read) for c, read in zip(connections, reads, strict=True))
            return list(await asyncio.gather(*fetches))


def _period_document(label: str, starts_on: date, ends_on: date, block: _Block) -> dict[str, Any]:
    document: dict[str, Any] = {
        "period": label,
        "from": starts_on,
        "to": ends_on,
        "figures": block.figures,
    }
    for name, entries in block.breakdowns.items():
        document[f"by_{name}"] = entries
    return document


async def institution_statistics(
    pool: asyncpg.Pool,
    code: str,
    institutions: Sequence[str],
    from_on: date,
    to_on: date,
    kind: PeriodKind | None,
    today: date,
) -> dict[str, Any]:
    """The figures of `code` over `institutions` (its subtree when rolled up, else itself)."""
    scope = [(code, institution) for institution in institutions]
    by_node = await query_figures(pool, scope, from_on, to_on, kind, today)
    periods = periods_between(from_on, to_on, kind)
    return {
        "periods": [
            _period_document(p.label, p.starts_on, p.ends_on, by_node.block(code, p.key))
            for p in periods
        ],
        "total": _period_document("total", from_on, to_on, by_node.block(code, None)),
    }


_SUBTREE_PAIRS = """
WITH RECURSIVE nodes (code) AS (
    SELECT code FROM institutions WHERE code = $1
    UNION
    SELECT child.code FROM institutions AS child JOIN nodes ON child.parent = nodes.code
),
closure (node, institution) AS (
    SELECT code, code FROM nodes
    UNION
    SELECT closure.node, child.code
    FROM closure JOIN institutions AS child ON child.parent = closure.institution
)
SELECT node, institution FROM closure WHERE $2 OR node = institution ORDER BY node, institution
"""

CSV_HEADER = ("institution", "institution_name", "rollup", "period", "from", "to", *FIGURES)

# OWASP "CSV Injection": a spreadsheet reads a cell starting with one of these as a formula.
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_TEXT_MARK = "'"
_CSV_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def neutralise_csv_cell(cell: str) -> str:
    """`cell` made safe to open in a spreadsheet; every cell of every CSV the service writes
    goes through here.

    A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, so it
    shows as text and never runs as a formula (OWASP's rule). A cell already starting with `'`
    gets one too, so the original is always the cell less one leading `'`. A plain decimal
    number (`-3`, `12.50`) is left as it is: a number, not a formula.
    """
    if cell.startswith((*CSV_FORMULA_STARTS, CSV_TEXT_MARK)) and not _CSV_NUMBER.fullmatch(cell):
        return CSV_TEXT_MARK + cell
    return cell


async def statistics_csv(
    pool: asyncpg.Pool,
    code: str,
    from_on: date,
    to_on: date,
    kind: PeriodKind | None,
    today: date,
    rollup: bool,
) -> str:
    """The regulator's data return: one row per institution of `code`'s subtree and period, each
    institution's own figures, or (rolled up) its whole subtree's."""
    pairs = await pool.fetch(_SUBTREE_PAIRS, code, rollup)
    scope = [(row["node"], row["institution"]) for row in pairs]
    names = dict(
        await pool.fetch(
            "SELECT code, name FROM institutions WHERE code = ANY($1::text[])",
            sorted({node for node, _ in scope}),
        )
    )
    by_node = await query_figures(pool, scope, from_on, to_on, kind, today, breakdowns=False)
    output = io.StringIO()
    writer = csv.writer(output, lineterminator="\r\n")
    writer.writerow(map(neutralise_csv_cell, CSV_HEADER))
    nodes = sorted(names, key=lambda node: (node != code, node))
    for node in nodes:
        for period in periods_between(from_on, to_on, kind):
            figures = by_node.block(node, period.key).figures
            cells = (
                node,
                names[node],
                "true" if rollup else "false",
                period.label,
                period.starts_on.isoformat(),
                period.ends_on.isoformat(),
                *(_csv_value(figure, figures[figure]) for figure in FIGURES),
            )
            writer.writerow(map(neutralise_csv_cell, cells))
    return output.getvalue()


def _csv_value(figure: str, value: Any) -> str:
    if value is None:
        return ""
    if figure == "handling_days_mean":
        return f"{value:.2f}"
    return str(value)


async def projection_checkpoint(pool: asyncpg.Pool) -> int:
    return await pool.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1", statistics.NAME
    )
