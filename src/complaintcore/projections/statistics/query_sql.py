"""The SQL of one statistics question (`FiguresQuery`): the counts, and the handling days.

The figures of a range are summed from three sources, each row shaped like `_VALUES`:
- whole months inside the range: the monthly buckets (`buckets`), or when the range is one
  period, its whole calendar years from the yearly buckets and the months around them;
- a month the range covers only in part (its first or last): the facts rows dated on its days
  inside the range, as each figure dates them (`dating`); or, when the days outside it are
  fewer (or after today, so hold nothing yet), its bucket minus the facts rows dated on those
  days (`periods.RangeParts`);
- `open_now` and `overdue_now`, judged as of today: the facts rows of the cases received in
  the range that can still be open (two partial indexes find them), by the SQL mirrors of the
  domain's rules (projections/clock_sql.py); likewise `rectification_*`, the actions of the
  cases attributed in the range by their status as of today: the settled ones from the
  buckets' `actions_closed` and `actions_not_closed`, the others' corrections from the facts
  rows of the cases that settle after today (an index finds them; `dating`).
`paused` counts each case once a period: +1 for each distinct month (bucket) or day (facts)
with a pause, -1 for each consecutive pair of those lying in one period (`span_same`) or, for
the whole range, in it (`span_all`). With a range of whole months, the buckets hold it all;
otherwise the pauses of the range are read from the facts rows of the paused cases (slower:
every paused case of the scope; daily buckets would be the next step).
"""

from datetime import date
from typing import Any

from complaintcore.projections import clock_sql
from complaintcore.projections.statistics import buckets, dating, facts
from complaintcore.projections.statistics.periods import (
    PeriodKind,
    RangeParts,
    period_start_sql,
    whole_years,
)

_VALUES = (
    *buckets.MONTHLY_VALUES,
    "open_now",
    "overdue_now",
    "rectification_open",
    "rectification_closed",
    "rectification_overdue",
    "span_all",
    "span_same",
)

_TODAY = "$5::date"
_CLOCK = clock_sql.statistics_columns("f")
_MAY_BE_OPEN = clock_sql.is_open_indexed(_CLOCK, _TODAY)
_OPEN_AS_OF = clock_sql.is_open(_CLOCK, _TODAY)
_OVERDUE_AS_OF = clock_sql.overdue(_CLOCK, _TODAY)

# (the date figures count on, their values, a condition they share) for the facts rows
_FACTS_DATED = dating.dated_sql("f")
_AS_OF_TODAY_ON = f"f.{dating.AS_OF_TODAY_ON}"
_AS_OF_TODAY_UNLESS = f"f.{dating.AS_OF_TODAY_UNLESS} IS NULL"
_HANDLING_DAYS_ON = f"f.{dating.HANDLING_DAYS_ON}"
_PAUSED_ON = f"f.{dating.PAUSED_ON}"
_RECTIFICATION_ON = f"f.{dating.RECTIFICATION_ON}"
_RECTIFICATION_SETTLE_ON = f"f.{dating.RECTIFICATION_SETTLE_ON}"
_ACTION_STATUS = clock_sql.action_status("a.due_on", "a.closed_on", _TODAY)

_KEYS = (
    "category_business",
    "category_reason",
    "channel",
    "final_outcome",
    "root_cause",
    "responsible_institution",
)
_FACTS_KEYS = ", ".join(f"f.{key}" for key in _KEYS)
# the attribution's dimensions only for attributed cases (as `buckets.breakdown_keys`)
_UNPIVOT = (
    "CROSS JOIN LATERAL (SELECT * FROM (VALUES ('', ''), ('business', o.category_business),"
    " ('reason', o.category_reason), ('channel', o.channel),"
    " ('outcome', coalesce(o.final_outcome, '')), ('root_cause', o.root_cause),"
    " ('responsible_institution', o.responsible_institution)) AS v (dimension, key)"
    " WHERE v.key IS NOT NULL) AS d"
)


