"""A pause must move the due date out by its days, also under `roll_past_holidays`.

DOMAIN.md "Deadlines" (Art. 18 ¶2, Art. 23): "Days from `paused_on` (inclusive) to `resumed_on`
(exclusive) are not counted: the due date moves out by that many days." And policy
`roll_past_holidays` (Civil Code Art. 203): "a calendar-day due date that falls on a public
holiday moves to the next working day" -- a roll can move a due date later, never earlier.

2026 (State Council notice): National Day 10-01..10-07, Sat 10-10 a 调休 working day.
"""

from __future__ import annotations

from datetime import date, timedelta

from builders import assigned_case, d, decision, pause, resume, roll_policy
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import ClockStatus, clock_status


def test_a_pause_started_on_the_rolled_due_day_does_not_leave_the_case_overdue() -> None:
    # Received 09-16: 09-16 + 15 = Thu 10-01 (National Day), rolled to Thu 10-08.
    case = assigned_case(d("2026-09-16"), policy=roll_policy())
    assert case.state.due_on == d("2026-10-08")
    # Appraisal from the due day itself (allowed: on or before the due date), with 0 days left.
    case.do(pause(d("2026-10-08")))
    assert clock_status(case.state, d("2026-10-08"), case.policy).days_left == 0
    # One day paused (10-08 inclusive to 10-09 exclusive): the due date moves out by one day.
    case.do(resume(d("2026-10-09")))

    assert case.state.due_on >= d("2026-10-09")
    assert clock_status(case.state, d("2026-10-09"), case.policy).status is not ClockStatus.OVERDUE


def test_a_decision_notified_the_day_after_a_one_day_pause_from_the_due_day_is_in_time() -> None:
    case = assigned_case(d("2026-09-16"), policy=roll_policy())
    case.do(pause(d("2026-10-08")))
    case.do(resume(d("2026-10-09")))
    case.do(decision(d("2026-10-09")))

    assert case.state.decision is not None
    assert case.state.decision.on_time


@settings(max_examples=300, deadline=None)
@given(
    received_on=st.dates(date(2025, 1, 2), date(2026, 9, 30)),
    pause_offset=st.integers(0, 40),
    paused_for=st.integers(1, 20),
)
def test_a_case_paused_in_time_is_never_overdue_on_the_day_it_resumes(
    received_on: date, pause_offset: int, paused_for: int
) -> None:
    """A pause started on or before the due date stops the clock (DOMAIN.md: "Pause (clock
    stop)"; its days "are not counted: the due date moves out by that many days"), so the day
    it resumes is never past the due date: a paused day cannot be the period's last day."""
    case = assigned_case(received_on, policy=roll_policy())
    due_before = case.state.due_on
    paused_on = received_on + timedelta(days=pause_offset)
    if paused_on > due_before:
        return
    case.do(pause(paused_on))
    resumed_on = paused_on + timedelta(days=paused_for)
    case.do(resume(resumed_on))

    assert case.state.due_on >= resumed_on, (due_before, paused_on, resumed_on, case.state.due_on)
    assert clock_status(case.state, resumed_on, case.policy).status is not ClockStatus.OVERDUE
