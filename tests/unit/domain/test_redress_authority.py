"""Redress authority (核决权限; Art. 24, desk rule 客訴金額核決權限; DOMAIN.md "Redress authority").

A decision, or a review decision that changes the outcome, whose redress exceeds the caller's
limit needs an unused approval covering it, recorded beforehand by a supervisor at the case's
institution or above whose own limit covers the amount.
"""

from __future__ import annotations

from typing import Any

import pytest
from builders import (
    BRANCH_SUPERVISOR,
    RESPONDENT_STAFF_ID,
    STAFF_LIMIT_FEN,
    STAFF_WITH_LIMIT,
    SUPERVISOR_LIMIT_FEN,
    Case,
    appeal,
    approve_redress,
    assigned_case,
    d,
    decided_case,
    decision,
    receive,
    review_decision,
    withdraw,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import (
    AssignHandler,
    DecideReview,
    Outcome,
    RecuseHandler,
    RespondentStaff,
    ReviewOutcome,
    RuleViolation,
    decide,
    fold,
)
from complaintcore.domain.commands import ApproveRedress
from complaintcore.domain.events import RedressApproved
from complaintcore.domain.roles import may_approve_redress
from complaintcore.domain.state import RedressApproval

RECEIVED_ON = d("2026-03-02")
APPROVED_ON = d("2026-03-09")
DECIDED_ON = d("2026-03-10")  # review window: to 2026-04-09 inclusive
HEAD_OFFICE_SUPERVISOR: dict[str, Any] = BRANCH_SUPERVISOR | {
    "actor_id": "sup-ho",
    "redress_limit_fen": None,
    "redress_limit_source": "head office",
}


def changed_review(on: str, new_redress_fen: int | None) -> DecideReview:
    return DecideReview(
        reviewer_id="r-chen",
        outcome=ReviewOutcome.CHANGED,
        findings="赔付金额应予提高",
        notice=review_decision(d(on)).notice,
        new_outcome=Outcome.UPHELD,
        new_redress_fen=new_redress_fen,
    )


def under_review() -> Case:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-03-20")))
    return case


# --- deciding within authority ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("redress_fen", "approved_up_to", "refusal"),
    [
        pytest.param(0, None, None, id="客訴金額核決權限: no redress needs no approval"),
        pytest.param(
            STAFF_LIMIT_FEN, None, None, id="客訴金額核決權限: the limit itself is within"
        ),
        pytest.param(
            STAFF_LIMIT_FEN + 1,
            None,
            "redress_exceeds_authority",
            id="客訴金額核決權限: 1 fen over",
        ),
        pytest.param(200_000, 200_000, None, id="Art. 24: an approval covering the amount"),
        pytest.param(200_000, 300_000, None, id="Art. 24: an approval of more covers it too"),
        pytest.param(
            200_000, 150_000, "redress_exceeds_authority", id="Art. 24: an approval too small"
        ),
    ],
)
def test_a_decision_above_the_deciders_limit_needs_an_approval_covering_it(
    redress_fen: int, approved_up_to: int | None, refusal: str | None
) -> None:
    case = assigned_case(RECEIVED_ON)
    if approved_up_to is not None:
        case.do(approve_redress(APPROVED_ON, approved_up_to), **BRANCH_SUPERVISOR)
    command = decision(DECIDED_ON, redress_fen=redress_fen)

    if refusal is None:
        (decided,) = case.do(command, **STAFF_WITH_LIMIT)
        assert decided.redress_fen == redress_fen
    else:
        assert case.refuse(command, **STAFF_WITH_LIMIT) == refusal


@settings(max_examples=60, deadline=None)
@given(
    redress_fen=st.integers(0, 10_000_000),
    limit=st.none() | st.integers(0, 6_000_000),
    approved_up_to=st.none() | st.integers(1, 6_000_000),
)
def test_a_decision_is_accepted_exactly_when_its_redress_is_within_the_limit_or_approved(
    redress_fen: int, limit: int | None, approved_up_to: int | None
) -> None:
    """Art. 24, desk rule 客訴金額核決權限, over any amounts (None: no limit)."""
    case = assigned_case(RECEIVED_ON)
    if approved_up_to is not None:
        case.do(approve_redress(APPROVED_ON, approved_up_to), **HEAD_OFFICE_SUPERVISOR)
    authority = {"redress_limit_fen": limit, "redress_limit_source": "default"}
    within = limit is None or redress_fen <= limit
    approved = approved_up_to is not None and approved_up_to >= redress_fen

    command = decision(DECIDED_ON, redress_fen=redress_fen)

    if within or approved:
        case.do(command, **authority)
    else:
        assert case.refuse(command, **authority) == "redress_exceeds_authority"


