"""Reads of the statistics projection: every figure of DOMAIN.md "Statistics" for a date range,
by period, per institution (alone or rolled up its subtree), broken down by business, cause,
channel and outcome.

Each figure counts the cases whose own date for it falls in the range or period (`dating`);
since issue 14 also the attribution's and follow-up's (`attributed`, `third_party`,
`follow_up{…}`, broken down `by_root_cause` and `by_responsible_institution`) and the
rectification actions open, closed and overdue as of `today`;
`open_now` and `overdue_now` are judged as of `today` (of the cases received in the period, those
still open, DOMAIN.md "Lifecycle", and those whose handling clock or review is overdue; the
domain's rules, in SQL in projections/clock_sql.py). The `outcome` breakdown is the case's final
outcome (after a review that changed it), `null` while undecided. Rolling up follows the
institution tree as it is when asked (a branch moved under another parent takes its history with
it); periods are calendar months, quarters and half-years, the first and last clipped to the
range (`periods`). Figures come from the facts rows and buckets the runner keeps, so they are as
of the projection's checkpoint (the route reports it). The SQL is built in `query_sql`; here it
is read, in one snapshot, and assembled into the answer.
"""

import asyncio
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from complaintcore.projections.statistics import buckets, facts
from complaintcore.projections.statistics.periods import PeriodKind, periods_between, range_parts
from complaintcore.projections.statistics.query_sql import FiguresQuery

# The counts of the buckets (what each counts on: `dating`), with those taken as of today after
# the decisions: the order of the answer's figures and of the data return's columns.
AS_OF_TODAY = ("open_now", "overdue_now")
_AFTER_DECISIONS = buckets.COUNTS.index("decided_late") + 1
_INTERNAL_CONTROL = buckets.COUNTS.index("attributed")
COUNT_FIGURES = (
    *buckets.COUNTS[:_AFTER_DECISIONS],
    *AS_OF_TODAY,
    *buckets.COUNTS[_AFTER_DECISIONS:_INTERNAL_CONTROL],
)
FIGURES = (*COUNT_FIGURES, "redress_total_fen", "handling_days_mean", "handling_days_p90")
# Internal control (issue 14): `attributed`, `third_party`, and two groups of figures, each
# group a nested object in the answer ("rectification": {"open": …}) and flat columns in the
# data return ("rectification_open"); `rectification` is judged as of today (`dating`).
GROUPED_FIGURES = {
    "rectification": ("open", "closed", "overdue"),
    "follow_up": ("reached", "satisfied", "basically_satisfied", "dissatisfied"),
}
# each figure of a group: the sum of these columns of the query's rows (the rectification's
# settled actions from the buckets, and the corrections of those not settled yet: `query_sql`)
_GROUPED_SOURCES = {
    ("rectification", "open"): ("rectification_open",),
    ("rectification", "closed"): ("actions_closed", "rectification_closed"),
    ("rectification", "overdue"): ("actions_not_closed", "rectification_overdue"),
    ("follow_up", "reached"): ("follow_up_reached",),
    ("follow_up", "satisfied"): ("satisfied",),
    ("follow_up", "basically_satisfied"): ("basically_satisfied",),
    ("follow_up", "dissatisfied"): ("dissatisfied",),
}
INTERNAL_CONTROL_FIGURES = ("attributed", "third_party")
CSV_FIGURES = (
    *FIGURES,
    *INTERNAL_CONTROL_FIGURES,
    *(f"{group}_{name}" for group, names in GROUPED_FIGURES.items() for name in names),
)
DIMENSIONS = {
    "business": "category_business",
    "reason": "category_reason",
    "channel": "channel",
    "outcome": "final_outcome",
    "root_cause": "root_cause",
    "responsible_institution": "responsible_institution",
}


# --- assembling the answer -------------------------------------------------------------------


def zero_figures() -> dict[str, Any]:
    figures: dict[str, Any] = dict.fromkeys(COUNT_FIGURES, 0)
    figures.update(redress_total_fen=0, handling_days_mean=None, handling_days_p90=None)
    figures.update(dict.fromkeys(INTERNAL_CONTROL_FIGURES, 0))
    for group, names in GROUPED_FIGURES.items():
        figures[group] = dict.fromkeys(names, 0)
    return figures


