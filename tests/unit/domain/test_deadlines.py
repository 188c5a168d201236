"""The handling deadline (Art. 18, 23, 43 of CBIRC Order 2020 No. 3; Civil Code Art. 201, 203).

Worked examples with their dates written out. 2026 holidays used below (State Council notice):
Labour Day 05-01..05-05 (Sat 05-09 works); Mid-autumn 09-25..09-27; National Day 10-01..10-07,
with Sun 09-20 and Sat 10-10 made working days (调休).
"""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar
import pytest
from builders import (
    CALENDAR,
    HANDLER,
    OTHER_HANDLER,
    RESPONDENT_STAFF_ID,
    Case,
    appeal,
    assigned_case,
    d,
    decided_case,
    decision,
    extend,
    pause,
    receive,
    resume,
    roll_policy,
    supplement,
    withdraw,
)
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.domain import (
    DEFAULT_POLICY,
    Approval,
    ApproverRole,
    AssignHandler,
    ClockReading,
    ClockStatus,
    Command,
    DeadlineChange,
    ExtendDeadline,
    MergeComplaint,
    PauseKind,
    RecuseHandler,
    RespondentStaff,
    WithdrawComplaint,
    clock_status,
    deadline_timeline,
    due_date,
    review_clock_status,
)

RECEIVED_ON = d("2026-03-02")  # a Monday


def run(received_on: date, steps: list[Command], roll: bool = False) -> Case:
    case = assigned_case(received_on, policy=roll_policy() if roll else DEFAULT_POLICY)
    for step in steps:
        case.do(step)
    return case


@pytest.mark.parametrize(
    ("article", "received_on", "steps", "due_on", "level", "paused_days"),
    [
        # Receipt day not counted (Civil Code Art. 201), day 15 included (Art. 43).
        ("Art. 18", "2026-03-02", [], "2026-03-17", 0, 0),
        ("Art. 18", "2026-03-02", [extend(d("2026-03-10"))], "2026-04-01", 1, 0),
        (
            "Art. 18",
            "2026-03-02",
            [extend(d("2026-03-10")), extend(d("2026-03-30"), approved=True)],
            "2026-05-01",
            2,
            0,
        ),
        # Appraisal 03-05 (counted from, inclusive) to 03-12 (exclusive): 7 days not counted.
        (
            "Art. 18",
            "2026-03-02",
            [pause(d("2026-03-05")), resume(d("2026-03-12"))],
            "2026-03-24",
            0,
            7,
        ),
        # Mediation agreed and ended the same day: nothing to add.
        (
            "Art. 23",
            "2026-03-02",
            [pause(d("2026-03-05"), PauseKind.MEDIATION), resume(d("2026-03-05"))],
            "2026-03-17",
            0,
            0,
        ),
        # Pause days survive an extension: 03-02 + 30 + 7.
        (
            "Art. 18",
            "2026-03-02",
            [pause(d("2026-03-05")), resume(d("2026-03-12")), extend(d("2026-03-20"))],
            "2026-04-08",
            1,
            7,
        ),
        # New facts and reasons restart the period from their day; earlier pauses drop out.
        (
            "Art. 18",
            "2026-03-02",
            [
                pause(d("2026-03-05")),
                resume(d("2026-03-12")),
                supplement(d("2026-03-20"), new_facts=True),
            ],
            "2026-04-04",
            0,
            0,
        ),
        # A restart keeps the level reached: 03-20 + 30.
        (
            "Art. 18",
            "2026-03-02",
            [extend(d("2026-03-10")), supplement(d("2026-03-20"), new_facts=True)],
            "2026-04-19",
            1,
            0,
        ),
        # The same complaint repeated without new facts is merged: clock unchanged.
        (
            "Art. 18",
            "2026-03-02",
            [supplement(d("2026-03-10"), new_facts=False)],
            "2026-03-17",
            0,
            0,
        ),
        # New facts after the period ran out (due 03-17) restart nothing: only "within the period".
        (
            "Art. 18",
            "2026-03-02",
            [supplement(d("2026-03-18"), new_facts=True)],
            "2026-03-17",
            0,
            0,
        ),
        # New facts during a pause: due 03-10 + 15 = 03-25, and the pause counts from 03-10,
        # so resuming on 03-15 adds 5 days.
        (
            "Art. 18",
            "2026-03-02",
            [
                pause(d("2026-03-05")),
                supplement(d("2026-03-10"), new_facts=True),
                resume(d("2026-03-15")),
            ],
            "2026-03-30",
            0,
            5,
        ),
    ],
)
def test_the_due_date_follows_receipt_extensions_pauses_and_new_facts(
    article: str,
    received_on: str,
    steps: list[Command],
    due_on: str,
    level: int,
    paused_days: int,
) -> None:
    state = run(d(received_on), steps).state

    assert (state.due_on, state.level, state.clock.paused_days) == (d(due_on), level, paused_days)