def test_a_refusal_names_the_limit_and_where_it_comes_from() -> None:
    """客訴金額核決權限: the handler learns what to ask for."""
    case = assigned_case(RECEIVED_ON)

    with pytest.raises(RuleViolation) as refused:
        decide(
            case.state,
            decision(DECIDED_ON, redress_fen=250_000),
            case.context(DECIDED_ON, **STAFF_WITH_LIMIT),
        )

    assert refused.value.code == "redress_exceeds_authority"
    assert "250000 fen is above the limit of 100000 fen" in refused.value.message
    assert "policy of BR-SH, version 3" in refused.value.message
    assert refused.value.article.startswith("Art. 24")


def test_a_decision_voids_the_approval_whether_or_not_it_used_it() -> None:
    """Art. 24: an approval is used by one decision; a later, higher redress needs a new one."""
    case = assigned_case(RECEIVED_ON)
    case.do(approve_redress(APPROVED_ON, 500_000), **BRANCH_SUPERVISOR)
    assert case.state.redress_approval == RedressApproval(
        500_000, "sup-zhou", APPROVED_ON, "客户损失核实无误, 同意赔付"
    )

    case.do(decision(DECIDED_ON, redress_fen=10_000), **STAFF_WITH_LIMIT)

    assert case.state.redress_approval is None


# --- review decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new_redress_fen", "approved_up_to", "refusal"),
    [
        pytest.param(None, None, None, id="Art. 20: a changed outcome without a new redress"),
        pytest.param(STAFF_LIMIT_FEN, None, None, id="客訴金額核決權限: within the limit"),
        pytest.param(
            400_000, None, "redress_exceeds_authority", id="客訴金額核決權限: over, no approval"
        ),
        pytest.param(400_000, 400_000, None, id="Art. 24: approved while the review is pending"),
    ],
)
def test_a_review_decision_changing_the_redress_needs_the_same_authority(
    new_redress_fen: int | None, approved_up_to: int | None, refusal: str | None
) -> None:
    case = under_review()
    if approved_up_to is not None:
        case.do(approve_redress(d("2026-03-25"), approved_up_to), **BRANCH_SUPERVISOR)
    command = changed_review("2026-04-02", new_redress_fen)

    if refusal is None:
        case.do(command, **STAFF_WITH_LIMIT)
        assert case.state.redress_approval is None  # voided by the review decision
    else:
        assert case.refuse(command, **STAFF_WITH_LIMIT) == refusal


@pytest.mark.parametrize(
    ("new_redress_fen", "approved_up_to", "refusal"),
    [
        pytest.param(
            None,
            None,
            "redress_exceeds_authority",
            id="客訴金額核決權限: the decision's redress stays in force, over the limit",
        ),
        pytest.param(None, 400_000, None, id="Art. 24: approved while the review is pending"),
        pytest.param(0, None, None, id="a changed outcome with no redress left"),
    ],
)
def test_a_changed_review_leaving_the_decisions_redress_is_judged_by_that_redress(
    new_redress_fen: int | None, approved_up_to: int | None, refusal: str | None
) -> None:
    """DOMAIN.md: "a review decision that changes the outcome whose redress exceeds the deciding
    principal's limit ... needs an approval"; with no new amount, its redress is the decision's
    (found by a review pass: staff with a 1,000 CNY limit changed the outcome of a 30,000 CNY
    decision, which stayed in force, unchecked)."""
    case = assigned_case(RECEIVED_ON)
    case.do(decision(DECIDED_ON, redress_fen=400_000), **BRANCH_SUPERVISOR)
    case.do(appeal(d("2026-03-20")))
    if approved_up_to is not None:
        case.do(approve_redress(d("2026-03-25"), approved_up_to), **BRANCH_SUPERVISOR)
    command = changed_review("2026-04-02", new_redress_fen)

    if refusal is None:
        case.do(command, **STAFF_WITH_LIMIT)
        assert case.state.status == "review_decided"
    else:
        assert case.refuse(command, **STAFF_WITH_LIMIT) == refusal