def flat_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with each group's flattened (`rectification_open`…): the data return's."""
    flat = {name: value for name, value in figures.items() if name not in GROUPED_FIGURES}
    for group, names in GROUPED_FIGURES.items():
        for name in names:
            flat[f"{group}_{name}"] = figures[group][name]
    return flat


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
    for name in COUNT_FIGURES:
        if name not in ("paused", *AS_OF_TODAY):
            figures[name] = row[name]
    span = row["span_all"] if row["all_periods"] else row["span_same"]
    figures["paused"] = row["paused"] - span
    figures["open_now"], figures["overdue_now"] = row["open_now"], row["overdue_now"]
    figures["redress_total_fen"] = row["redress_fen"]
    for name in INTERNAL_CONTROL_FIGURES:
        figures[name] = row[name]
    for (group, name), sources in _GROUPED_SOURCES.items():
        figures[group][name] = sum(row[source] for source in sources)
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
        checkpoint: int = 0,
    ) -> None:
        self.checkpoint = checkpoint  # the feed position the rows are as of (one snapshot)
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
    counts_query = FiguresQuery(parts, kind, breakdowns, one_node=one_node)
    counts_sql = counts_query.counts_sql()
    days_query = FiguresQuery(parts, kind, breakdowns, one_node=one_node)
    days_sql = days_query.handling_days_sql()
    counts_read = (counts_sql, *common, *counts_query.parameters)
    days_read = (days_sql, *common, *days_query.parameters)
    if isinstance(executor, asyncpg.Pool):
        (counts, days), checkpoint = await _read_from_pool(executor, counts_read, days_read)
    else:
        (counts, days), checkpoint = await _read_one_after_the_other(
            executor, counts_read, days_read
        )
    return FiguresByNode(
        counts, days, breakdowns, single_period=kind is None, checkpoint=checkpoint
    )


# A generic plan cannot pick the partial indexes for the day of judgement, and the groupings hash
# in memory rather than sort on disk.
_READ_SETTINGS = "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL work_mem = '64MB'"
Read = list[list[asyncpg.Record]]


async def _read_one_after_the_other(
    connection: asyncpg.Connection, *reads: tuple[Any, ...]
) -> tuple[Read, int]:
    """Each (statement, *arguments) in one snapshot, so the runner committing in between cannot
    split them (a savepoint when the caller has a transaction open), and the checkpoint of that
    snapshot."""
    snapshot = (
        connection.transaction()
        if connection.is_in_transaction()
        else connection.transaction(isolation="repeatable_read", readonly=True)
    )
    async with snapshot:
        await connection.execute(f"{_READ_SETTINGS}; {facts.LOCK_BEFORE_SNAPSHOT}")
        checkpoint = await facts.checkpoint_in(connection)
        return [await connection.fetch(*read) for read in reads], checkpoint


async def _read_from_pool(pool: asyncpg.Pool, *reads: tuple[Any, ...]) -> tuple[Read, int]:
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
) -> tuple[Read, int]:
    first, *others = connections
    async with first.transaction(isolation="repeatable_read", readonly=True):
        await first.execute(f"{_READ_SETTINGS}; {facts.LOCK_BEFORE_SNAPSHOT}")
        checkpoint = await facts.checkpoint_in(first)  # takes the snapshot
        snapshot = await first.fetchval("SELECT pg_export_snapshot()")
        async with AsyncExitStack() as transactions:
            for other in others:
                await transactions.enter_async_context(
                    other.transaction(isolation="repeatable_read", readonly=True)
                )
                # The snapshot's id is PostgreSQL's own text, not a value from the request.
                await other.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'; {_READ_SETTINGS}")
            fetches = (c.fetch(*read) for c, read in zip(connections, reads, strict=True))
            return list(await asyncio.gather(*fetches)), checkpoint


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
    pool: asyncpg.Pool | asyncpg.Connection,
    code: str,
    institutions: Sequence[str],
    from_on: date,
    to_on: date,
    kind: PeriodKind | None,
    today: date,
) -> tuple[dict[str, Any], int]:
    """The figures of `code` over `institutions` (its subtree when rolled up, else itself), and
    the feed position they are as of."""
    scope = [(code, institution) for institution in institutions]
    by_node = await query_figures(pool, scope, from_on, to_on, kind, today)
    periods = periods_between(from_on, to_on, kind)
    document = {
        "periods": [
            _period_document(p.label, p.starts_on, p.ends_on, by_node.block(code, p.key))
            for p in periods
        ],
        "total": _period_document("total", from_on, to_on, by_node.block(code, None)),
    }
    return document, by_node.checkpoint
