"""Responsibility, root cause and rectification (desk rule 責任歸屬; Art. 26 溯源整改、
责任追究), and follow-up (回访, complaint-desk practice): DOMAIN.md "Responsibility…" and
"Follow-up"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from builders import (
    RESPONDENT,
    SUPERIOR,
    Case,
    action,
    appeal,
    assigned_case,
    attribute,
    d,
    decided_case,
    decline,
    erase,
    follow_up,
    received_case,
    rectify,
    review_decision,
    withdraw,
)
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.domain import CaseStatus, Command, MergeComplaint, fold
from complaintcore.domain.commands import FollowUp, Rectify, RootCause, Satisfaction
from complaintcore.domain.events import CaseAttributed, FollowedUp, RectificationActionClosed
from complaintcore.domain.state import ActionStatus, action_status

RECEIVED_ON = d("2026-03-02")
DECIDED_ON = d("2026-03-10")  # review window: to 2026-04-09 inclusive
ATTRIBUTED_ON = d("2026-03-12")


def decided() -> Case:
    return decided_case(RECEIVED_ON, DECIDED_ON)


def head_office_decided() -> Case:
    """Decided by a node without a superior: closed at once (Art. 20)."""
    return decided_case(RECEIVED_ON, DECIDED_ON, superior=None)


def window_passed() -> Case:
    case = decided()
    case.today = d("2026-05-01")
    return case


def reviewed() -> Case:
    case = decided()
    case.do(appeal(d("2026-03-11")))
    case.do(review_decision(d("2026-03-11")))
    return case


def withdrawn_after_decision() -> Case:
    case = decided()
    case.do(withdraw(d("2026-03-11")))
    return case


def withdrawn_before_decision() -> Case:
    case = assigned_case(RECEIVED_ON)
    case.do(withdraw(d("2026-03-05")))
    return case


def declined() -> Case:
    case = received_case(RECEIVED_ON)
    case.do(decline(d("2026-03-05")))
    return case


def merged() -> Case:
    case = received_case(RECEIVED_ON)
    case.do(MergeComplaint("case-0"), today=d("2026-03-05"))
    return case


def erased() -> Case:
    case = head_office_decided()
    case.do(erase(d("2031-03-11")))
    return case


HISTORIES_AFTER_DECISION: dict[str, Callable[[], Case]] = {
    "decided, review window running": decided,
    "decided at a head office, closed at once": head_office_decided,
    "decided, review window passed (closed)": window_passed,
    "review decided (closed)": reviewed,
    "withdrawn within the review window": withdrawn_after_decision,
}
HISTORIES_WITHOUT_DECISION: dict[str, Callable[[], Case]] = {
    "received": lambda: received_case(RECEIVED_ON),
    "assigned": lambda: assigned_case(RECEIVED_ON),
    "withdrawn before a decision (Art. 15)": withdrawn_before_decision,
    "declined (Art. 18)": declined,
    "merged (Art. 18)": merged,
}


def when(history: str, command: Command, refusal: str | None, where: str) -> Any:
    return pytest.param(history, command, refusal, id=f"{where}: {history}")


# --- which cases take which command ----------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "command", "refusal"),
    [
        *(
            when(name, attribute(ATTRIBUTED_ON), None, "責任歸屬, after the decision")
            for name in HISTORIES_AFTER_DECISION
        ),
        *(
            when(name, follow_up(ATTRIBUTED_ON), None, "回访, after the decision notice")
            for name in HISTORIES_AFTER_DECISION
        ),
        *(
            when(name, attribute(ATTRIBUTED_ON), "case_not_decided", "責任歸屬, never decided")
            for name in HISTORIES_WITHOUT_DECISION
        ),
        *(
            when(name, follow_up(ATTRIBUTED_ON), "case_not_decided", "回访, never decided")
            for name in HISTORIES_WITHOUT_DECISION
        ),
    ],
)
def test_attribution_and_follow_up_come_after_a_decision_even_once_the_case_closed(
    history: str, command: Command, refusal: str | None
) -> None:
    cases = HISTORIES_AFTER_DECISION | HISTORIES_WITHOUT_DECISION
    case = cases[history]()

    if refusal is None:
        case.do(command, today=max(ATTRIBUTED_ON, case.today))
    else:
        assert case.refuse(command, today=max(ATTRIBUTED_ON, case.today)) == refusal


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(attribute(d("2031-03-12")), id="責任歸屬"),
        pytest.param(follow_up(d("2031-03-12")), id="回访"),
        pytest.param(rectify("A1", d("2031-03-12")), id="責任歸屬 rectify"),
    ],
)
def test_an_erased_case_takes_none_of_them(command: Command) -> None:
    """PIPL Art. 47, Art. 22: an erased case takes no command at all."""
    assert erased().refuse(command) == "personal_data_erased"


@pytest.mark.parametrize(
    ("command", "today", "refusal"),
    [
        pytest.param(
            attribute(d("2026-03-09")),
            ATTRIBUTED_ON,
            "business_date_before_previous",
            id="Art. 28: attribution before the decision notice",
        ),
        pytest.param(
            attribute(ATTRIBUTED_ON),
            d("2026-03-11"),
            "business_date_in_future",
            id="Art. 28: attribution dated tomorrow",
        ),
        pytest.param(
            follow_up(d("2026-03-09")),
            ATTRIBUTED_ON,
            "business_date_before_previous",
            id="Art. 28: follow-up before the decision notice",
        ),
        pytest.param(
            follow_up(ATTRIBUTED_ON),
            d("2026-03-11"),
            "business_date_in_future",
            id="Art. 28: follow-up dated tomorrow",
        ),
    ],
)
def test_their_dates_are_business_dates(command: Command, today: date, refusal: str) -> None:
    assert decided().refuse(command, today=today) == refusal


# --- attribute -------------------------------------------------------------------------------


def test_an_attribution_records_unit_staff_root_cause_and_actions() -> None:
    """責任歸屬; Art. 26 溯源整改、责任追究."""
    case = decided()
    actions = (action("A1", d("2026-04-30")), action("A2", ATTRIBUTED_ON))

    (attributed,) = case.do(attribute(ATTRIBUTED_ON, *actions))

    assert attributed == CaseAttributed(
        attributed_on=ATTRIBUTED_ON,
        responsible_institution=RESPONDENT,
        department="信用卡中心",
        responsible_staff=("s-zhao",),
        root_cause=RootCause.RULES_AND_PROCESS,
        third_party=None,
        actions=actions,
    )
    attribution = case.state.attribution
    assert attribution is not None
    assert [a.action_id for a in attribution.actions] == ["A1", "A2"]
    assert [a.status(ATTRIBUTED_ON) for a in attribution.actions] == [ActionStatus.OPEN] * 2
    assert case.state.last_business_date == ATTRIBUTED_ON


@pytest.mark.parametrize(
    ("institution", "refusal", "stored_as"),
    [
        pytest.param(RESPONDENT, None, RESPONDENT, id="責任歸屬: the respondent itself"),
        pytest.param(SUPERIOR, None, SUPERIOR, id="責任歸屬: its superior"),
        pytest.param("BR-BJ", None, "BR-BJ", id="責任歸屬: another branch of the tree"),
        pytest.param("br-sh", None, SUPERIOR, id="API.md: codes unique regardless of case"),
        pytest.param("OTHER-BANK", "unknown_institution", None, id="責任歸屬: outside the tree"),
    ],
)
def test_the_responsible_unit_is_an_institution_of_the_cases_tree(
    institution: str, refusal: str | None, stored_as: str | None
) -> None:
    case = decided()
    command = attribute(ATTRIBUTED_ON, responsible_institution=institution)

    if refusal is None:
        case.do(command)
        assert case.state.attribution is not None
        assert case.state.attribution.responsible_institution == stored_as
    else:
        assert case.refuse(command) == refusal


@pytest.mark.parametrize(
    ("command", "errors"),
    [
        pytest.param(
            attribute(ATTRIBUTED_ON, root_cause=RootCause.THIRD_PARTY, third_party=None),
            [("third_party", "required")],
            id="Art. 10: a third-party cause names the third party",
        ),
        pytest.param(
            attribute(ATTRIBUTED_ON, root_cause=RootCause.SYSTEMS, third_party="某科技公司"),
            [("third_party", "not_allowed")],
            id="責任歸屬: a third party only with that root cause",
        ),
        pytest.param(
            attribute(ATTRIBUTED_ON, action("A1", d("2026-04-01")), action("A1", d("2026-04-02"))),
            [("actions[1].action_id", "duplicate")],
            id="責任歸屬: action ids unique within an attribution",
        ),
        pytest.param(
            attribute(ATTRIBUTED_ON, action("A1", d("2026-03-11"))),
            [("actions[0].due_on", "before_attributed_on")],
            id="責任歸屬: an action is not due before it is set",
        ),
        pytest.param(
            attribute(
                ATTRIBUTED_ON, action("", d("2026-04-01"), owner_id=""), responsible_institution=" "
            ),
            [
                ("responsible_institution", "required"),
                ("actions[0].action_id", "required"),
                ("actions[0].owner_id", "required"),
            ],
            id="責任歸屬: unit, action id and owner are required",
        ),
        pytest.param(
            attribute(ATTRIBUTED_ON, department="", responsible_staff=("s-1", "")),
            [("department", "required"), ("responsible_staff[1]", "required")],
            id="責任歸屬: a department or staff id given is not blank",
        ),
        pytest.param(
            attribute(ATTRIBUTED_ON, responsible_staff=("s-1", "s-2", "s-1")),
            [("responsible_staff[2]", "duplicate")],
            id="責任歸屬: each responsible staff member named once",
        ),
    ],
)
def test_a_malformed_attribution_lists_every_bad_field(
    command: Command, errors: list[tuple[str, str]]
) -> None:
    assert decided().invalid(command) == errors


def test_a_third_party_attribution_keeps_the_third_partys_name() -> None:
    """Art. 10 (third-party cooperation), desk statistics of cases involving a third party."""
    case = decided()

    case.do(attribute(ATTRIBUTED_ON, root_cause=RootCause.THIRD_PARTY))

    assert case.state.attribution is not None
    assert case.state.attribution.third_party == "某催收公司"


def test_a_later_attribution_supersedes_the_earlier_and_closed_actions_stay_closed() -> None:
    """責任歸屬: a later attribute supersedes the earlier; both stay in the history."""
    case = decided()
    case.do(attribute(ATTRIBUTED_ON, action("A1", d("2026-04-01")), action("A2", d("2026-04-01"))))
    case.do(rectify("A1", d("2026-03-20")))

    case.do(
        attribute(
            d("2026-03-25"),
            action("A1", d("2026-05-01")),
            action("A3", d("2026-05-01")),
            root_cause=RootCause.SYSTEMS,
        )
    )

    attribution = case.state.attribution
    assert attribution is not None and attribution.root_cause is RootCause.SYSTEMS
    assert [a.action_id for a in attribution.actions] == ["A1", "A3"]  # A2 dropped
    first = attribution.actions[0]
    assert (first.closed_on, first.evidence_ref, first.due_on) == (
        d("2026-03-20"),
        "ev-A1",
        d("2026-05-01"),
    )
    assert attribution.actions[1].closed_on is None
    assert sum(isinstance(event, CaseAttributed) for event in case.events) == 2
    assert case.refuse(rectify("A2", d("2026-03-26"))) == "unknown_action"
    assert case.refuse(rectify("A1", d("2026-03-26"))) == "action_already_closed"


def test_a_corrected_attribution_carries_an_overdue_action_over_as_it_was() -> None:
    """An action named again with its due date unchanged keeps it, though due before the
    correction: pushing it out to be accepted would clear its overdue status with no work done."""
    case = decided()
    case.do(attribute(ATTRIBUTED_ON, action("A1", d("2026-03-13"))))
    case.today = d("2026-03-20")

    case.do(attribute(d("2026-03-20"), action("A1", d("2026-03-13")), root_cause=RootCause.SYSTEMS))

    attribution = case.state.attribution
    assert attribution is not None and attribution.root_cause is RootCause.SYSTEMS
    carried = attribution.actions[0]
    assert (carried.due_on, carried.closed_on) == (d("2026-03-13"), None)
    assert action_status(carried.due_on, None, case.today) is ActionStatus.OVERDUE


def test_a_corrected_attribution_carries_a_closed_action_over_with_its_dates() -> None:
    case = decided()
    case.do(attribute(ATTRIBUTED_ON, action("A1", d("2026-03-13"))))
    case.do(rectify("A1", d("2026-03-13")))

    case.do(attribute(d("2026-03-20"), action("A1", d("2026-03-13")), root_cause=RootCause.SYSTEMS))

    assert case.state.attribution is not None
    carried = case.state.attribution.actions[0]
    assert (carried.due_on, carried.closed_on) == (d("2026-03-13"), d("2026-03-13"))


def test_a_corrected_attribution_sets_no_new_due_date_in_the_past() -> None:
    """Rescheduling an action, or adding one, still sets a date on or after the correction."""
    case = decided()
    case.do(attribute(ATTRIBUTED_ON, action("A1", d("2026-03-13"))))

    assert case.invalid(
        attribute(d("2026-03-20"), action("A1", d("2026-03-14")), action("A2", d("2026-03-13")))
    ) == [
        ("actions[0].due_on", "before_attributed_on"),
        ("actions[1].due_on", "before_attributed_on"),
    ]


# --- rectify ---------------------------------------------------------------------------------


def attributed() -> Case:
    case = decided()
    case.do(attribute(ATTRIBUTED_ON, action("A1", d("2026-04-01")), action("A2", d("2026-04-01"))))
    return case


@pytest.mark.parametrize(
    ("history", "command", "refusal"),
    [
        pytest.param(
            attributed, rectify("A1", d("2026-03-20")), None, id="責任歸屬: closes an action"
        ),
        pytest.param(
            decided,
            rectify("A1", d("2026-03-20")),
            "unknown_action",
            id="責任歸屬: no attribution yet",
        ),
        pytest.param(
            attributed,
            rectify("A9", d("2026-03-20")),
            "unknown_action",
            id="責任歸屬: not an action of it",
        ),
        pytest.param(
            attributed,
            rectify("A1", d("2026-03-11")),
            "business_date_before_previous",
            id="Art. 28: done before the attribution",
        ),
    ],
)
def test_rectify_closes_an_action_of_the_current_attribution(
    history: Callable[[], Case], command: Command, refusal: str | None
) -> None:
    case = history()

    if refusal is None:
        (closed,) = case.do(command)
        assert closed == RectificationActionClosed("A1", d("2026-03-20"), "ev-A1")
        assert case.state.attribution is not None
        assert case.state.attribution.actions[0].status(d("2026-03-20")) is ActionStatus.CLOSED
        assert case.state.attribution.actions[1].closed_on is None
    else:
        assert case.refuse(command) == refusal


def test_an_action_is_closed_once() -> None:
    """責任歸屬: a closed action cannot be closed again."""
    case = attributed()
    case.do(rectify("A1", d("2026-03-20")))

    assert case.refuse(rectify("A1", d("2026-03-21"))) == "action_already_closed"


def test_rectify_states_the_action_and_the_evidence() -> None:
    command = Rectify(action_id=" ", done_on=d("2026-03-20"), evidence_ref="")

    assert attributed().invalid(command) == [
        ("action_id", "required"),
        ("evidence_ref", "required"),
    ]


def test_rectify_applies_after_closure() -> None:
    """責任歸屬: rectification follows the case's closure."""
    case = attributed()
    case.do(rectify("A1", d("2026-06-01")))

    assert case.state.attribution is not None
    assert case.state.attribution.actions[0].closed_on == d("2026-06-01")