def test_a_kept_review_decision_is_not_judged_against_the_limit() -> None:
    """Art. 20: keeping the outcome promises nothing new."""
    case = under_review()

    case.do(review_decision(d("2026-04-02")), redress_limit_fen=0)

    assert case.state.status == "review_decided"


# --- approving (approve-redress) -------------------------------------------------------------


def withdrawn_case() -> Case:
    case = assigned_case(RECEIVED_ON)
    case.do(withdraw(d("2026-03-05")))
    return case


def reviewed_case() -> Case:
    case = under_review()
    case.do(review_decision(d("2026-04-02")))
    return case


HISTORIES = {
    "assigned": lambda: assigned_case(RECEIVED_ON),
    "decided": lambda: decided_case(RECEIVED_ON, DECIDED_ON),
    "under_review": under_review,
    "withdrawn": withdrawn_case,
    "reviewed": reviewed_case,
}


@pytest.mark.parametrize(
    ("caller", "up_to_fen", "refusal"),
    [
        pytest.param(BRANCH_SUPERVISOR, 200_000, None, id="Art. 24: a supervisor above the case"),
        pytest.param(
            BRANCH_SUPERVISOR, SUPERVISOR_LIMIT_FEN, None, id="客訴金額核決權限: up to own limit"
        ),
        pytest.param(
            BRANCH_SUPERVISOR,
            SUPERVISOR_LIMIT_FEN + 1,
            "approver_lacks_authority",
            id="客訴金額核決權限: beyond the approver's own limit",
        ),
        pytest.param(
            HEAD_OFFICE_SUPERVISOR, 10**9, None, id="客訴金額核決權限: head office, no limit"
        ),
        pytest.param(
            BRANCH_SUPERVISOR | {"actor_role": "staff"},
            1_000,
            "approver_lacks_authority",
            id="客訴金額核決權限: staff never approve",
        ),
        pytest.param(
            BRANCH_SUPERVISOR | {"actor_role": "regulator"},
            1_000,
            "approver_lacks_authority",
            id="客訴金額核決權限: regulators do not approve",
        ),
        pytest.param(
            BRANCH_SUPERVISOR | {"actor_at_or_above_respondent": False},
            1_000,
            "approver_lacks_authority",
            id="Art. 24: a supervisor of another branch (not above the case)",
        ),
    ],
)
def test_only_a_supervisor_at_or_above_the_case_within_their_own_limit_approves(
    caller: dict[str, Any], up_to_fen: int, refusal: str | None
) -> None:
    case = assigned_case(RECEIVED_ON)
    command = approve_redress(APPROVED_ON, up_to_fen)

    if refusal is None:
        (approved,) = case.do(command, **caller)
        assert approved == RedressApproved(
            up_to_fen=up_to_fen,
            note="客户损失核实无误, 同意赔付",
            approved_on=APPROVED_ON,
            approver_id=caller["actor_id"],
            approver_limit_fen=caller["redress_limit_fen"],
            limit_source=caller["redress_limit_source"],
        )
    else:
        assert case.refuse(command, **caller) == refusal


@pytest.mark.parametrize(
    "approver",
    [
        pytest.param(RESPONDENT_STAFF_ID, id="Art. 17: the supervisor complained of"),
        pytest.param("sup-recused", id="Art. 17: a supervisor who recused from the case"),
    ],
)
def test_no_one_with_an_interest_in_the_case_approves_its_redress(approver: str) -> None:
    """Found by a review pass: a supervisor named in the complaint approved 300,000 fen on it."""
    case = Case()
    case.do(receive(RECEIVED_ON, respondent_staff=(RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),)))
    case.do(AssignHandler("sup-recused"), today=RECEIVED_ON)
    case.do(RecuseHandler("sup-recused", "与投诉人系亲属"), today=RECEIVED_ON)
    case.do(AssignHandler("h-wang"), today=RECEIVED_ON)

    refused = case.refuse(
        approve_redress(APPROVED_ON), **BRANCH_SUPERVISOR | {"actor_id": approver}
    )
    assert refused == "approver_lacks_authority"
    assert case.do(approve_redress(APPROVED_ON), **BRANCH_SUPERVISOR)  # another supervisor may


