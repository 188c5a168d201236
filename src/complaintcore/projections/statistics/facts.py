"""The facts row of a case: one row a case, a pure function of its folded state (DOMAIN.md
"Statistics", Art. 26, 36).

A facts row holds the dates on which the case was received, decided, extended, paused, reviewed,
withdrawn, declined or merged, with its institution, category, channel, outcome, handling days
and redress; since issue 14 also its deciding handler, the staff it names, its current
attribution (date, root cause, responsible unit, actions' due and done dates) and its latest
follow-up. Every figure of the statistics is an aggregate of these rows, each figure counted
on its own date (`dating`). Because a row depends on the state alone, the row the runner writes
while following the feed and the row a rebuild writes from the whole history are equal by
construction, and writing the same case twice (a batch replayed after a crash) overwrites rather
than counts again.

No personal data is kept here (Art. 22): statistics never need it.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import asyncpg

from complaintcore.domain.commands import ReviewOutcome, RootCause, Satisfaction
from complaintcore.domain.state import ActionRecord, CaseStatus, ComplaintState

NAME = "statistics"
TABLE = "case_statistics"

COLUMNS = (
    "case_id",
    "version",
    "respondent_institution",
    "channel",
    "category_business",
    "category_reason",
    "major",
    "status",
    "received_on",
    "due_on",
    "paused_now",
    "clock_stopped_on",
    "decided_on",
    "decision_outcome",
    "final_outcome",
    "on_time",
    "handling_days",
    "redress_fen",
    "first_extended_on",
    "second_extended_on",
    "pause_dates",
    "review_requested_on",
    "review_due_on",
    "review_decided_on",
    "review_changed",
    "review_window_ends_on",
    "withdrawn_on",
    "declined_on",
    "merged_on",
    # internal control (DOMAIN.md "Responsibility…", "Follow-up", "Staff figures")
    "handler_id",
    "respondent_staff",
    "attributed_on",
    "root_cause",
    "responsible_institution",
    "third_party",
    "action_due_on",
    "action_closed_on",
    "followed_up_on",
    "follow_up_reached",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    # the actions as the statistics' buckets count them (`dating`): closed, not closed, and the
    # first day from which that is their status whatever the day (closed ones done, the others
    # overdue)
    "actions_closed",
    "actions_not_closed",
    "actions_settle_on",
)


def statistics_row(state: ComplaintState) -> tuple[Any, ...]:
    """The case's facts row, in `COLUMNS` order."""
    decision, review = state.decision, state.review
    review_decision = review.decision if review else None
    # most cases were never extended, paused or attributed, and name no staff: the empty ones
    # are given without a comprehension (a rebuild makes a row a case)
    extended_on = (
        {extension.level: extension.notice.notified_on for extension in state.extensions}
        if state.extensions
        else {}
    )
    final_outcome = state.final_outcome
    return (
        state.id,
        state.version,
        state.respondent_institution,
        state.channel,
        state.category.business,
        state.category.reason,
        state.major,
        str(state.status),
        state.received_on,
        state.clock.due_on,
        state.clock.is_paused,
        state.clock.stopped_on,
        decision.decided_on if decision else None,
        str(decision.outcome) if decision else None,
        str(final_outcome) if final_outcome else None,
        decision.on_time if decision else None,
        decision.handling_days if decision else None,
        final_redress_fen(state),
        extended_on.get(1),
        extended_on.get(2),
        [pause.paused_on for pause in state.pauses] if state.pauses else [],
        review.requested_on if review else None,
        review.due_on if review else None,
        review_decision.notice.notified_on if review_decision else None,
        review_decision.outcome is ReviewOutcome.CHANGED if review_decision else None,
        decision.review_window_ends_on if decision else None,
        state.withdrawal.received_on if state.withdrawal else None,
        state.decline.notice.notified_on if state.decline else None,
        state.clock.stopped_on if state.status is CaseStatus.MERGED else None,
        *internal_control_facts(state),
    )


def internal_control_facts(state: ComplaintState) -> tuple[Any, ...]:
    """The facts of attribution, rectification and follow-up, and the staff a case names:
    `handler_id` is the deciding handler (None before a decision); `third_party` is whether the
    root cause is a third party (the name is personal data and goes with erasure, the root cause
    stays); the actions' due and done dates are kept in two parallel arrays, their status being
    judged as of today at query time (`domain.state.action_status`, in SQL
    `clock_sql.action_status`)."""
    attribution, follow_up = state.attribution, state.follow_up
    actions = attribution.actions if attribution else ()
    satisfaction = follow_up.satisfaction if follow_up else None
    closed = sum(action.closed_on is not None for action in actions) if actions else 0
    return (
        state.decision.handler_id if state.decision else None,
        sorted({staff.staff_id for staff in state.respondent_staff})
        if state.respondent_staff
        else [],
        attribution.attributed_on if attribution else None,
        str(attribution.root_cause) if attribution else None,
        attribution.responsible_institution if attribution else None,
        attribution.root_cause is RootCause.THIRD_PARTY if attribution else None,
        [action.due_on for action in actions] if actions else [],
        [action.closed_on for action in actions] if actions else [],
        follow_up.followed_up_on if follow_up else None,
        follow_up.reached if follow_up else None,
        satisfaction is Satisfaction.SATISFIED if follow_up else None,
        satisfaction is Satisfaction.BASICALLY_SATISFIED if follow_up else None,
        satisfaction is Satisfaction.DISSATISFIED if follow_up else None,
        closed,
        len(actions) - closed,
        actions_settle_on(actions) if actions else None,
    )


def actions_settle_on(actions: Sequence[ActionRecord]) -> date:
    """The first day from which every action's status (`domain.state.action_status`) is the one
    it keeps until the case changes again: closed for those done (from their done date), overdue
    for the others (from the day after their due date). The statistics' buckets count them so;
    a question judged before that day reads the case's actions one by one (`query_sql`)."""
    return max(
        action.closed_on if action.closed_on is not None else action.due_on + timedelta(days=1)
        for action in actions
    )


def final_redress_fen(state: ComplaintState) -> int | None:
    """The redress the complainant ends with: the review's new amount when a review changed the
    outcome and set one, else the decision's; None before a decision."""
    if state.decision is None:
        return None
    review_decision = state.review.decision if state.review else None
    if (
        review_decision is not None
        and review_decision.outcome is ReviewOutcome.CHANGED
        and review_decision.new_redress_fen is not None
    ):
        return review_decision.new_redress_fen
    return state.decision.redress_fen


def upsert_sql(table: str, columns: tuple[str, ...] = COLUMNS) -> str:
    """An upsert of one row keyed by its first column into `table`."""
    key, *rest = columns
    return (
        f"INSERT INTO {table} ({', '.join(columns)})"
        f" VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))})"
        f" ON CONFLICT ({key}) DO UPDATE SET"
        f" {', '.join(f'{column} = EXCLUDED.{column}' for column in rest)}"
    )


# Taken by every read of the figures before its snapshot, as a rebuild's swap takes the table
# before it replaces the bucket tables: a read meeting a swap waits for it and then sees the
# swapped tables and their checkpoint together; the two never deadlock.
LOCK_BEFORE_SNAPSHOT = f"LOCK TABLE {TABLE} IN ACCESS SHARE MODE"


async def checkpoint_in(connection: asyncpg.Connection) -> int:
    """The feed position the facts (and their sums) are as of, in the caller's snapshot: the
    runner moves it in the transaction that writes the rows, so read in the snapshot the
    figures are read in, it names exactly the events they count."""
    return await connection.fetchval(
        "SELECT position FROM projection_checkpoints WHERE name = $1", NAME
    )