@pytest.mark.parametrize(
    ("due_on", "closed_on", "on", "status"),
    [
        pytest.param("2026-04-01", None, "2026-04-01", "open", id="責任歸屬: due today, open"),
        pytest.param("2026-04-01", None, "2026-04-02", "overdue", id="責任歸屬: past due, overdue"),
        pytest.param(
            "2026-04-01",
            "2026-04-05",
            "2026-04-03",
            "overdue",
            id="責任歸屬: as of before it closed",
        ),
        pytest.param(
            "2026-04-01", "2026-04-05", "2026-04-05", "closed", id="責任歸屬: closed late"
        ),
        pytest.param(
            "2026-04-01", "2026-03-20", "2026-03-25", "closed", id="責任歸屬: closed early"
        ),
    ],
)
def test_an_actions_status_as_of_a_date(
    due_on: str, closed_on: str | None, on: str, status: str
) -> None:
    closed = d(closed_on) if closed_on else None

    assert action_status(d(due_on), closed, d(on)) == status


@given(due_on=st.dates(), closed_on=st.none() | st.dates(), on=st.dates())
def test_an_action_is_overdue_exactly_when_past_due_and_not_closed_by_then(
    due_on: date, closed_on: date | None, on: date
) -> None:
    """責任歸屬: "an action past its due date and not closed is overdue"."""
    closed_by_then = closed_on is not None and closed_on <= on

    status = action_status(due_on, closed_on, on)

    assert (status is ActionStatus.CLOSED) is closed_by_then
    assert (status is ActionStatus.OVERDUE) is (not closed_by_then and on > due_on)