@pytest.mark.parametrize(
    ("received_on", "steps", "due_without_roll", "due_with_roll"),
    [
        # 09-16 + 15 = Thu 10-01, National Day: rolled to Thu 10-08, the first working day.
        ("2026-09-16", [], "2026-10-01", "2026-10-08"),
        ("2026-09-22", [], "2026-10-07", "2026-10-08"),
        # Received during Mid-autumn: 09-25 + 15 = Sat 10-10, a 调休 working day: no roll.
        ("2026-09-25", [], "2026-10-10", "2026-10-10"),
        # 10-02 + 15 = Sat 10-17, an ordinary weekend day: a rest day (法定休假日) too -> Mon 10-19.
        ("2026-10-02", [], "2026-10-17", "2026-10-19"),
        # Second extension to 03-02 + 60 = 05-01, Labour Day: rolled to Wed 05-06.
        (
            "2026-03-02",
            [extend(d("2026-03-10")), extend(d("2026-03-30"), approved=True)],
            "2026-05-01",
            "2026-05-06",
        ),
        # Due 09-16; an appraisal 09-10..09-25 adds 15 days: 10-01 -> 10-08.
        (
            "2026-09-01",
            [pause(d("2026-09-10")), resume(d("2026-09-25"))],
            "2026-10-01",
            "2026-10-08",
        ),
    ],
)
def test_roll_past_holidays_moves_a_due_date_on_a_rest_day_to_the_next_working_day(
    received_on: str, steps: list[Command], due_without_roll: str, due_with_roll: str
) -> None:
    """Civil Code Art. 203, policy `roll_past_holidays` (default off: Art. 43 counts calendar
    days and the regulation itself never rolls)."""
    assert run(d(received_on), steps, roll=False).state.due_on == d(due_without_roll)
    assert run(d(received_on), steps, roll=True).state.due_on == d(due_with_roll)


def test_the_2026_national_day_schedule_is_the_one_the_examples_assume() -> None:
    holiday = [d("2026-10-01") + timedelta(days=offset) for offset in range(7)]

    assert all(CALENDAR.is_public_holiday(day) for day in holiday)
    assert CALENDAR.is_working_day(d("2026-10-10"))  # Saturday made a working day
    assert CALENDAR.is_working_day(d("2026-09-20"))  # Sunday made a working day
    assert not CALENDAR.is_working_day(d("2026-10-17"))  # an ordinary Saturday


@given(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 10, 31)), st.sampled_from([0, 1, 2])
)
def test_a_rolled_due_date_is_the_first_working_day_on_or_after_the_calendar_due_date(
    received_on: date, level: int
) -> None:
    unrolled = due_date(received_on, level, 0, CALENDAR, DEFAULT_POLICY)
    rolled = due_date(received_on, level, 0, CALENDAR, roll_policy())

    # chinese_calendar is the independent oracle of the State Council schedule.
    assert chinese_calendar.is_workday(rolled)
    skipped = [unrolled + timedelta(days=offset) for offset in range((rolled - unrolled).days)]
    assert not any(chinese_calendar.is_workday(day) for day in skipped)


# --- refusals ------------------------------------------------------------------------------------

HEAD_OFFICE_REFUSED_APPROVAL = ExtendDeadline(
    reason="情况特别复杂",
    notice=extend(d("2026-03-30")).notice,
    approval=Approval("m-qian", ApproverRole.SUPERIOR_INSTITUTION),
)