def test_an_approval_beyond_the_approvers_limit_names_that_limit_and_its_source() -> None:
    case = assigned_case(RECEIVED_ON)
    caller = BRANCH_SUPERVISOR | {"redress_limit_source": "policy of BR-SH, version 3"}

    with pytest.raises(RuleViolation) as refused:
        decide(
            case.state, approve_redress(APPROVED_ON, 6_000_000), case.context(APPROVED_ON, **caller)
        )

    assert "above the limit of 5000000 fen (policy of BR-SH, version 3)" in refused.value.message


@pytest.mark.parametrize(
    ("history", "approved_on", "refusal"),
    [
        pytest.param("assigned", "2026-03-09", None, id="Art. 24: before the decision"),
        pytest.param("decided", "2026-03-20", None, id="Art. 20: decided, review window running"),
        pytest.param("under_review", "2026-03-25", None, id="Art. 20: a review pending"),
        pytest.param("decided", "2026-04-10", "case_closed", id="Art. 20: review window passed"),
        pytest.param("withdrawn", "2026-03-09", "case_closed", id="Art. 15: withdrawn"),
        pytest.param("reviewed", "2026-04-03", "case_closed", id="Art. 20: review decided, closed"),
        pytest.param(
            "assigned", "2026-03-01", "business_date_before_previous", id="Art. 28: before receipt"
        ),
    ],
)
def test_approvals_are_for_decisions_still_to_come_on_an_open_case(
    history: str, approved_on: str, refusal: str | None
) -> None:
    case = HISTORIES[history]()
    command = approve_redress(d(approved_on))

    if refusal is None:
        case.do(command, **BRANCH_SUPERVISOR)
        assert case.state.last_business_date == d(approved_on)
    else:
        assert case.refuse(command, **BRANCH_SUPERVISOR) == refusal


def test_an_approval_dated_after_today_is_refused() -> None:
    """Art. 28: a business date is never later than today."""
    case = assigned_case(RECEIVED_ON)

    refusal = case.refuse(
        approve_redress(d("2026-03-10")), today=d("2026-03-09"), **BRANCH_SUPERVISOR
    )

    assert refusal == "business_date_in_future"


@pytest.mark.parametrize(
    ("up_to_fen", "note", "errors"),
    [
        (0, "同意", [("up_to_fen", "not_positive")]),
        (-5, "同意", [("up_to_fen", "negative")]),
        (1_000, " ", [("note", "required")]),
    ],
)
def test_an_approval_states_a_positive_amount_and_a_note(
    up_to_fen: int, note: str, errors: list[tuple[str, str]]
) -> None:
    case = assigned_case(RECEIVED_ON)
    command = ApproveRedress(up_to_fen=up_to_fen, note=note, approved_on=APPROVED_ON)

    assert case.invalid(command, **BRANCH_SUPERVISOR) == errors


def test_a_later_approval_replaces_an_earlier_unused_one() -> None:
    case = assigned_case(RECEIVED_ON)
    case.do(approve_redress(d("2026-03-05"), 500_000), **BRANCH_SUPERVISOR)

    case.do(approve_redress(APPROVED_ON, 200_000), **BRANCH_SUPERVISOR)

    assert case.state.redress_approval is not None
    assert case.state.redress_approval.up_to_fen == 200_000
    assert case.refuse(decision(DECIDED_ON, redress_fen=300_000), **STAFF_WITH_LIMIT) == (
        "redress_exceeds_authority"
    )
    assert fold(case.events) == case.state


@pytest.mark.parametrize(
    ("role", "approves"),
    [("supervisor", True), ("staff", False), ("regulator", False), ("admin", False)],
)
def test_only_supervisors_approve_redress(role: str, approves: bool) -> None:
    """desk rule 客訴金額核決權限 (API.md: approve-redress is a supervisor's command)."""
    assert may_approve_redress(role) is approves
