"""Erasing a case's personal data once its retention has ended (DOMAIN.md "Personal data";
PIPL Art. 19, 47; Art. 28 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from builders import (
    Case,
    agent,
    appeal,
    assigned_case,
    d,
    days,
    decided_case,
    decision,
    decline,
    erase,
    extend,
    notice,
    pause,
    receive,
    received_case,
    resume,
    review_decision,
    supplement,
    withdraw,
)

from complaintcore.domain import (
    DEFAULT_POLICY,
    AssignHandler,
    Command,
    ErasePersonalData,
    FlagMajor,
    InstitutionPolicy,
    MajorCause,
    MergeComplaint,
    NoticeSubject,
    NotifyComplainant,
    PersonalDataErased,
    RecuseHandler,
    closed_on,
    is_closed,
    retention_ended,
    retention_ends_on,
)

RECEIVED_ON = d("2026-03-02")
DECIDED_ON = d("2026-03-16")
WINDOW_ENDS_ON = d("2026-04-15")  # the decision notice + 30 days (Art. 20)
REASON = "保存期限届满"
LEGAL_BASIS = "《个人信息保护法》第四十七条"


def policy(retention_years: int) -> InstitutionPolicy:
    return replace(DEFAULT_POLICY, retention_years=retention_years)


# --- the retention arithmetic --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("closed", "years", "ends"),
    [
        ("2026-03-06", 5, "2031-03-06"),
        ("2026-12-31", 1, "2027-12-31"),
        ("2028-02-29", 4, "2032-02-29"),  # a leap year again: the same day
        ("2028-02-29", 5, "2033-02-28"),  # no 29 February: the month's last day (Civil Code 202)
        ("2027-02-28", 1, "2028-02-28"),
    ],
)
def test_retention_lasts_through_the_same_calendar_day_so_many_years_after_the_case_closed(
    closed: str, years: int, ends: str
) -> None:
    """Civil Code Art. 201 and 202: the closing day is not counted, the corresponding day is
    the period's last day (the month's last day where there is none)."""
    assert retention_ends_on(d(closed), years) == d(ends)
    assert not retention_ended(d(closed), years, d(ends))
    assert retention_ended(d(closed), years, d(ends) + days(1))


def test_retention_is_five_years_unless_the_institution_says_otherwise() -> None:
    assert DEFAULT_POLICY.retention_years == 5
    assert InstitutionPolicy(retention_years=1).retention_years == 1


@pytest.mark.parametrize("retention_years", [0, -5, 2.5, True, "5", None])
def test_retention_years_must_be_a_whole_number_of_at_least_one(retention_years: object) -> None:
    with pytest.raises(ValueError, match="retention_years"):
        InstitutionPolicy(retention_years=retention_years)  # type: ignore[arg-type]


# --- the day each kind of case closed ------------------------------------------------------------


def withdrawn() -> Case:
    case = assigned_case(RECEIVED_ON)
    case.do(withdraw(d("2026-03-06")))
    return case


def declined() -> Case:
    case = received_case(RECEIVED_ON)
    case.do(decline(d("2026-03-05")))
    return case


def merged() -> Case:
    case = received_case(RECEIVED_ON)
    case.do(MergeComplaint("case-0"), today=d("2026-03-04"))
    return case


def review_decided() -> Case:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-10")))
    case.do(review_decision(d("2026-05-06")))
    return case


def decided_with_the_window_passed() -> Case:
    return decided_case(RECEIVED_ON, DECIDED_ON)


def decided_where_no_review_is_open() -> Case:
    return decided_case(RECEIVED_ON, DECIDED_ON, superior=None)


def withdrawn_after_the_decision() -> Case:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(withdraw(d("2026-04-01")))
    return case


CLOSED_CASES: dict[str, tuple[Callable[[], Case], str]] = {
    "withdrawn: the withdrawal received": (withdrawn, "2026-03-06"),
    "declined: the decline notified": (declined, "2026-03-05"),
    "merged: the merge": (merged, "2026-03-04"),
    "review decided: the review decision notified": (review_decided, "2026-05-06"),
    "decided: the window's last day": (decided_with_the_window_passed, "2026-04-15"),
    "decided, no review open: the notice": (decided_where_no_review_is_open, "2026-03-16"),
    "withdrawn after the decision: the withdrawal": (withdrawn_after_the_decision, "2026-04-01"),
}


@pytest.mark.parametrize(("build", "closed"), CLOSED_CASES.values(), ids=CLOSED_CASES.keys())
def test_a_closed_case_is_erased_from_the_day_after_its_retention_ends(
    build: Callable[[], Case], closed: str
) -> None:
    case = build()
    last_day_kept = d(closed).replace(year=d(closed).year + 5)

    assert closed_on(case.state, last_day_kept) == d(closed)
    assert case.refuse(erase(last_day_kept)) == "retention_not_expired"
    assert case.do(erase(last_day_kept + days(1))) == [
        PersonalDataErased(last_day_kept + days(1), REASON, LEGAL_BASIS, d(closed), 5)
    ]
    assert case.state.personal_data == "erased"


def test_the_retention_the_institution_sets_is_applied_and_recorded() -> None:
    case = assigned_case(RECEIVED_ON, policy=policy(1))
    case.do(withdraw(d("2026-03-06")))

    assert case.refuse(erase(d("2027-03-06"))) == "retention_not_expired"
    (erased,) = case.do(erase(d("2027-03-07")))

    assert erased == PersonalDataErased(d("2027-03-07"), REASON, LEGAL_BASIS, d("2026-03-06"), 1)


@pytest.mark.parametrize(
    ("years", "last_day_kept", "first_day_erasable"),
    [(5, "2033-02-28", "2033-03-01"), (4, "2032-02-29", "2032-03-01")],
)
def test_a_case_closed_on_29_february_is_kept_to_the_same_day_or_28_february(
    years: int, last_day_kept: str, first_day_erasable: str
) -> None:
    case = assigned_case(d("2028-02-20"), policy=policy(years))
    case.do(withdraw(d("2028-02-29")))

    assert case.refuse(erase(d(last_day_kept))) == "retention_not_expired"
    assert case.do(erase(d(first_day_erasable)))


# --- an open case keeps its personal data --------------------------------------------------------

FAR_LATER = d("2040-01-01")


def paused() -> Case:
    case = assigned_case(RECEIVED_ON)
    case.do(pause(d("2026-03-05")))
    return case


def under_review() -> Case:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-10")))
    return case


OPEN_CASES: dict[str, Callable[[], Case]] = {
    "received": lambda: received_case(RECEIVED_ON),
    "assigned": lambda: assigned_case(RECEIVED_ON),
    "paused": paused,
    "under review": under_review,
}


@pytest.mark.parametrize("build", OPEN_CASES.values(), ids=OPEN_CASES.keys())
def test_erasing_an_open_case_is_refused_however_late(build: Callable[[], Case]) -> None:
    case = build()

    assert closed_on(case.state, FAR_LATER) is None
    assert case.refuse(erase(FAR_LATER)) == "case_open"


def test_a_decided_case_is_open_to_the_last_day_of_its_review_window() -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)

    assert case.refuse(erase(WINDOW_ENDS_ON)) == "case_open"
    assert case.refuse(erase(WINDOW_ENDS_ON + days(1))) == "retention_not_expired"
    assert not is_closed(case.state, WINDOW_ENDS_ON)
    assert is_closed(case.state, WINDOW_ENDS_ON + days(1))
    assert closed_on(case.state, WINDOW_ENDS_ON + days(1)) == WINDOW_ENDS_ON


def test_a_withdrawn_case_is_closed_on_the_withdrawal_day_whenever_asked() -> None:
    state = withdrawn().state

    assert closed_on(state, d("2026-03-06")) == closed_on(state, FAR_LATER) == d("2026-03-06")


# --- the erasure's own date and fields -----------------------------------------------------------


def test_an_erasure_dated_after_today_is_refused() -> None:
    case = withdrawn()

    assert case.refuse(erase(d("2031-03-06")), today=d("2031-03-05")) == "business_date_in_future"


def test_an_erasure_dated_before_the_case_s_last_business_date_is_refused() -> None:
    case = assigned_case(RECEIVED_ON, policy=policy(1))
    case.do(withdraw(d("2026-03-06")))

    assert case.refuse(erase(d("2026-03-05")), today=FAR_LATER) == "business_date_before_previous"


def test_an_erasure_states_its_reason_and_legal_basis() -> None:
    case = withdrawn()
    blank = ErasePersonalData(erased_on=d("2031-03-06"), reason=" ", legal_basis="")

    assert case.invalid(blank) == [("reason", "required"), ("legal_basis", "required")]


def test_an_erasure_keeps_no_identity_or_mobile_number_in_its_reason() -> None:
    """DOMAIN.md: the erasure event holds "no personal data"; its reason and legal basis stay in
    clear for good (found by a review pass: "投诉人张三（手机13800138000）申请删除" was stored)."""
    case = withdrawn()
    naming = ErasePersonalData(
        erased_on=d("2031-03-06"),
        reason="投诉人（手机 138 0013 8000）申请删除",
        legal_basis="《个人信息保护法》第四十七条, 11010519491231002X",
    )

    assert case.invalid(naming) == [
        ("reason", "personal_number"),
        ("legal_basis", "personal_number"),
    ]


# --- after the erasure ---------------------------------------------------------------------------

ERASED_ON = d("2031-03-07")
AFTER = d("2031-03-08")
EVERY_OTHER_COMMAND: list[Command] = [
    receive(AFTER),
    AssignHandler("h-zhou"),
    RecuseHandler("h-wang", "利益冲突"),
    extend(AFTER),
    pause(AFTER),
    resume(AFTER),
    supplement(AFTER, new_facts=True),
    MergeComplaint("case-0"),
    decision(AFTER),
    NotifyComplainant(NoticeSubject.PROGRESS, notice(AFTER)),
    appeal(AFTER),
    review_decision(AFTER),
    withdraw(AFTER),
    decline(AFTER),
    FlagMajor(MajorCause.DISASTER, "台风"),
]


def erased() -> Case:
    case = withdrawn()
    case.do(erase(ERASED_ON))
    return case


def test_erasing_an_erased_case_again_is_refused() -> None:
    assert erased().refuse(erase(AFTER)) == "personal_data_erased"


@pytest.mark.parametrize("command", EVERY_OTHER_COMMAND, ids=lambda c: type(c).__name__)
def test_every_command_on_an_erased_case_is_refused(command: Command) -> None:
    assert erased().refuse(command, today=AFTER) == "personal_data_erased"


def test_the_erased_state_holds_no_personal_value_and_keeps_every_fact() -> None:
    case = Case()
    case.do(receive(RECEIVED_ON, agent=agent(), filed_by_heir=True, heir_proof_ref="继承公证书"))
    case.do(AssignHandler("h-wang"), today=RECEIVED_ON)
    case.do(decision(DECIDED_ON))
    before = case.state

    case.do(erase(d("2031-04-16")))
    after = case.state

    assert (before.personal_data, after.personal_data) == ("held", "erased")
    assert after.complainant.name is None and after.complainant.id_number is None
    assert after.complainant.kind is before.complainant.kind
    assert after.agent is not None and after.agent.name is None
    assert after.agent.authorization_ref == "auth-letter-001"
    assert (after.claims, after.facts, after.heir_proof_ref) == (None, None, None)
    assert after.decision is not None and before.decision is not None
    assert (after.decision.findings, after.decision.basis) == (None, None)
    assert after.decision.redress_fen == before.decision.redress_fen == 30_000
    assert after.decision.outcome is before.decision.outcome
    assert after.last_business_date == before.last_business_date  # not a step of the procedure
    assert after.version == before.version + 1
