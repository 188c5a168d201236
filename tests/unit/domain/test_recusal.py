"""Assignment and recusal (Art. 17 回避制度 of CBIRC Order 2020 No. 3)."""

from __future__ import annotations

import pytest
from builders import (
    HANDLER,
    OTHER_HANDLER,
    RESPONDENT_STAFF_ID,
    Case,
    d,
    decision,
    receive,
)

from complaintcore.domain import (
    AssignHandler,
    CaseStatus,
    HandlerAssigned,
    HandlerRecused,
    RecuseHandler,
    RespondentStaff,
)

RECEIVED_ON = d("2026-03-02")
STEP_DAY = d("2026-03-04")


def case_naming_staff() -> Case:
    case = Case()
    case.do(receive(RECEIVED_ON, respondent_staff=(RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),)))
    return case


def given(*steps: AssignHandler | RecuseHandler) -> Case:
    case = case_naming_staff()
    for step in steps:
        case.do(step, today=STEP_DAY)
    return case


ASSIGN = AssignHandler(HANDLER)
RECUSE = RecuseHandler(HANDLER, "与投诉人系亲属")


@pytest.mark.parametrize(
    ("article", "history", "command", "refusal"),
    [
        # A named respondent staff member has a direct interest.
        ("Art. 17", [], AssignHandler(RESPONDENT_STAFF_ID), "handler_has_conflict"),
        # Whoever recused is barred for good, also after someone else handled the case.
        ("Art. 17", [ASSIGN, RECUSE], AssignHandler(HANDLER), "handler_has_conflict"),
        (
            "Art. 17",
            [ASSIGN, RECUSE, AssignHandler(OTHER_HANDLER)],
            AssignHandler(HANDLER),
            "handler_has_conflict",
        ),
        ("Art. 17", [ASSIGN], AssignHandler(HANDLER), "handler_already_assigned"),
        # Only the current handler recuses.
        ("Art. 17", [], RECUSE, "case_not_assigned"),
        ("Art. 17", [ASSIGN], RecuseHandler(OTHER_HANDLER, "亲属"), "handler_not_assigned"),
    ],
)
def test_a_handler_with_a_direct_interest_never_handles_the_case(
    article: str,
    history: list[AssignHandler | RecuseHandler],
    command: AssignHandler | RecuseHandler,
    refusal: str,
) -> None:
    case = given(*history)

    assert case.refuse(command, today=STEP_DAY) == refusal


def test_an_assignment_records_the_handler_and_the_day() -> None:
    case = given()

    (assigned,) = case.do(ASSIGN, today=STEP_DAY)

    assert assigned == HandlerAssigned(HANDLER, STEP_DAY, previous_handler_id=None)
    assert case.state.status is CaseStatus.ASSIGNED
    assert case.state.handler_id == HANDLER


def test_a_recusal_returns_the_case_to_unassigned_and_bars_the_handler() -> None:
    case = given(ASSIGN)

    (recused,) = case.do(RECUSE, today=STEP_DAY)

    assert recused == HandlerRecused(HANDLER, "与投诉人系亲属", STEP_DAY)
    assert case.state.status is CaseStatus.RECEIVED
    assert case.state.handler_id is None
    assert case.state.barred_handlers == {RESPONDENT_STAFF_ID, HANDLER}


def test_after_a_recusal_another_handler_is_assigned() -> None:
    case = given(ASSIGN, RECUSE)

    case.do(AssignHandler(OTHER_HANDLER), today=STEP_DAY)

    assert case.state.handler_id == OTHER_HANDLER
    assert case.state.status is CaseStatus.ASSIGNED


def test_a_supervisor_may_reassign_without_a_recusal() -> None:
    case = given(ASSIGN)

    (reassigned,) = case.do(AssignHandler(OTHER_HANDLER), today=STEP_DAY)

    assert reassigned == HandlerAssigned(OTHER_HANDLER, STEP_DAY, previous_handler_id=HANDLER)
    assert HANDLER not in case.state.barred_handlers  # reassignment is no conflict


@pytest.mark.parametrize(
    ("history", "handler", "refusal"),
    [
        ([], HANDLER, "case_not_assigned"),  # Art. 17: a case is never decided unassigned
        ([ASSIGN], OTHER_HANDLER, "handler_not_assigned"),
        ([ASSIGN, RECUSE], HANDLER, "case_not_assigned"),
    ],
)
def test_only_the_assigned_handler_decides(
    history: list[AssignHandler | RecuseHandler], handler: str, refusal: str
) -> None:
    case = given(*history)

    assert case.refuse(decision(d("2026-03-10"), handler=handler)) == refusal


def test_after_the_decision_the_case_is_no_longer_assigned_or_recused() -> None:
    case = given(ASSIGN)
    case.do(decision(d("2026-03-10")))

    assert (
        case.refuse(AssignHandler(OTHER_HANDLER), today=d("2026-03-11")) == "case_already_decided"
    )
    assert case.refuse(RECUSE, today=d("2026-03-11")) == "case_already_decided"


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (AssignHandler(" "), "handler_id"),
        (RecuseHandler(HANDLER, ""), "reason"),  # Art. 17: the conflict is declared with a reason
    ],
)
def test_assignment_and_recusal_need_their_fields(
    command: AssignHandler | RecuseHandler, field: str
) -> None:
    case = given(ASSIGN)

    assert case.invalid(command, today=STEP_DAY) == [(field, "required")]
