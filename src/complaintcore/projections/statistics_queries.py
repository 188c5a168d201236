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

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

import asyncpg

from complaintcore.projections import statistics

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

# (figure, the date it is counted on, extra condition)
_DATED = (
    ("received", "f.received_on", "f.merged_on IS NULL"),
    ("decided", "f.decided_on", None),
    ("withdrawn", "f.withdrawn_on", None),
    ("declined", "f.declined_on", None),
    ("merged", "f.merged_on", None),
    ("extended_once", "f.first_extended_on", None),
    ("extended_twice", "f.second_extended_on", None),
    ("reviews_requested", "f.review_requested_on", None),
    ("reviews_changed", "f.review_decided_on", "f.review_changed"),
)


def _branch(figure: str, on_date: str, condition: str | None, source: str) -> str:
    received = figure == "received"
    flags = (
        f"f.major, {_OPEN_AS_OF}, {_OVERDUE_AS_OF}"
        if received
        else "NULL::boolean, NULL::boolean, NULL::boolean"
    )
    where = f"{on_date} BETWEEN $3::date AND $4::date"
    if condition:
        where += f" AND {condition}"
    return (
        f"SELECT s.node, '{figure}'::text AS figure, {on_date} AS on_date, f.case_id,"
        " f.category_business, f.category_reason, f.channel, f.final_outcome, f.on_time,"
        f" f.handling_days, f.redress_fen, {flags}"
        f" FROM {source} f JOIN scope s ON s.institution = f.respondent_institution"
        f" WHERE {where}"
    )


def _paused_branch(source: str) -> str:
    return (
        "SELECT s.node, 'paused'::text, p.on_date, f.case_id, f.category_business,"
        " f.category_reason, f.channel, f.final_outcome, NULL::boolean, NULL::integer,"
        " NULL::bigint, NULL::boolean, NULL::boolean, NULL::boolean"
        f" FROM {source} f JOIN scope s ON s.institution = f.respondent_institution"
        " CROSS JOIN LATERAL unnest(f.pause_dates) AS p(on_date)"
        " WHERE cardinality(f.pause_dates) > 0 AND p.on_date BETWEEN $3::date AND $4::date"
    )


def _bucket(kind: PeriodKind | None) -> str:
    if kind == "month":
        return "date_trunc('month', on_date)::date"
    if kind == "quarter":
        return "date_trunc('quarter', on_date)::date"
    if kind == "half_year":
        return (
            "make_date(extract(year FROM on_date)::int,"
            " CASE WHEN extract(month FROM on_date) <= 6 THEN 1 ELSE 7 END, 1)"
        )
    return "$3::date"


def _aggregates() -> str:
    def counted(condition: str) -> str:
        return f"count(*) FILTER (WHERE {condition})"

    decided = "figure = 'decided'"
    received = "figure = 'received'"
    columns = {
        "received": counted(received),
        "decided": counted(decided),
        "decided_on_time": counted(f"{decided} AND on_time"),
        "decided_late": counted(f"{decided} AND NOT on_time"),
        "open_now": counted(f"{received} AND open_now"),
        "overdue_now": counted(f"{received} AND overdue_now"),
        "paused": "count(DISTINCT case_id) FILTER (WHERE figure = 'paused')",
        "major": counted(f"{received} AND major"),
        "redress_total_fen": f"coalesce(sum(redress_fen) FILTER (WHERE {decided}), 0)::bigint",
        "handling_days_mean": f"round(avg(handling_days) FILTER (WHERE {decided}), 2)",
        "handling_days_p90": (
            f"percentile_disc(0.9) WITHIN GROUP (ORDER BY handling_days) FILTER (WHERE {decided})"
        ),
    }
    for figure in COUNT_FIGURES:
        columns.setdefault(figure, counted(f"figure = '{figure}'"))
    return ",\n       ".join(f"{sql} AS {figure}" for figure, sql in columns.items())


def _grouping_sets(breakdowns: bool) -> str:
    dimensions = [""] + ([f", {column}" for column in DIMENSIONS.values()] if breakdowns else [])
    sets = [f"(node, bucket{d})" for d in dimensions] + [f"(node{d})" for d in dimensions]
    return ", ".join(sets)


