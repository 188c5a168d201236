"""Review by the superior institution (Art. 20 核查 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

import pytest
from builders import (
    HANDLER,
    RESPONDENT_STAFF_ID,
    REVIEWER,
    SUPERIOR,
    Case,
    appeal,
    approve_redress,
    assigned_case,
    d,
    days,
    decided_case,
    decision,
    extend,
    receive,
    received_case,
    review_decision,
    roll_policy,
    withdraw,
)

from complaintcore.domain import (
    AssignHandler,
    CaseStatus,
    Command,
    DecideReview,
    Outcome,
    RecuseHandler,
    RespondentStaff,
    ReviewOutcome,
    ReviewRequested,
    is_closed,
)
from complaintcore.domain.decider import needs_merged_duplicates

RECEIVED_ON = d("2026-03-20")
DECIDED_ON = d("2026-04-01")  # review window: to 2026-05-01 inclusive


@pytest.mark.parametrize(
    ("appealed_on", "accepted"),
    [
        ("2026-04-01", True),  # the day of the notice
        ("2026-05-01", True),  # day 30, included (Art. 43)
        ("2026-05-02", False),
    ],
)
def test_a_review_request_is_in_time_within_30_days_of_the_decision_notice(
    appealed_on: str, accepted: bool
) -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)

    if accepted:
        (requested,) = case.do(appeal(d(appealed_on)))
        assert requested == ReviewRequested(
            received_on=d(appealed_on),
            grounds="退款金额不足",
            reviewing_institution=SUPERIOR,
            due_on=d(appealed_on) + days(30),  # Art. 20: request + 30
        )
        assert case.state.status is CaseStatus.UNDER_REVIEW
    else:
        assert case.refuse(appeal(d(appealed_on))) == "appeal_window_closed"


def test_a_late_appeal_is_judged_at_its_received_date_not_the_day_it_is_entered() -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)

    case.do(appeal(d("2026-04-30")), today=d("2026-05-12"))  # a letter entered late

    assert case.state.review is not None
    assert case.state.review.due_on == d("2026-05-30")


def test_with_roll_past_holidays_a_window_ending_on_labour_day_runs_to_the_next_working_day() -> (
    None
):
    case = decided_case(RECEIVED_ON, DECIDED_ON, policy=roll_policy())

    case.do(appeal(d("2026-05-06")))  # 05-01 is Labour Day; 05-01..05-05 off

    assert case.state.review is not None
    assert case.state.review.due_on == d("2026-06-05")


@pytest.mark.parametrize(
    ("article", "superior", "history_decided", "command", "refusal"),
    [
        ("Art. 20", SUPERIOR, False, appeal(d("2026-03-25")), "case_not_decided"),
        # A head office's decision has no superior to review it.
        ("Art. 20", None, True, appeal(d("2026-04-02")), "review_not_available"),
        ("Art. 20", SUPERIOR, True, review_decision(d("2026-04-10")), "review_not_requested"),
        ("Art. 20", SUPERIOR, False, review_decision(d("2026-03-25")), "case_not_decided"),
    ],
)
def test_review_needs_a_decision_a_superior_and_a_request(
    article: str, superior: str | None, history_decided: bool, command: Command, refusal: str
) -> None:
    case = (
        decided_case(RECEIVED_ON, DECIDED_ON, superior=superior)
        if history_decided
        else assigned_case(RECEIVED_ON, superior=superior)
    )

    assert case.refuse(command) == refusal


def test_a_review_is_requested_once() -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-05")))

    assert case.refuse(appeal(d("2026-04-06"))) == "review_already_requested"


@pytest.mark.parametrize(
    ("command", "outcome"),
    [
        (review_decision(d("2026-04-20")), Outcome.PARTIALLY_UPHELD),
        (
            review_decision(
                d("2026-04-20"), outcome=ReviewOutcome.CHANGED, new_outcome=Outcome.UPHELD
            ),
            Outcome.UPHELD,
        ),
    ],
)
def test_the_review_decision_keeps_or_changes_the_outcome_and_closes_the_case(
    command: DecideReview, outcome: Outcome
) -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-05")))

    case.do(command)

    assert case.state.status is CaseStatus.REVIEW_DECIDED
    assert case.state.final_outcome is outcome
    assert is_closed(case.state, d("2026-04-20"))
    assert case.refuse(appeal(d("2026-04-21"))) == "case_closed"


@pytest.mark.parametrize(
    ("new_outcome", "new_redress_fen", "refusal"),
    [
        (Outcome.PARTIALLY_UPHELD, None, "review_changes_nothing"),
        (Outcome.PARTIALLY_UPHELD, 30_000, "review_changes_nothing"),
        (Outcome.PARTIALLY_UPHELD, 45_000, None),  # the redress changed
        (Outcome.UPHELD, 30_000, None),  # the outcome changed
    ],
)
def test_a_changed_review_changes_the_outcome_or_the_redress(
    new_outcome: Outcome, new_redress_fen: int | None, refusal: str | None
) -> None:
    """The decision was partially upheld with 30,000 fen (`decided_case`): a review said to
    change it and changing neither would count among the reviews that changed the outcome."""
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-05")))
    command = review_decision(
        d("2026-04-20"),
        outcome=ReviewOutcome.CHANGED,
        new_outcome=new_outcome,
        new_redress_fen=new_redress_fen,
    )

    if refusal is None:
        case.do(command)
        assert case.state.status is CaseStatus.REVIEW_DECIDED
    else:
        assert case.refuse(command) == refusal
        assert case.state.status is CaseStatus.UNDER_REVIEW


@pytest.mark.parametrize(
    ("decided_on", "on_time"),
    [("2026-05-05", True), ("2026-05-06", False)],  # requested 04-05: due 05-05
)
def test_the_review_is_decided_within_30_days_of_the_request(
    decided_on: str, on_time: bool
) -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-05")))

    case.do(review_decision(d(decided_on)))

    review = case.state.review
    assert review is not None and review.decision is not None
    assert review.decision.on_time is on_time


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            review_decision(d("2026-04-20"), outcome=ReviewOutcome.CHANGED),
            [("new_outcome", "required")],
        ),
        (
            review_decision(d("2026-04-20"), new_outcome=Outcome.UPHELD),
            [("new_outcome", "not_allowed")],
        ),
    ],
)
def test_only_a_changed_review_states_a_new_outcome(
    command: DecideReview, expected: list[tuple[str, str]]
) -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)
    case.do(appeal(d("2026-04-05")))

    assert case.invalid(command) == expected


@pytest.mark.parametrize("reviewer", [HANDLER, RESPONDENT_STAFF_ID, "h-recused"])
def test_the_reviewer_has_no_interest_in_the_case(reviewer: str) -> None:
    """Art. 17 applies to the review too: not the deciding handler, respondent staff or a
    recused handler."""
    case = Case()
    case.do(receive(RECEIVED_ON, respondent_staff=(RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),)))
    case.do(AssignHandler("h-recused"), today=RECEIVED_ON)
    case.do(RecuseHandler("h-recused", "亲属"), today=RECEIVED_ON)
    case.do(AssignHandler(HANDLER), today=RECEIVED_ON)
    case.do(decision(DECIDED_ON))
    case.do(appeal(d("2026-04-05")))

    assert case.refuse(review_decision(d("2026-04-20"), reviewer=reviewer)) == (
        "reviewer_has_conflict"
    )
    case.do(review_decision(d("2026-04-20"), reviewer=REVIEWER))  # someone independent


def test_a_decided_case_closes_when_the_review_window_passes_without_a_request() -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON)

    assert not is_closed(case.state, d("2026-05-01"))
    assert is_closed(case.state, d("2026-05-02"))
    assert case.refuse(withdraw(d("2026-05-02"))) == "case_closed"


def test_a_head_office_decision_closes_the_case_at_once() -> None:
    case = decided_case(RECEIVED_ON, DECIDED_ON, superior=None)

    assert is_closed(case.state, DECIDED_ON)


BARRED_ON_A_DUPLICATE = {"barred_on_merged_duplicates": frozenset({"s-wu"})}


def test_staff_barred_on_a_duplicate_merged_in_neither_handle_review_nor_approve() -> None:
    """A duplicate merged into the case is the same complaint (Art. 17): the staff it named or
    that recused from it are barred here too, for every role that judges the case."""
    case = received_case(RECEIVED_ON)
    assert case.refuse(AssignHandler("s-wu"), **BARRED_ON_A_DUPLICATE) == "handler_has_conflict"
    case.do(AssignHandler(HANDLER), today=RECEIVED_ON)
    # a duplicate merged in after the assignment, barring the handler: no decision by them
    barring_the_handler = {"barred_on_merged_duplicates": frozenset({HANDLER})}
    assert case.refuse(decision(DECIDED_ON), **barring_the_handler) == "handler_has_conflict"
    case.do(decision(DECIDED_ON))
    case.do(appeal(d("2026-04-05")))

    review = review_decision(d("2026-04-20"), reviewer="s-wu")
    assert case.refuse(review, **BARRED_ON_A_DUPLICATE) == "reviewer_has_conflict"
    case.do(review_decision(d("2026-04-20"), reviewer=REVIEWER), **BARRED_ON_A_DUPLICATE)


@pytest.mark.parametrize(
    ("command", "asks"),
    [
        (AssignHandler(HANDLER), True),
        (review_decision(DECIDED_ON), True),
        (approve_redress(DECIDED_ON), True),
        (extend(DECIDED_ON, approved=True), True),
        (extend(DECIDED_ON), False),  # a first extension names no approver
        (decision(DECIDED_ON), True),  # a duplicate merged in later may bar the handler
        (appeal(DECIDED_ON), False),
    ],
)
def test_the_commands_naming_a_handler_reviewer_or_approver_or_deciding_ask_about_duplicates(
    command: Command, asks: bool
) -> None:
    assert needs_merged_duplicates(command) is asks
