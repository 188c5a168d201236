"""Withdrawal, decline, merge and closed cases (Art. 15, 18 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

import pytest
from builders import (
    appeal,
    assigned_case,
    d,
    decided_case,
    decision,
    decline,
    extend,
    notice,
    pause,
    received_case,
    supplement,
    withdraw,
)

from complaintcore.domain import (
    DEFAULT_POLICY,
    AssignHandler,
    CaseStatus,
    ClockStatus,
    Command,
    ComplaintDeclined,
    ComplaintMerged,
    ComplaintWithdrawn,
    DeclineComplaint,
    FlagMajor,
    MajorCause,
    MergeComplaint,
    NoticeSubject,
    NotifyComplainant,
    clock_status,
    is_closed,
    review_clock_status,
)

RECEIVED_ON = d("2026-03-02")


# --- withdrawal (Art. 15) ------------------------------------------------------------------------


def test_a_withdrawal_ends_the_procedure_on_the_day_it_is_received() -> None:
    case = assigned_case(RECEIVED_ON)

    (withdrawn,) = case.do(withdraw(d("2026-03-06")))

    assert withdrawn == ComplaintWithdrawn(d("2026-03-06"), "已协商解决")
    assert case.state.status is CaseStatus.WITHDRAWN
    assert case.state.clock.stopped_on == d("2026-03-06")
    assert is_closed(case.state, d("2026-03-06"))


def test_a_withdrawal_during_a_pause_stops_the_clock() -> None:
    case = assigned_case(RECEIVED_ON)
    case.do(pause(d("2026-03-05")))

    case.do(withdraw(d("2026-03-09")))

    assert clock_status(case.state, d("2026-04-01"), DEFAULT_POLICY).status is ClockStatus.STOPPED


def test_a_withdrawal_during_review_stops_the_review_clock() -> None:
    case = decided_case(RECEIVED_ON, d("2026-03-16"))
    case.do(appeal(d("2026-03-20")))

    case.do(withdraw(d("2026-03-25")))

    assert case.state.status is CaseStatus.WITHDRAWN
    reading = review_clock_status(case.state, d("2026-05-01"), DEFAULT_POLICY)
    assert reading is not None and reading.status is ClockStatus.STOPPED
    # The decision's verdict on the handling deadline stands.
    assert clock_status(case.state, d("2026-05-01"), DEFAULT_POLICY).status is ClockStatus.MET


def test_a_decided_case_can_be_withdrawn_while_its_review_window_is_open() -> None:
    case = decided_case(RECEIVED_ON, d("2026-03-16"))

    case.do(withdraw(d("2026-04-15")))  # window: to 04-15 inclusive

    assert case.state.status is CaseStatus.WITHDRAWN


def test_a_paper_withdrawal_entered_later_gives_the_same_events() -> None:
    on_time = assigned_case(RECEIVED_ON)
    late = assigned_case(RECEIVED_ON)

    assert on_time.do(withdraw(d("2026-03-06"))) == late.do(
        withdraw(d("2026-03-06")), d("2026-03-20")
    )


# --- decline (Art. 18 ¶4) ------------------------------------------------------------------------


def test_a_complaint_not_made_by_the_complainant_is_declined_with_a_reason_and_notice() -> None:
    case = received_case(RECEIVED_ON)

    (declined,) = case.do(decline(d("2026-03-05")))

    assert declined == ComplaintDeclined("非投诉人本人或其受托人提出", notice(d("2026-03-05")))
    assert case.state.status is CaseStatus.DECLINED
    assert case.state.notices[-1].subject is NoticeSubject.DECLINE
    assert clock_status(case.state, d("2026-03-30"), DEFAULT_POLICY).status is ClockStatus.STOPPED


def test_a_decline_needs_a_reason() -> None:
    case = received_case(RECEIVED_ON)

    assert case.invalid(DeclineComplaint("", notice(d("2026-03-05")))) == [("reason", "required")]


def test_a_decided_case_cannot_be_declined() -> None:
    case = decided_case(RECEIVED_ON, d("2026-03-16"))

    assert case.refuse(decline(d("2026-03-17"))) == "case_already_decided"


# --- merge (Art. 18 ¶3) --------------------------------------------------------------------------


def test_a_case_merged_into_another_stops_its_clock() -> None:
    case = assigned_case(RECEIVED_ON)

    (merged,) = case.do(MergeComplaint("case-0"), today=d("2026-03-04"))

    assert merged == ComplaintMerged("case-0", d("2026-03-04"))
    assert case.state.status is CaseStatus.MERGED
    assert case.state.merged_into == "case-0"
    assert clock_status(case.state, d("2026-03-30"), DEFAULT_POLICY).status is ClockStatus.STOPPED


def test_a_case_cannot_be_merged_into_itself() -> None:
    case = assigned_case(RECEIVED_ON)  # its id is case-1

    assert case.refuse(MergeComplaint("case-1"), today=d("2026-03-04")) == (
        "cannot_merge_into_itself"
    )


def test_a_decided_case_is_not_merged() -> None:
    case = decided_case(RECEIVED_ON, d("2026-03-03"))

    assert case.refuse(MergeComplaint("case-0"), today=d("2026-03-04")) == "case_already_decided"


# --- closed cases --------------------------------------------------------------------------------

LATER = d("2026-03-10")
COMMANDS_ON_A_CLOSED_CASE: list[Command] = [
    AssignHandler("h-zhou"),
    extend(LATER),
    pause(LATER),
    supplement(LATER, new_facts=True),
    MergeComplaint("case-0"),
    decision(LATER),
    NotifyComplainant(NoticeSubject.PROGRESS, notice(LATER)),
    appeal(LATER),
    withdraw(LATER),
    decline(LATER),
    FlagMajor(MajorCause.DISASTER, "台风"),
]


@pytest.mark.parametrize(
    "exit_command",
    [withdraw(d("2026-03-05")), decline(d("2026-03-05")), MergeComplaint("case-0")],
    ids=["withdrawn", "declined", "merged"],
)
@pytest.mark.parametrize("command", COMMANDS_ON_A_CLOSED_CASE, ids=lambda c: type(c).__name__)
def test_every_command_on_a_closed_case_is_refused(exit_command: Command, command: Command) -> None:
    case = assigned_case(RECEIVED_ON)
    case.do(exit_command, today=d("2026-03-05"))

    assert case.refuse(command, today=LATER) == "case_closed"


def test_a_case_is_closed_only_once_withdrawn_declined_merged_reviewed_or_past_its_window() -> None:
    received = received_case(RECEIVED_ON)

    assert not is_closed(received.state, d("2027-01-01"))  # an overdue case is still open
