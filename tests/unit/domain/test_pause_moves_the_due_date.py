"""A pause must move the due date out by its days, and an extension must lengthen the period,
also under `roll_past_holidays`.

DOMAIN.md "Deadlines" (Art. 18 ¶2, Art. 23): "Days from `paused_on` (inclusive) to `resumed_on`
(exclusive) are not counted: the due date moves out by that many days." And policy
`roll_past_holidays` (Civil Code Art. 203): "a calendar-day due date that falls on a public
holiday moves to the next working day" -- a roll can move a due date later, never earlier.

2026 (State Council notice): Spring Festival 02-15..02-23, Labour Day 05-01..05-05, National
Day 10-01..10-07, Sat 10-10 a 调休 working day.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from builders import (
    CALENDAR,
    Case,
    assigned_case,
    d,
    decision,
    extend,
    pause,
    resume,
    roll_policy,
)
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


def _case_whose_pauses_rolled_its_due_date_out_by_sixteen_days() -> Case:
    """Received Sat 01-31: due 02-15 (Spring Festival) rolled to Tue 02-24. Three appraisals,
    each resumed in time, move it out by their days, each landing on a rest day and rolled:
    66 days -> 05-01 (Labour Day) -> 05-06; 10 days -> Sat 05-16 -> 05-18; 5 days -> Sat 05-23
    -> Mon 05-25, where the formula (01-31 + 15 + 81 paused days) gives Fri 05-08."""
    case = assigned_case(d("2026-01-31"), policy=roll_policy())
    for paused_on, resumed_on in [
        ("2026-02-20", "2026-04-27"),
        ("2026-04-28", "2026-05-08"),
        ("2026-05-08", "2026-05-13"),
    ]:
        case.do(pause(d(paused_on)))
        case.do(resume(d(resumed_on)))
    assert case.state.due_on == d("2026-05-25")
    return case


def test_an_extension_never_brings_the_due_date_in() -> None:
    case = _case_whose_pauses_rolled_its_due_date_out_by_sixteen_days()
    case.do(extend(d("2026-05-13")))

    assert case.state.clock.level == 1
    assert case.state.due_on == d("2026-06-09")  # 05-25 + 15 = Tue 06-09, a working day


def test_a_case_extended_on_its_due_day_is_neither_overdue_nor_late_that_day() -> None:
    case = _case_whose_pauses_rolled_its_due_date_out_by_sixteen_days()
    case.do(extend(d("2026-05-25")))  # on the due date itself: in time

    assert clock_status(case.state, d("2026-05-25"), case.policy).status is ClockStatus.ON_TRACK
    case.do(decision(d("2026-05-25")))
    assert case.state.decision is not None
    assert case.state.decision.on_time


@pytest.mark.parametrize(
    ("received_on", "base_due_on", "extended_due_on"),
    [
        ("2026-01-31", "2026-02-24", "2026-03-02"),  # 02-15 in Spring Festival; +30: Mon 03-02
        ("2026-09-16", "2026-10-08", "2026-10-16"),  # 10-01 National Day; +30: Fri 10-16
    ],
)
def test_a_case_never_paused_is_extended_to_received_on_plus_30_whatever_its_roll(
    received_on: str, base_due_on: str, extended_due_on: str
) -> None:
    """A roll moves a due date that falls on a holiday; it gives the extended period nothing."""
    case = assigned_case(d(received_on), policy=roll_policy())
    assert case.state.due_on == d(base_due_on)
    case.do(extend(d(base_due_on)))

    assert case.state.due_on == d(extended_due_on)
    day_after = d(extended_due_on) + timedelta(days=1)
    assert clock_status(case.state, day_after, case.policy).status is ClockStatus.OVERDUE


@settings(max_examples=300, deadline=None)
@given(
    received_on=st.dates(date(2025, 1, 2), date(2026, 5, 1)),
    pauses=st.lists(st.tuples(st.integers(0, 15), st.integers(1, 30)), max_size=3),
    extensions=st.lists(st.integers(0, 30), min_size=1, max_size=2),
)
def test_an_extension_made_in_time_always_moves_the_due_date_out(
    received_on: date, pauses: list[tuple[int, int]], extensions: list[int]
) -> None:
    """Whatever pauses and rolls came before, an extension made on or before the due date
    (DOMAIN.md: "an overdue case cannot be extended") lengthens the period: the new due date is
    later than the one it replaces and never before the formula's."""
    case = assigned_case(received_on, policy=roll_policy())
    day = received_on
    for wait, paused_for in pauses:
        paused_on = day + timedelta(days=wait)
        if paused_on > case.state.due_on:
            break
        case.do(pause(paused_on))
        day = paused_on + timedelta(days=paused_for)
        case.do(resume(day))
    for wait in extensions:
        extended_on = day + timedelta(days=wait)
        if extended_on > case.state.due_on:
            return
        due_before = case.state.due_on
        case.do(extend(extended_on, approved=case.state.clock.level == 1))
        clock = case.state.clock
        by_formula = received_on + timedelta(days=(15, 30, 60)[clock.level] + clock.paused_days)
        assert case.state.due_on > due_before
        assert case.state.due_on >= by_formula
        if not clock.paused_days:  # no pause: the formula, rolled, and nothing more
            assert case.state.due_on == CALENDAR.next_working_day(by_formula)
        day = extended_on
