"""Business dates: never after today, never before the case's previous business date, and the
rules are judged at the business date, not at the wall clock (API.md conventions; Art. 28)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from builders import (
    Case,
    appeal,
    assigned_case,
    d,
    decided_case,
    decision,
    decline,
    extend,
    notice,
    pause,
    resume,
    review_decision,
    supplement,
    withdraw,
)

from complaintcore.domain import (
    AssignHandler,
    Command,
    NoticeSubject,
    NotifyComplainant,
)

RECEIVED_ON = d("2026-03-02")
PREVIOUS = d("2026-03-10")  # the case's last business date in these examples

DATED_COMMANDS: dict[str, Callable[[date], Command]] = {
    "extend": extend,
    "pause": pause,
    "supplement": lambda on: supplement(on, new_facts=True),
    "decide": decision,
    "notify": lambda on: NotifyComplainant(NoticeSubject.PROGRESS, notice(on)),
    "withdraw": withdraw,
    "decline": decline,
}
each_dated_command = pytest.mark.parametrize(
    "command_on", DATED_COMMANDS.values(), ids=DATED_COMMANDS.keys()
)


def case_with_previous_business_date() -> Case:
    case = assigned_case(RECEIVED_ON)
    case.do(supplement(PREVIOUS, new_facts=False))
    return case


@each_dated_command
def test_a_business_date_after_today_is_refused(command_on: Callable[[date], Command]) -> None:
    case = case_with_previous_business_date()

    refusal = case.refuse(command_on(d("2026-03-12")), today=d("2026-03-11"))

    assert refusal == "business_date_in_future"


@each_dated_command
def test_a_business_date_before_the_previous_one_is_refused(
    command_on: Callable[[date], Command],
) -> None:
    case = case_with_previous_business_date()

    refusal = case.refuse(command_on(d("2026-03-09")), today=d("2026-03-11"))

    assert refusal == "business_date_before_previous"


@each_dated_command
def test_the_same_command_entered_later_with_the_same_business_date_gives_the_same_events(
    command_on: Callable[[date], Command],
) -> None:
    on_the_day = case_with_previous_business_date()
    weeks_later = case_with_previous_business_date()
    command = command_on(PREVIOUS)

    assert on_the_day.do(command, today=PREVIOUS) == weeks_later.do(command, today=d("2026-04-30"))


def test_an_extension_entered_after_the_due_date_is_judged_at_its_notice_date() -> None:
    case = assigned_case(RECEIVED_ON)  # due 03-17

    case.do(extend(d("2026-03-16")), today=d("2026-03-20"))

    assert case.state.due_on == d("2026-04-01")


def test_a_resume_and_review_dates_are_checked_too() -> None:
    paused = assigned_case(RECEIVED_ON)
    paused.do(pause(d("2026-03-05")))
    assert paused.refuse(resume(d("2026-03-04")), today=d("2026-03-06")) == (
        "business_date_before_previous"
    )

    decided = decided_case(RECEIVED_ON, d("2026-03-16"))
    assert decided.refuse(appeal(d("2026-03-15")), today=d("2026-03-20")) == (
        "business_date_before_previous"
    )
    decided.do(appeal(d("2026-03-20")))
    assert decided.refuse(review_decision(d("2026-04-02")), today=d("2026-04-01")) == (
        "business_date_in_future"
    )


def test_an_undated_command_does_not_hold_back_a_later_entered_earlier_fact() -> None:
    """Assign happens today; a pause that began before it can still be recorded afterwards."""
    case = assigned_case(RECEIVED_ON)
    case.do(AssignHandler("h-zhou"), today=d("2026-03-10"))

    case.do(pause(d("2026-03-05")), today=d("2026-03-10"))

    assert case.state.clock.paused_since == d("2026-03-05")