@pytest.mark.parametrize(
    ("article", "steps", "command", "refusal"),
    [
        # An extension is made on or before the due date (03-17).
        ("Art. 18", [], extend(d("2026-03-18")), "case_overdue"),
        # The second extension needs the superior's or a head-office senior manager's approval.
        (
            "Art. 18",
            [extend(d("2026-03-10"))],
            extend(d("2026-03-30")),
            "extension_requires_approval",
        ),
        (
            "Art. 18",
            [extend(d("2026-03-10")), extend(d("2026-03-30"), approved=True)],
            extend(d("2026-04-10"), approved=True),
            "extension_limit_reached",
        ),
        # No extension while the clock is paused: the notice could not name a due date.
        ("Art. 18", [pause(d("2026-03-05"))], extend(d("2026-03-06")), "case_paused"),
        ("Art. 23", [pause(d("2026-03-05"))], pause(d("2026-03-06")), "pause_already_open"),
        ("Art. 23", [], resume(d("2026-03-06")), "case_not_paused"),
        # A pause cannot revive a period that has run out.
        ("Art. 18", [], pause(d("2026-03-18")), "case_overdue"),
        # No decision while paused.
        ("Art. 18", [pause(d("2026-03-05"))], decision(d("2026-03-06")), "case_paused"),
    ],
)
def test_deadline_commands_are_refused_when_the_clock_does_not_allow_them(
    article: str, steps: list[Command], command: Command, refusal: str
) -> None:
    case = run(RECEIVED_ON, steps)

    assert case.refuse(command) == refusal


def test_a_head_office_has_no_superior_institution_to_approve_its_second_extension() -> None:
    case = assigned_case(RECEIVED_ON, superior=None)
    case.do(extend(d("2026-03-10")))

    assert case.refuse(HEAD_OFFICE_REFUSED_APPROVAL) == "extension_requires_approval"
    case.do(extend(d("2026-03-30"), approved=True))  # a head-office senior manager approves
    assert case.state.level == 2


@pytest.mark.parametrize(
    "approver",
    [
        pytest.param(RESPONDENT_STAFF_ID, id="Art. 17: the staff member complained of"),
        pytest.param("h-recused", id="Art. 17: a handler who recused"),
        pytest.param(OTHER_HANDLER, id="Art. 18: the handler, approving their own extension"),
    ],
)
def test_no_one_with_an_interest_in_the_case_approves_its_second_extension(
    approver: str,
) -> None:
    """Found by a review pass: the staff member the complaint names was recorded as the
    superior's approval of its second extension, and the case ran to day 60."""
    case = Case()
    case.do(receive(RECEIVED_ON, respondent_staff=(RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),)))
    case.do(AssignHandler("h-recused"), today=RECEIVED_ON)
    case.do(RecuseHandler("h-recused", "与投诉人系亲属"), today=RECEIVED_ON)
    case.do(AssignHandler(OTHER_HANDLER), today=RECEIVED_ON)
    case.do(extend(d("2026-03-10")))
    approved_by = ExtendDeadline(
        reason="情况特别复杂",
        notice=extend(d("2026-03-30")).notice,
        approval=Approval(approver, ApproverRole.SUPERIOR_INSTITUTION),
    )

    assert case.refuse(approved_by) == "extension_requires_approval"
    case.do(extend(d("2026-03-30"), approved=True))  # anyone else may
    assert case.state.level == 2


def test_an_extension_on_the_due_date_itself_is_in_time() -> None:
    case = run(RECEIVED_ON, [extend(d("2026-03-17"))])

    assert case.state.due_on == d("2026-04-01")


# --- clock status --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "status", "days_left"),
    [
        ("2026-03-02", ClockStatus.ON_TRACK, 15),
        ("2026-03-13", ClockStatus.ON_TRACK, 4),
        ("2026-03-14", ClockStatus.DUE_SOON, 3),  # policy: 3 days or less left
        ("2026-03-17", ClockStatus.DUE_SOON, 0),  # the due date itself is still in time
        ("2026-03-18", ClockStatus.OVERDUE, -1),
    ],
)
def test_an_open_case_is_on_track_due_soon_or_overdue(
    today: str, status: ClockStatus, days_left: int
) -> None:
    state = run(RECEIVED_ON, []).state

    assert clock_status(state, d(today), DEFAULT_POLICY) == ClockReading(
        status, d("2026-03-17"), days_left
    )


