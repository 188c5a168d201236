"""Deadline arithmetic (Art. 18, 20, 23, 33, 43), as pure functions.

Counting: the day a period starts from is not counted (Civil Code Art. 201) and "within N days"
includes day N (Art. 43), so a period of N days from day D ends on D + N. Days are calendar days,
except the regulator's 7 working days (Art. 33).

- Handling period (Art. 18): anchor + 15, 30 or 60 days by extension level, plus the pause days
  since the anchor. The anchor is the day of receipt, or the day new facts and reasons restart
  the period (Art. 18 ¶3), which drops the earlier pause days.
- Pauses (Art. 18 ¶2, Art. 23): days from `paused_on` inclusive to `resumed_on` exclusive are not
  counted, and the due date moves out by that many days (DOMAIN.md): the due date the case had,
  not the period recomputed, so that the days a roll (below) gave it are kept, and a case paused
  on or before its due date has as many days left when it resumes as when it paused, whatever
  policy version is in force by then.
- Review (Art. 20): the request is in time when received on or before the decision notice's date
  + 30; the superior decides by the request's date + 30.
- Policy `roll_past_holidays` (Civil Code Art. 203, 期间的最后一日是法定休假日的，以法定休假日结束的
  次日为期间的最后一日): when on, a due date that is not a working day moves to the next working
  day. We read 法定休假日 as every rest day of the State Council schedule — announced holidays
  and ordinary weekends alike — because that is how PRC courts apply it (weekends are statutory
  rest days), and a weekend day made a working day by 调休 is not a rest day and does not move.
  The roll applies to every calendar-day due date: the handling period, the review window and
  the review period. A year missing from the calendar raises `CalendarYearMissing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from complaintcore.domain.calendar import WorkingDayCalendar
from complaintcore.domain.commands import RegulatorTransfer
from complaintcore.domain.events import (
    ClockPaused,
    ClockResumed,
    ComplaintDecided,
    ComplaintDeclined,
    ComplaintMerged,
    ComplaintReceived,
    ComplaintSupplemented,
    ComplaintWithdrawn,
    DeadlineExtended,
    Event,
    RegulatorTransferCheck,
    ReviewDecided,
    ReviewRequested,
)
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.domain.state import CaseStatus, Clock, ComplaintState, evolve

PERIOD_DAYS_BY_LEVEL = (15, 30, 60)  # Art. 18: base, first extension, second extension
MAX_LEVEL = len(PERIOD_DAYS_BY_LEVEL) - 1
REVIEW_WINDOW_DAYS = 30  # Art. 20: request within 30 days of receiving the decision
REVIEW_PERIOD_DAYS = 30  # Art. 20: review decided within 30 days of the request
REGULATOR_FORWARD_WORKING_DAYS = 7  # Art. 33


class ClockStatus(StrEnum):
    ON_TRACK = "on_track"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    MET = "met"
    MISSED = "missed"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ClockReading:
    """A clock as of a given day. `days_left` is None once the clock is met, missed or stopped;
    while paused it is frozen at the days that were left when the pause began."""

    status: ClockStatus
    due_on: date
    days_left: int | None


@dataclass(frozen=True)
class DeadlineChange:
    """One row of the audit timeline: an event that set, moved, paused or stopped a deadline.

    `change` is one of receipt, extension, pause, resume, restart, decision, stop,
    review_request, review_decision, review_stop (a withdrawal while the review is pending: the
    review's clock stops). `due_on` is the handling due date, or the review's due date on the
    three review rows. `paused_days` are the pause days then counting toward the due date.
    """

    version: int
    event_type: str
    change: str
    business_date: date
    due_on: date
    level: int
    paused_days: int
    on_time: bool | None = None


def period_days(level: int) -> int:
    """Days of the handling period at extension `level` 0, 1 or 2 (Art. 18)."""
    return PERIOD_DAYS_BY_LEVEL[level]


def pause_days(paused_on: date, resumed_on: date) -> int:
    """Days not counted for a pause: `paused_on` inclusive to `resumed_on` exclusive."""
    return (resumed_on - paused_on).days


def roll_due_date(day: date, calendar: WorkingDayCalendar, policy: InstitutionPolicy) -> date:
    """`day`, or with `roll_past_holidays` on the first working day on or after it."""
    if not policy.roll_past_holidays:
        return day
    return calendar.next_working_day(day)


def due_date(
    anchor_on: date,
    level: int,
    paused_days: int,
    calendar: WorkingDayCalendar,
    policy: InstitutionPolicy,
) -> date:
    """The handling due date: anchor + period of `level` + pause days, rolled per policy."""
    unrolled = anchor_on + timedelta(days=period_days(level) + paused_days)
    return roll_due_date(unrolled, calendar, policy)


def moved_due_date(
    due_on: date, days: int, calendar: WorkingDayCalendar, policy: InstitutionPolicy
) -> date:
    """`due_on` moved out by `days` not counted (a pause's), rolled per policy."""
    return roll_due_date(due_on + timedelta(days=days), calendar, policy)


def extended_due_date(
    clock: Clock, level: int, calendar: WorkingDayCalendar, policy: InstitutionPolicy
) -> date:
    """The due date an extension to `level` sets: the period's formula (anchor + period + days
    paused, rolled). A pause moves the due date it finds, keeping what earlier rolls past rest
    days gave it, so after pauses the formula may fall on or before the current due date; the
    extension then moves the current due date out by the days it adds rather than bring it in."""
    by_formula = due_date(clock.anchor_on, level, clock.paused_days, calendar, policy)
    if by_formula > clock.due_on:
        return by_formula
    added_days = period_days(level) - period_days(clock.level)
    return moved_due_date(clock.due_on, added_days, calendar, policy)


def clock_due_on(clock: Clock, calendar: WorkingDayCalendar, policy: InstitutionPolicy) -> date:
    """The due date of `clock`'s anchor, level and closed pauses (an open pause not included)."""
    return due_date(clock.anchor_on, clock.level, clock.paused_days, calendar, policy)


def review_window_ends_on(
    notified_on: date, calendar: WorkingDayCalendar, policy: InstitutionPolicy
) -> date:
    """The last day a review request is in time (Art. 20): decision notice + 30 days."""
    return roll_due_date(notified_on + timedelta(days=REVIEW_WINDOW_DAYS), calendar, policy)


def review_due_on(
    requested_on: date, calendar: WorkingDayCalendar, policy: InstitutionPolicy
) -> date:
    """The review decision's due date (Art. 20): request received + 30 days."""
    return roll_due_date(requested_on + timedelta(days=REVIEW_PERIOD_DAYS), calendar, policy)


def handling_days(received_on: date, notified_on: date, paused_days: int) -> int:
    """Receipt to decision notice in calendar days, every paused day excluded (statistics)."""
    return (notified_on - received_on).days - paused_days


def regulator_transfer_check(
    transfer: RegulatorTransfer, calendar: WorkingDayCalendar
) -> RegulatorTransferCheck:
    """Art. 33: the working days the regulator took to forward, and whether at most 7."""
    working_days = calendar.working_days_after(
        transfer.regulator_received_on, transfer.forwarded_on
    )
    return RegulatorTransferCheck(
        regulator_received_on=transfer.regulator_received_on,
        forwarded_on=transfer.forwarded_on,
        working_days=working_days,
        within_limit=working_days <= REGULATOR_FORWARD_WORKING_DAYS,
    )


def clock_status(state: ComplaintState, today: date, policy: InstitutionPolicy) -> ClockReading:
    """The handling clock as of `today` (Art. 18)."""
    clock, decision = state.clock, state.decision
    return handling_clock_reading(
        due_on=decision.due_on if decision is not None else clock.due_on,
        decided_on=decision.decided_on if decision is not None else None,
        on_time=decision.on_time if decision is not None else None,
        stopped_on=clock.stopped_on,
        paused_since=clock.paused_since,
        today=today,
        due_soon_days=policy.due_soon_days,
    )


def handling_clock_reading(
    *,
    due_on: date,
    decided_on: date | None,
    on_time: bool | None,
    stopped_on: date | None,
    paused_since: date | None,
    today: date,
    due_soon_days: int,
) -> ClockReading:
    """The handling clock as of `today` from the few dates a case keeps of it: met or missed
    once a decision was notified (`decided_on`, `on_time`); else stopped once withdrawn,
    declined or merged (`stopped_on`); else paused since `paused_since`, its days left frozen
    at the pause's start; else overdue past `due_on`, due soon with `due_soon_days` or fewer
    left, or on track.

    The one statement of the rule: `clock_status` reads a case's state with it, the case list
    a case_view row (projections/case_queries.py), and projections/clock_sql.py mirrors it in
    SQL for the queries that select cases by it."""
    if decided_on is not None:
        return ClockReading(ClockStatus.MET if on_time else ClockStatus.MISSED, due_on, None)
    if stopped_on is not None:
        return ClockReading(ClockStatus.STOPPED, due_on, None)
    if paused_since is not None:
        return ClockReading(ClockStatus.PAUSED, due_on, (due_on - paused_since).days)
    return _running(due_on, today, due_soon_days)


def review_clock_status(
    state: ComplaintState, today: date, policy: InstitutionPolicy
) -> ClockReading | None:
    """The review's own clock (Art. 20) as of `today`; None when no review was requested."""
    review = state.review
    if review is None:
        return None
    if review.decision is not None:
        met = ClockStatus.MET if review.decision.on_time else ClockStatus.MISSED
        return ClockReading(met, review.due_on, None)
    if state.status is not CaseStatus.UNDER_REVIEW:
        return ClockReading(ClockStatus.STOPPED, review.due_on, None)
    return _running(review.due_on, today, policy.due_soon_days)


def _running(due_on: date, today: date, due_soon_days: int) -> ClockReading:
    days_left = (due_on - today).days
    if days_left < 0:
        return ClockReading(ClockStatus.OVERDUE, due_on, days_left)
    if days_left <= due_soon_days:
        return ClockReading(ClockStatus.DUE_SOON, due_on, days_left)
    return ClockReading(ClockStatus.ON_TRACK, due_on, days_left)


def deadline_timeline(
    events: Sequence[Event], versions: Sequence[int] | None = None
) -> list[DeadlineChange]:
    """Every event of a case's stream that changed a deadline, each named by its version:
    `versions` as stored (default 1, 2, … in order; a stream with a version missing keeps the
    versions its rows hold, and its chain verdict names the gap).

    Read from the events alone: the due dates are those the events recorded.
    """
    timeline: list[DeadlineChange] = []
    state: ComplaintState | None = None
    numbered = versions if versions is not None else range(1, len(events) + 1)
    for version, event in zip(numbered, events, strict=True):
        state = evolve(state, event)
        change = _deadline_change(event, state)
        if change is None:
            continue
        kind, business_date, due_on, on_time = change
        timeline.append(
            DeadlineChange(
                version=version,
                event_type=event.event_type,
                change=kind,
                business_date=business_date,
                due_on=due_on,
                level=state.clock.level,
                paused_days=state.clock.paused_days,
                on_time=on_time,
            )
        )
    return timeline


_Change = tuple[str, date, date, bool | None]


def _deadline_change(event: Event, state: ComplaintState) -> _Change | None:
    due_on = state.clock.due_on
    match event:
        case ComplaintReceived():
            return ("receipt", event.received_on, due_on, None)
        case DeadlineExtended():
            return ("extension", event.notice.notified_on, due_on, None)
        case ClockPaused():
            return ("pause", event.paused_on, due_on, None)
        case ClockResumed():
            return ("resume", event.resumed_on, due_on, None)
        case ComplaintSupplemented(restarted=True):
            return ("restart", event.received_on, due_on, None)
        case ComplaintDecided():
            return ("decision", event.notice.notified_on, event.due_on, event.on_time)
        case ComplaintWithdrawn() if state.review is not None and state.review.decision is None:
            return ("review_stop", event.received_on, state.review.due_on, None)
        case ComplaintWithdrawn():
            return ("stop", event.received_on, due_on, None)
        case ComplaintDeclined():
            return ("stop", event.notice.notified_on, due_on, None)
        case ComplaintMerged():
            return ("stop", event.merged_on, due_on, None)
        case ReviewRequested():
            return ("review_request", event.received_on, event.due_on, None)
        case ReviewDecided():
            return ("review_decision", event.notice.notified_on, event.due_on, event.on_time)
    return None
