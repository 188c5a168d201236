"""Clock alerts: the clocks a case keeps, and which alert each reads as of a day.

A case has up to three kinds of clocks, kept in `alert_clocks` as its folded state last had them
(`clock_rows`, a pure function of the state):

- `handling` (Art. 18): `running`, `paused`, `stopped` (withdrawn, declined, merged) or
  `decided`, with its due date; the precedence of `domain.deadlines.handling_clock_reading`.
- `review` (Art. 20): `running` while the case is under review, else `decided` or `stopped`.
- `action` (each rectification action of the current attribution, by its id): `running` while
  some day can still find it overdue (not closed, or closed after its due date), else `closed`.

Only `running` clocks can alert. `judge` reads each as of a day with the domain's own rules:
`handling_clock_reading` (a running review clock reads as a running handling clock does:
overdue past its due date, due soon with the institution's `due_soon_days` or fewer days left)
and `action_status`. An alert is keyed by the case, the clock and its due date:
`case.overdue:<case>:<due_on>`, `review.due_soon:<case>:<due_on>`,
`rectification.overdue:<case>:<action id>:<due_on>`; a clock whose due date moves (an extension,
a resumed pause, new facts restarting the period, a new attribution) can alert again.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from complaintcore.domain.deadlines import ClockStatus, handling_clock_reading
from complaintcore.domain.policy import DueSoonDays
from complaintcore.domain.state import ActionStatus, CaseStatus, ComplaintState, action_status
from complaintcore.projections.alerts.model import Alert, AlertName

HANDLING = "handling"
REVIEW = "review"
ACTION = "action"
RUNNING = "running"


@dataclass(frozen=True)
class ClockRow:
    """One row of `alert_clocks`."""

    case_id: str
    clock: str
    action_id: str
    institution: str
    registration_no: str
    state: str
    due_on: date
    closed_on: date | None = None

    def record(self) -> tuple[str, str, str, str, str, str, date, date | None]:
        return (
            self.case_id,
            self.clock,
            self.action_id,
            self.institution,
            self.registration_no,
            self.state,
            self.due_on,
            self.closed_on,
        )


COLUMNS = (
    "case_id",
    "clock",
    "action_id",
    "institution",
    "registration_no",
    "state",
    "due_on",
    "closed_on",
)


def clock_rows(state: ComplaintState) -> list[ClockRow]:
    """The clocks of a case as of its folded `state`."""

    def row(
        clock: str,
        clock_state: str,
        due_on: date,
        action_id: str = "",
        closed_on: date | None = None,
    ) -> ClockRow:
        return ClockRow(
            state.id,
            clock,
            action_id,
            state.respondent_institution,
            state.registration_no,
            clock_state,
            due_on,
            closed_on,
        )

    clock, decision = state.clock, state.decision
    if decision is not None:
        rows = [row(HANDLING, "decided", decision.due_on)]
    elif clock.stopped_on is not None:
        rows = [row(HANDLING, "stopped", clock.due_on)]
    elif clock.paused_since is not None:
        rows = [row(HANDLING, "paused", clock.due_on)]
    else:
        rows = [row(HANDLING, RUNNING, clock.due_on)]
    review = state.review
    if review is not None:
        if review.decision is not None:
            review_state = "decided"
        elif state.status is CaseStatus.UNDER_REVIEW:
            review_state = RUNNING
        else:
            review_state = "stopped"
        rows.append(row(REVIEW, review_state, review.due_on))
    if state.attribution is not None:
        for action in state.attribution.actions:
            done = action.closed_on
            action_state = RUNNING if done is None or done > action.due_on else "closed"
            if state.personal_data_erased:
                # an erased case takes no command more, `rectify` included: asking for it
                # would be an alert nobody can act on (found by a review pass)
                action_state = "stopped"
            rows.append(row(ACTION, action_state, action.due_on, action.action_id, done))
    return rows


def judge(
    rows: Iterable[ClockRow],
    today: date,
    due_soon_days: DueSoonDays,
    occurred_at: dict[str, datetime] | None = None,
) -> list[Alert]:
    """The alerts the running clocks among `rows` read as of `today`, in the rows' order;
    `occurred_at`: per case, the moment the command that made the clock's state hold was
    recorded (None for a day's sweep: the sweep's moment)."""
    alerts = []
    for row in rows:
        if row.state != RUNNING:
            continue
        name, data, key = _reading(row, today, due_soon_days.of(row.institution))
        if name is None:
            continue
        alerts.append(
            Alert(
                event=name,
                case_id=row.case_id,
                institution=row.institution,
                registration_no=row.registration_no,
                occurred_at=(occurred_at or {}).get(row.case_id),
                data={**data, "judged_on": today},
                dedupe_key=f"{name}:{row.case_id}:{key}",
            )
        )
    return alerts


_Reading = tuple[AlertName | None, dict[str, object], str]
_NONE: _Reading = (None, {}, "")
_BY_STATUS = {
    HANDLING: {
        ClockStatus.DUE_SOON: AlertName.CASE_DUE_SOON,
        ClockStatus.OVERDUE: AlertName.CASE_OVERDUE,
    },
    REVIEW: {
        ClockStatus.DUE_SOON: AlertName.REVIEW_DUE_SOON,
        ClockStatus.OVERDUE: AlertName.REVIEW_OVERDUE,
    },
}


def _reading(row: ClockRow, today: date, soon_days: int) -> _Reading:
    if row.clock == ACTION:
        if action_status(row.due_on, row.closed_on, today) is not ActionStatus.OVERDUE:
            return _NONE
        data = {"action_id": row.action_id, "due_on": row.due_on, "days_left": _left(row, today)}
        return AlertName.RECTIFICATION_OVERDUE, data, f"{row.action_id}:{row.due_on}"
    reading = handling_clock_reading(
        due_on=row.due_on,
        decided_on=None,
        on_time=None,
        stopped_on=None,
        paused_since=None,
        today=today,
        due_soon_days=soon_days,
    )
    name = _BY_STATUS[row.clock].get(reading.status)
    if name is None:
        return _NONE
    data = {"due_on": row.due_on, "days_left": reading.days_left, "due_soon_days": soon_days}
    return name, data, str(row.due_on)


def _left(row: ClockRow, today: date) -> int:
    return (row.due_on - today).days