def _values(given: dict[str, str]) -> str:
    return ", ".join(f"{given.get(name, '0')}::bigint AS {name}" for name in _VALUES)


class FiguresQuery:
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

    def _between(self, column: str, first: date, last: date) -> str:
        return f"{column} BETWEEN {self._parameter(first)} AND {self._parameter(last)}"

    def _days(self, column: str, ranges: tuple[tuple[date, date], ...]) -> str:
        return "(" + " OR ".join(self._between(column, *days) for days in ranges) + ")"

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
            bucket = period_start_sql(self.kind)
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
            + f"\n    FROM (SELECT node, {period_start_sql(self.kind)} AS on_date,"
            f" {', '.join(_KEYS)}, {sums}"
            f"\n      FROM (\n        {occurrences}\n      ) AS x"
            f" GROUP BY {', '.join(str(n) for n in range(1, len(_KEYS) + 3))}"
            f"\n    ) AS o {_UNPIVOT}" + ("" if self.breakdowns else " WHERE d.dimension = ''")
        )

    def _facts_row(self, on_date: str, values: dict[str, str], where: str) -> str:
        join, in_scope = self._scoped("f.respondent_institution")
        return (
            f"SELECT s.node, {on_date} AS on_date, {_FACTS_KEYS}, {_values(values)}"
            f" FROM {facts.TABLE} f{join} WHERE {where}{in_scope}"
        )

    def counts_sql(self) -> str:
        sources = []
        if self.parts.months:
            # with partial months, every pause of the range is read from the facts rows instead
            from_facts = set() if self.parts.whole_months_only else {"paused"}
            names = ", ".join(
                "0" if name in from_facts else f"m.{name}" for name in buckets.MONTHLY_VALUES
            )
            for table, column, bounds in self._bucket_reads(buckets.MONTHLY, buckets.YEARLY):
                join, in_scope = self._scoped("m.institution")
                sources.append(
                    f"SELECT s.node, m.{column}, m.dimension, m.key, {names}, 0, 0, 0, 0, 0, 0, 0"
                    f" FROM {table} m{join} WHERE {self._between(f'm.{column}', *bounds)}"
                    f"{self._totals_only('m')}{in_scope}"
                )
        facts = []
        for ranges, sign in self._signed_days():
            for on_date, values, condition in _FACTS_DATED:
                where = self._days(on_date, ranges) + (f" AND {condition}" if condition else "")
                signed = {name: f"{sign} * ({value})" for name, value in values.items()}
                facts.append(self._facts_row(on_date, signed, where))
        facts.append(
            self._facts_row(
                _AS_OF_TODAY_ON,
                {"open_now": f"({_OPEN_AS_OF})::int", "overdue_now": f"({_OVERDUE_AS_OF})::int"},
                f"{_AS_OF_TODAY_ON} BETWEEN $3::date AND $4::date AND {_AS_OF_TODAY_UNLESS}"
                f" AND {_MAY_BE_OPEN}",
            )
        )
        facts.append(self._rectification_facts_row())
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

    def _rectification_facts_row(self) -> str:
        """The actions of the cases attributed in the range whose actions settle after today
        (`dating`), each counted by its status as of today (`clock_sql.action_status`) in place
        of what the buckets count for it (`actions_closed` as closed, `actions_not_closed` as
        overdue); an index finds the cases that settle after a day."""
        join, in_scope = self._scoped("f.respondent_institution")
        values = {
            "rectification_open": "r.open",
            "rectification_closed": "r.closed - f.actions_closed",
            "rectification_overdue": "r.overdue - f.actions_not_closed",
        }
        counts = ", ".join(
            f"count(*) FILTER (WHERE {_ACTION_STATUS} = '{status}') AS {status}"
            for status in ("open", "closed", "overdue")
        )
        return (
            f"SELECT s.node, {_RECTIFICATION_ON} AS on_date, {_FACTS_KEYS}, {_values(values)}"
            f" FROM {facts.TABLE} f{join}"
            f" CROSS JOIN LATERAL (SELECT {counts}"
            " FROM unnest(f.action_due_on, f.action_closed_on) AS a (due_on, closed_on)) AS r"
            f" WHERE {_RECTIFICATION_SETTLE_ON} > {_TODAY}"
            f" AND {_RECTIFICATION_ON} BETWEEN $3::date AND $4::date{in_scope}"
        )

    def _pause_spans(self) -> str:
        from_period = period_start_sql(self.kind, "p.from_month")
        same = f"{from_period} = {period_start_sql(self.kind, 'p.to_month')}"
        assert self.parts.months is not None
        first, last = self.parts.months
        join, in_scope = self._scoped("p.institution")
        return (
            "SELECT s.node, p.from_month, p.dimension, p.key, "
            + ", ".join("0" for _ in buckets.MONTHLY_VALUES)
            + f", 0, 0, 0, 0, 0, p.cases, CASE WHEN {same} THEN p.cases ELSE 0 END"
            f" FROM {buckets.PAUSE_SPANS} p{join}"
            f" WHERE p.from_month >= {self._parameter(first)}"
            f" AND p.to_month <= {self._parameter(last)}{self._totals_only('p')}{in_scope}"
        )

    def _paused_facts_row(self) -> str:
        """Each distinct pause day of the range +1, each consecutive pair of them -1 (spans)."""
        before_period = period_start_sql(self.kind, "p.before")
        same = f"{before_period} = {period_start_sql(self.kind, 'p.on_date')}"
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
            + f" FROM {facts.TABLE} f{join}"
            " CROSS JOIN LATERAL (SELECT on_date, lag(on_date) OVER (ORDER BY on_date) AS before"
            f" FROM (SELECT DISTINCT day FROM unnest({_PAUSED_ON}) AS day"
            " WHERE day BETWEEN $3::date AND $4::date) AS days (on_date)) AS p"
            f" WHERE cardinality({_PAUSED_ON}) > 0{in_scope}"
        )

    def _bucket_reads(self, monthly: str, yearly: str) -> list[tuple[str, str, tuple[date, date]]]:
        """The bucket tables the range's whole months are read from, with their date column and
        its bounds: with no period kind (the range is one period), whole calendar years from the
        `yearly` table and the months around them from the `monthly` one."""
        if self.parts.months is None:
            return []
        if self.kind is not None:
            return [(monthly, "month", self.parts.months)]
        years, months = whole_years(*self.parts.months)
        read = [(monthly, "month", run) for run in months]
        if years is not None:
            read.insert(0, (yearly, "year", years))
        return read

    def handling_days_sql(self) -> str:
        sources = []
        histograms = self._bucket_reads(buckets.HANDLING_DAYS, buckets.HANDLING_DAYS_YEARLY)
        for table, column, months in histograms:
            join, in_scope = self._scoped("h.institution")
            sources.append(
                f"SELECT s.node, h.{column}, h.dimension, h.key, h.handling_days, h.cases"
                f" FROM {table} h{join} WHERE {self._between(f'h.{column}', *months)}"
                f"{self._totals_only('h')}{in_scope}"
            )
        for ranges, sign in self._signed_days():
            join, in_scope = self._scoped("f.respondent_institution")
            sources.append(
                f"SELECT o.node, o.on_date, d.dimension, d.key, o.handling_days, {sign}"
                f" FROM (SELECT s.node, {period_start_sql(self.kind, _HANDLING_DAYS_ON)}"
                f" AS on_date, {_FACTS_KEYS}, f.handling_days"
                f" FROM {facts.TABLE} f{join}"
                f" WHERE {self._days(_HANDLING_DAYS_ON, ranges)} AND f.handling_days IS NOT NULL"
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
