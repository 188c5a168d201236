"""Which date each statistic counts on: declared once here, read alike by the bucket writer
(`buckets`, in Python, row by row) and by the query builder (`query_sql`, in SQL over the facts
rows).

Each figure counts the cases whose *own* date for that figure falls in the range (or period),
whatever happened to them before or after:

- `received`: the receipt date. Merged duplicates are not counted (annual reports count "after
  merging duplicates"): they appear under `merged` only.
- `major`: the receipt date, merged duplicates excepted (like `received`).
- `decided`, `decided_on_time`, `decided_late`: the decision notice date (the clock stops at the
  notice); on time when the notice is dated on or before the due date.
- `redress_fen` (the answers' `redress_total_fen`): over the cases decided in the period, the
  final redress (a review that changed the outcome and set a new amount replaces the decision's).
- `handling_days_mean`, `handling_days_p90`: over the cases decided in the period, receipt to
  decision notice in calendar days with paused days excluded (`HANDLING_DAYS_ON`).
- `withdrawn`: the day the institution received the withdrawal. `declined`: the decline notice
  date. `merged`: the day the duplicate was merged.
- `extended_once`, `extended_twice`: the notice date of the first extension (to 30 days), of the
  second (to 60 days).
- `paused`: each pause's first day (`PAUSED_ON`); a case paused twice in one period counts once
  there (the buckets keep pause spans for that, see `buckets`).
- `reviews_requested`: the day the request was received. `reviews_changed`: the review decision's
  notice date, for reviews that changed the outcome.
- `open_now`, `overdue_now`: the receipt date, merged duplicates excepted (`AS_OF_TODAY_ON`),
  judged as of today by the domain's rules (their SQL: projections/clock_sql.py). No bucket can
  hold a figure that changes with the day, so only the queries count them.
- `attributed` (the cases of `by_root_cause` and `by_responsible_institution`), `third_party`
  (root cause `third_party`): the date of the current attribution. A case counts on the day its
  responsibility was settled, as a review's change counts on the review decision's notice and not
  on the first decision's: the figure is known only then, and a period already reported keeps its
  figures when later cases are attributed. A later `attribute` supersedes the earlier one, so a
  re-attributed case moves to the new date (and root cause), as the final outcome moves a case
  between outcomes. `by_root_cause` and `by_responsible_institution` break every figure down by
  the current attribution, like `by_outcome` by the final outcome; unattributed cases are left
  out of them.
- `follow_up_reached`, `satisfied`, `basically_satisfied`, `dissatisfied` (the answers'
  `follow_up{reached, …}`): the date of the latest follow-up.
- `rectification{open, closed, overdue}`: the actions of the cases attributed in the range
  (`RECTIFICATION_ON`), each judged as of today by `domain.state.action_status` (its SQL:
  projections/clock_sql.py `action_status`). Most actions keep their status whatever the day:
  done, or not done and past due. The buckets count those so, on the attribution's date
  (`actions_closed`, `actions_not_closed`); the cases whose actions settle after today
  (`facts.actions_settle_on`: an action due today or later, or done later) are read from their
  facts rows and judged one by one, in place of what the buckets counted for them.

`DATED` declares the counted figures; `dated_amounts` reads it for one facts row, `dated_sql`
writes it as SQL. tests/integration/projections/test_statistics_dating.py holds the two readings
equal on any facts rows; test_statistics_buckets.py there checks the figures read from buckets
and from facts rows against a count by hand.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from complaintcore.projections.statistics.facts import COLUMNS


@dataclass(frozen=True)
class Dated:
    """A figure counted on the date in the facts column `on`, when that date is set and: the
    facts column `unless` is null, the boolean facts column `when` is true, `when_not` is false
    (each None: no such condition). A case counts 1, or the facts column `amount` (null: 0)."""

    figure: str  # its name among the buckets' values (`buckets.MONTHLY_VALUES`)
    on: str
    unless: str | None = None
    when: str | None = None
    when_not: str | None = None
    amount: str | None = None


DATED = (
    Dated("received", "received_on", unless="merged_on"),
    Dated("major", "received_on", unless="merged_on", when="major"),
    Dated("decided", "decided_on"),
    Dated("decided_on_time", "decided_on", when="on_time"),
    Dated("decided_late", "decided_on", when_not="on_time"),
    Dated("redress_fen", "decided_on", amount="redress_fen"),
    Dated("withdrawn", "withdrawn_on"),
    Dated("declined", "declined_on"),
    Dated("merged", "merged_on"),
    Dated("extended_once", "first_extended_on"),
    Dated("extended_twice", "second_extended_on"),
    Dated("reviews_requested", "review_requested_on"),
    Dated("reviews_changed", "review_decided_on", when="review_changed"),
    Dated("attributed", "attributed_on"),
    Dated("third_party", "attributed_on", when="third_party"),
    Dated("follow_up_reached", "followed_up_on", when="follow_up_reached"),
    Dated("satisfied", "followed_up_on", when="satisfied"),
    Dated("basically_satisfied", "followed_up_on", when="basically_satisfied"),
    Dated("dissatisfied", "followed_up_on", when="dissatisfied"),
    Dated("actions_closed", "attributed_on", amount="actions_closed"),
    Dated("actions_not_closed", "attributed_on", amount="actions_not_closed"),
)
HANDLING_DAYS_ON = "decided_on"  # the handling days of the cases decided in a period
PAUSED_ON = "pause_dates"  # each pause's first day
AS_OF_TODAY_ON, AS_OF_TODAY_UNLESS = "received_on", "merged_on"  # open_now, overdue_now
RECTIFICATION_ON = "attributed_on"  # the actions of the cases attributed in a period
RECTIFICATION_SETTLE_ON = "actions_settle_on"  # judged as of today before it, counted after


def _by_date() -> dict[str, list[Dated]]:
    """`DATED` by the column of their date, in order of first use (both readings check a date
    once for all the figures it dates)."""
    by_date: dict[str, list[Dated]] = {}
    for dated in DATED:
        by_date.setdefault(dated.on, []).append(dated)
    return by_date


# --- read in Python: the bucket writer ---------------------------------------------------------

_AT = {column: index for index, column in enumerate(COLUMNS)}


def _at(column: str | None) -> int | None:
    return None if column is None else _AT[column]


# the declaration by column positions: a rebuild reads it for every case
_BY_POSITION = tuple(
    (
        _AT[on],
        tuple(
            (d.figure, _at(d.unless), _at(d.when), _at(d.when_not), _at(d.amount)) for d in figures
        ),
    )
    for on, figures in _by_date().items()
)


def dated_amounts(row: Sequence[Any]) -> list[tuple[str, date, int]]:
    """(figure, the date it counts on, amount) for each figure of `DATED` a facts row (in
    `facts.COLUMNS` order) counts; amounts of 0 left out."""
    found = []
    for on_at, figures in _BY_POSITION:
        on = row[on_at]
        if on is None:
            continue
        for figure, unless_at, when_at, when_not_at, amount_at in figures:
            if unless_at is not None and row[unless_at] is not None:
                continue
            if when_at is not None and not row[when_at]:
                continue
            if when_not_at is not None and (row[when_not_at] is None or row[when_not_at]):
                continue
            amount = 1 if amount_at is None else row[amount_at] or 0
            if amount:
                found.append((figure, on, amount))
    return found


# --- written in SQL: the query builder ---------------------------------------------------------


def dated_sql(alias: str = "f") -> list[tuple[str, dict[str, str], str | None]]:
    """`DATED` as SQL over the facts rows (aliased `alias`), one entry a date column in order of
    first use: the date, each figure's value on a row (0 when it does not count), and the
    condition every figure of that date shares (None: none), to read fewer rows."""
    prefix = f"{alias}." if alias else ""
    entries = []
    for on, figures in _by_date().items():
        conditions = [_conditions(dated, prefix) for dated in figures]
        shared = [c for c in conditions[0] if all(c in others for others in conditions)]
        values = {
            dated.figure: _value(dated, [c for c in own if c not in shared], prefix)
            for dated, own in zip(figures, conditions, strict=True)
        }
        entries.append((f"{prefix}{on}", values, " AND ".join(shared) or None))
    return entries


def _conditions(dated: Dated, prefix: str) -> list[str]:
    conditions = []
    if dated.unless is not None:
        conditions.append(f"{prefix}{dated.unless} IS NULL")
    if dated.when is not None:
        conditions.append(f"{prefix}{dated.when}")
    if dated.when_not is not None:
        conditions.append(f"NOT {prefix}{dated.when_not}")
    return conditions


def _value(dated: Dated, conditions: list[str], prefix: str) -> str:
    amount = "1" if dated.amount is None else f"coalesce({prefix}{dated.amount}, 0)"
    if not conditions:
        return amount
    condition = " AND ".join(conditions)
    if dated.amount is None:
        return f"coalesce({condition}, false)::int"
    return f"CASE WHEN coalesce({condition}, false) THEN {amount} ELSE 0 END"