def figures_sql(kind: PeriodKind | None, breakdowns: bool, source: str = statistics.TABLE) -> str:
    branches = [_branch(figure, on, condition, source) for figure, on, condition in _DATED]
    branches.append(_paused_branch(source))
    occurrences = "\n    UNION ALL\n    ".join(branches)
    grouping_flags = ", ".join(
        f"GROUPING({column}) AS all_{name}" if breakdowns else f"1 AS all_{name}"
        for name, column in DIMENSIONS.items()
    )
    dimension_columns = ", ".join(
        column if breakdowns else f"NULL::text AS {column}" for column in DIMENSIONS.values()
    )
    return f"""
WITH scope (node, institution) AS (
    SELECT * FROM unnest($1::text[], $2::text[])
),
occurrences (node, figure, on_date, case_id, category_business, category_reason, channel,
             final_outcome, on_time, handling_days, redress_fen, major, open_now, overdue_now) AS (
    {occurrences}
),
bucketed AS (
    SELECT *, {_bucket(kind)} AS bucket FROM occurrences
)
SELECT node, bucket, GROUPING(bucket) AS all_periods, {grouping_flags},
       {dimension_columns},
       {_aggregates()}
FROM bucketed
GROUP BY GROUPING SETS ({_grouping_sets(breakdowns)})
"""


# --- assembling the answer -------------------------------------------------------------------


def zero_figures() -> dict[str, Any]:
    figures: dict[str, Any] = dict.fromkeys(COUNT_FIGURES, 0)
    figures.update(redress_total_fen=0, handling_days_mean=None, handling_days_p90=None)
    return figures


def _figures(row: asyncpg.Record) -> dict[str, Any]:
    figures = {figure: row[figure] for figure in FIGURES}
    mean = figures["handling_days_mean"]
    figures["handling_days_mean"] = float(mean) if isinstance(mean, Decimal) else mean
    return figures


def _dimension(row: asyncpg.Record) -> str | None:
    for name in DIMENSIONS:
        if not row[f"all_{name}"]:
            return name
    return None


@dataclass
class _Block:
    """The figures of one node for one period (or the whole range), with breakdowns."""

    figures: dict[str, Any]
    breakdowns: dict[str, list[dict[str, Any]]]

    @classmethod
    def empty(cls, breakdowns: bool) -> "_Block":
        return cls(zero_figures(), {name: [] for name in DIMENSIONS} if breakdowns else {})


class FiguresByNode:
    """The query's rows as blocks: `block(node, period_key)` (None: the whole range)."""

    def __init__(self, rows: Sequence[asyncpg.Record], breakdowns: bool) -> None:
        self._breakdowns = breakdowns
        self._blocks: dict[tuple[str, date | None], _Block] = {}
        for row in rows:
            key = (row["node"], None if row["all_periods"] else row["bucket"])
            block = self._blocks.setdefault(key, _Block.empty(breakdowns))
            dimension = _dimension(row)
            if dimension is None:
                block.figures = _figures(row)
            else:
                value = row[DIMENSIONS[dimension]]
                block.breakdowns[dimension].append({"key": value, "figures": _figures(row)})

    def block(self, node: str, period_key: date | None) -> _Block:
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
    source: str = statistics.TABLE,
) -> FiguresByNode:
    """Figures per node of `scope`, a list of (node, institution counted under it) pairs."""
    nodes = [node for node, _ in scope]
    institutions = [institution for _, institution in scope]
    rows = await executor.fetch(
        figures_sql(kind, breakdowns, source), nodes, institutions, from_on, to_on, today
    )
    return FiguresByNode(rows, breakdowns)


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
    writer.writerow(CSV_HEADER)
    nodes = sorted(names, key=lambda node: (node != code, node))
    for node in nodes:
        for period in periods_between(from_on, to_on, kind):
            figures = by_node.block(node, period.key).figures
            writer.writerow(
                (
                    node,
                    names[node],
                    "true" if rollup else "false",
                    period.label,
                    period.starts_on.isoformat(),
                    period.ends_on.isoformat(),
                    *(_csv_value(figure, figures[figure]) for figure in FIGURES),
                )
            )
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