def test_a_paused_clock_keeps_the_days_left_when_it_stopped() -> None:
    state = run(RECEIVED_ON, [pause(d("2026-03-05"))]).state

    reading = clock_status(state, d("2026-04-30"), DEFAULT_POLICY)

    assert reading == ClockReading(ClockStatus.PAUSED, d("2026-03-17"), 12)


@pytest.mark.parametrize(
    ("decided_on", "status"),
    [("2026-03-17", ClockStatus.MET), ("2026-03-18", ClockStatus.MISSED)],
)
def test_a_decided_case_met_its_deadline_iff_notified_by_the_due_date(
    decided_on: str, status: ClockStatus
) -> None:
    state = decided_case(RECEIVED_ON, d(decided_on)).state

    assert clock_status(state, d("2026-06-01"), DEFAULT_POLICY).status is status


@pytest.mark.parametrize(
    "exit_command",
    [WithdrawComplaint(d("2026-03-05")), MergeComplaint("case-0")],
)
def test_a_withdrawn_or_merged_case_has_a_stopped_clock(exit_command: Command) -> None:
    case = run(RECEIVED_ON, [])
    case.do(exit_command, today=d("2026-03-05"))

    assert clock_status(case.state, d("2026-03-30"), DEFAULT_POLICY).status is ClockStatus.STOPPED


def test_the_review_has_its_own_clock() -> None:
    case = decided_case(RECEIVED_ON, d("2026-03-16"))
    case.do(appeal(d("2026-04-01")))

    assert review_clock_status(case.state, d("2026-04-20"), DEFAULT_POLICY) == ClockReading(
        ClockStatus.ON_TRACK, d("2026-05-01"), 11
    )
    assert review_clock_status(case.state, d("2026-05-02"), DEFAULT_POLICY) == ClockReading(
        ClockStatus.OVERDUE, d("2026-05-01"), -1
    )


# --- the regulator's timeline --------------------------------------------------------------------


def test_the_timeline_lists_every_event_that_changed_the_deadline() -> None:
    case = Case()
    case.do(receive(RECEIVED_ON))
    case.do(AssignHandler(HANDLER), today=RECEIVED_ON)
    case.do(extend(d("2026-03-10")))
    case.do(pause(d("2026-03-12")))
    case.do(resume(d("2026-03-19")))
    case.do(supplement(d("2026-03-20"), new_facts=False))
    case.do(supplement(d("2026-03-25"), new_facts=True))
    case.do(decision(d("2026-04-20")))

    assert deadline_timeline(case.events) == [
        DeadlineChange(1, "ComplaintReceived", "receipt", d("2026-03-02"), d("2026-03-17"), 0, 0),
        DeadlineChange(3, "DeadlineExtended", "extension", d("2026-03-10"), d("2026-04-01"), 1, 0),
        DeadlineChange(4, "ClockPaused", "pause", d("2026-03-12"), d("2026-04-01"), 1, 0),
        DeadlineChange(5, "ClockResumed", "resume", d("2026-03-19"), d("2026-04-08"), 1, 7),
        DeadlineChange(
            7, "ComplaintSupplemented", "restart", d("2026-03-25"), d("2026-04-24"), 1, 0
        ),
        DeadlineChange(
            8, "ComplaintDecided", "decision", d("2026-04-20"), d("2026-04-24"), 1, 0, True
        ),
    ]


def test_a_withdrawal_during_the_review_stops_the_reviews_clock_in_the_timeline() -> None:
    """Found by a review pass: the stop row named the handling due date, met weeks before."""
    case = decided_case(RECEIVED_ON, d("2026-03-16"))
    case.do(appeal(d("2026-04-01")))
    case.do(withdraw(d("2026-04-10")))

    *_, requested, stopped = deadline_timeline(case.events)
    assert (requested.change, requested.due_on) == ("review_request", d("2026-05-01"))
    assert (stopped.change, stopped.business_date, stopped.due_on) == (
        "review_stop",
        d("2026-04-10"),
        d("2026-05-01"),
    )


def test_a_withdrawal_before_a_decision_stops_the_handling_clock_in_the_timeline() -> None:
    case = Case()
    case.do(receive(RECEIVED_ON))
    case.do(withdraw(d("2026-03-05")))

    *_, stopped = deadline_timeline(case.events)
    assert (stopped.change, stopped.due_on) == ("stop", d("2026-03-17"))
