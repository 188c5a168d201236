"""Decision and notice (Art. 18, 19, 21 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from builders import (
    HANDLER,
    REMEDIES_WITH_REVIEW,
    REMEDIES_WITHOUT_REVIEW,
    assigned_case,
    d,
    decision,
    notice,
    pause,
    resume,
    unreachable,
)

from complaintcore.domain import (
    CaseStatus,
    ComplainantNotified,
    ComplaintDecided,
    NoticeMethod,
    NoticeSubject,
    NotifyComplainant,
    Outcome,
    Remedy,
)

RECEIVED_ON = d("2026-03-02")  # due 2026-03-17
DECIDED_ON = d("2026-03-16")


def test_a_decision_records_outcome_findings_basis_redress_remedies_and_its_notice() -> None:
    case = assigned_case(RECEIVED_ON)

    (decided,) = case.do(decision(DECIDED_ON, redress_fen=30_000))

    assert decided == ComplaintDecided(
        handler_id=HANDLER,
        outcome=Outcome.PARTIALLY_UPHELD,
        findings="年费扣收有误",
        basis="信用卡领用合约第5条",
        redress_fen=30_000,
        remedies=REMEDIES_WITH_REVIEW,
        notice=notice(DECIDED_ON),
        due_on=d("2026-03-17"),
        on_time=True,
        handling_days=14,
        review_window_ends_on=d("2026-04-15"),  # Art. 20: 30 days from the notice
    )
    assert case.state.status is CaseStatus.DECIDED
    assert case.state.clock.stopped_on == DECIDED_ON  # the clock stops at the notice


@pytest.mark.parametrize(
    ("article", "notified_on", "on_time"),
    [
        ("Art. 18", "2026-03-17", True),  # 作出处理决定并告知 by day 15, inclusive (Art. 43)
        ("Art. 18", "2026-03-18", False),
    ],
)
def test_the_deadline_is_met_iff_the_decision_is_notified_by_the_due_date(
    article: str, notified_on: str, on_time: bool
) -> None:
    case = assigned_case(RECEIVED_ON)

    (decided,) = case.do(decision(d(notified_on)))

    assert isinstance(decided, ComplaintDecided)
    assert decided.on_time is on_time


def test_handling_days_exclude_the_paused_days() -> None:
    case = assigned_case(RECEIVED_ON)
    case.do(pause(d("2026-03-05")))
    case.do(resume(d("2026-03-12")))  # 7 days of appraisal

    (decided,) = case.do(decision(d("2026-03-20")))

    assert isinstance(decided, ComplaintDecided)
    assert decided.handling_days == 18 - 7
    assert decided.on_time  # due 03-24


def test_a_complainant_who_cannot_be_reached_still_gets_a_decision() -> None:
    """Art. 21 exempts the notice when the complainant cannot be reached."""
    case = assigned_case(RECEIVED_ON)

    case.do(decision(DECIDED_ON, notice_=unreachable(DECIDED_ON, attempts=3)))

    assert case.state.decision is not None
    assert case.state.decision.notice.unreachable


@pytest.mark.parametrize(
    ("article", "notice_overrides", "expected"),
    [
        ("Art. 21", {"method": None}, [("notice.method", "required")]),
        ("Art. 21", {"proof_ref": ""}, [("notice.proof_ref", "required")]),
        # 协商一致的方式: the agreed terms are recorded.
        ("Art. 21", {"method": NoticeMethod.AGREED}, [("notice.agreed_terms", "required")]),
        ("Art. 21", {"unreachable": True, "attempts": 0}, [("notice.attempts", "required")]),
    ],
)
def test_a_notice_records_how_when_and_its_proof(
    article: str, notice_overrides: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    case = assigned_case(RECEIVED_ON)
    command = decision(DECIDED_ON, notice_=replace(notice(DECIDED_ON), **notice_overrides))

    assert case.invalid(command) == expected


@pytest.mark.parametrize(
    ("article", "overrides", "expected"),
    [
        ("Art. 19", {"findings": ""}, [("findings", "required")]),
        ("Art. 19", {"basis": " "}, [("basis", "required")]),
        ("Art. 19", {"remedies": ()}, [("remedies", "required")]),
        ("Art. 19", {"remedies": (Remedy.REVIEW, Remedy.REVIEW)}, [("remedies", "duplicate")]),
        ("Art. 19", {"redress_fen": -1}, [("redress_fen", "negative")]),
    ],
)
def test_a_decision_states_its_findings_basis_remedies_and_a_non_negative_redress(
    article: str, overrides: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    case = assigned_case(RECEIVED_ON)

    assert case.invalid(replace(decision(DECIDED_ON), **overrides)) == expected


@pytest.mark.parametrize(
    ("superior", "remedies", "refusal"),
    [
        # A head office has no superior: offering review would mislead (Art. 20).
        (None, REMEDIES_WITH_REVIEW, "review_not_available"),
        # A branch must tell the complainant of review by its superior (Art. 19).
        ("BR-SH", REMEDIES_WITHOUT_REVIEW, "review_remedy_required"),
    ],
)
def test_review_is_offered_exactly_when_the_deciding_node_has_a_superior(
    superior: str | None, remedies: tuple[Remedy, ...], refusal: str
) -> None:
    case = assigned_case(RECEIVED_ON, superior=superior)

    assert case.refuse(decision(DECIDED_ON, remedies=remedies)) == refusal


def test_a_head_office_decision_offers_no_review_and_has_no_review_window() -> None:
    case = assigned_case(RECEIVED_ON, superior=None)

    (decided,) = case.do(decision(DECIDED_ON, remedies=REMEDIES_WITHOUT_REVIEW))

    assert isinstance(decided, ComplaintDecided)
    assert decided.review_window_ends_on is None


def test_a_case_is_decided_once() -> None:
    case = assigned_case(RECEIVED_ON)
    case.do(decision(DECIDED_ON))

    assert case.refuse(decision(d("2026-03-17"))) == "case_already_decided"


def test_an_acceptance_notice_is_recorded_with_the_other_notices() -> None:
    """Art. 21: notices accompany acceptance (optional), extensions, pauses and decisions."""
    case = assigned_case(RECEIVED_ON)
    acceptance = NotifyComplainant(NoticeSubject.ACCEPTANCE, notice(d("2026-03-03")), "已受理")

    (notified,) = case.do(acceptance)
    case.do(decision(DECIDED_ON))

    assert notified == ComplainantNotified(
        NoticeSubject.ACCEPTANCE, notice(d("2026-03-03")), "已受理"
    )
    assert [record.subject for record in case.state.notices] == [
        NoticeSubject.ACCEPTANCE,
        NoticeSubject.DECISION,
    ]