# --- follow-up -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reached", "satisfaction", "errors"),
    [
        pytest.param(True, None, [("satisfaction", "required")], id="回访: reached, satisfaction?"),
        pytest.param(
            False, Satisfaction.SATISFIED, [("satisfaction", "not_allowed")], id="回访: not reached"
        ),
    ],
)
def test_satisfaction_is_given_exactly_when_the_complainant_was_reached(
    reached: bool, satisfaction: Satisfaction | None, errors: list[tuple[str, str]]
) -> None:
    command = FollowUp(reached=reached, followed_up_on=ATTRIBUTED_ON, satisfaction=satisfaction)

    assert decided().invalid(command) == errors


def test_the_latest_follow_up_is_the_cases() -> None:
    """回访: the complainant not reached at first, then reached."""
    case = decided()
    (first,) = case.do(follow_up(ATTRIBUTED_ON, satisfaction=None))
    case.do(follow_up(d("2026-03-15"), Satisfaction.BASICALLY_SATISFIED))

    assert first == FollowedUp(False, None, ATTRIBUTED_ON, "电话无人接听")
    assert case.state.follow_up is not None
    assert case.state.follow_up.satisfaction is Satisfaction.BASICALLY_SATISFIED
    assert case.state.follow_up.followed_up_on == d("2026-03-15")
    assert case.state.status is CaseStatus.DECIDED
    assert fold(case.events) == case.state
