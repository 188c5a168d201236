"""A closed case erased live and the same case rebuilt from its erased stream are the same case,
and erasure changes nothing but personal values (DOMAIN.md "Personal data": after erasure every
personal field reads as erased everywhere, replay included, and every statistic is unchanged).

Histories are random but valid: a receipt with or without agent, heir, named staff, joint
complainants or a regulator transfer; handling steps tried in any order (those the rules refuse
are left out, as in test_stateful_lifecycle); then one of the ways a case closes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from builders import (
    BRANCH_SUPERVISOR,
    REMEDIES_WITH_REVIEW,
    REMEDIES_WITHOUT_REVIEW,
    SUPERIOR,
    Case,
    action,
    agent,
    appeal,
    approve_redress,
    attribute,
    company,
    decision,
    decline,
    erase,
    follow_up,
    notice,
    person,
    receive,
    rectify,
    review_decision,
    withdraw,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from complaintcore.domain import (
    DEFAULT_POLICY,
    Approval,
    ApproverRole,
    AssignHandler,
    Command,
    ComplaintState,
    Event,
    ExtendDeadline,
    FlagMajor,
    InvalidCommand,
    JointComplaint,
    MajorCause,
    MergeComplaint,
    Notice,
    NoticeMethod,
    NoticeSubject,
    NotifyComplainant,
    PauseClock,
    PauseKind,
    ReceiveComplaint,
    RecuseHandler,
    RegulatorTransfer,
    RespondentStaff,
    ResumeClock,
    RuleViolation,
    SupplementComplaint,
    clock_status,
    closed_on,
    event_to_payload,
    evolve,
    fold,
    retention_ends_on,
)
from complaintcore.domain.commands import RootCause, Satisfaction
from complaintcore.domain.personal_data import (
    EACH,
    Path,
    erased,
    event_from_erased_payload,
    split_personal,
)

HANDLERS = tuple(f"h{number}" for number in range(1, 11))
SENIOR_MANAGER_APPROVAL = Approval("m-sun", ApproverRole.HEAD_OFFICE_SENIOR_MANAGER)
FAR_LATER = date(2100, 1, 1)

# Where the state keeps what `personal_data.PERSONAL` names in the events.
PERSONAL_IN_STATE: set[Path] = {
    *(
        ("complainant", name)
        for name in (
            "name",
            "contact",
            "id_type",
            "id_number",
            "address",
            "legal_representative_name",
            "legal_representative_contact",
        )
    ),
    *(("agent", name) for name in ("name", "id_type", "id_number", "contact")),
    ("heir_proof_ref",),
    ("claims",),
    ("facts",),
    ("respondent_staff", EACH, "name"),
    ("joint", "representatives", EACH),
    ("pauses", EACH, "reason"),
    ("pauses", EACH, "notice", "agreed_terms"),
    ("extensions", EACH, "reason"),
    ("extensions", EACH, "notice", "agreed_terms"),
    ("supplements", EACH, "summary"),
    ("notices", EACH, "summary"),
    ("notices", EACH, "notice", "agreed_terms"),
    ("decision", "findings"),
    ("decision", "basis"),
    ("decision", "notice", "agreed_terms"),
    ("review", "grounds"),
    ("review", "decision", "findings"),
    ("review", "decision", "notice", "agreed_terms"),
    ("major_flag", "detail"),
    ("withdrawal", "reason"),
    ("decline", "reason"),
    ("decline", "notice", "agreed_terms"),
    ("redress_approval", "note"),
    ("attribution", "third_party"),
    ("attribution", "actions", EACH, "description"),
    ("follow_up", "note"),
}
CHANGED_BY_ERASURE = {("version",), ("personal_data_erased",)}


# --- random valid histories ------------------------------------------------------------------


@st.composite
def receipts(draw: st.DrawFn) -> ReceiveComplaint:
    received_on = draw(st.dates(min_value=date(2026, 1, 5), max_value=date(2026, 6, 30)))
    complainant = draw(
        st.sampled_from([person(), person(address="上海市某路1号"), company(contact="0591-1")])
    )
    joint = draw(
        st.sampled_from(
            [None, JointComplaint(3, ("代表甲", "代表乙")), JointComplaint(25, ("代表丙",))]
        )
    )
    transfer = None
    if joint is None and draw(st.booleans()):
        transfer = RegulatorTransfer(received_on - timedelta(5), received_on - timedelta(2))
    channel = "in_person" if joint else "regulator_transfer" if transfer else "phone"
    heir_proof_ref = draw(st.sampled_from(["", "继承公证书第3号"]))
    return receive(
        received_on,
        channel=channel,
        complainant=complainant,
        agent=draw(st.sampled_from([None, agent()])),
        filed_by_heir=bool(heir_proof_ref),
        heir_proof_ref=heir_proof_ref,
        respondent_staff=draw(st.sampled_from([(), (RespondentStaff("s-zhao", "赵六"),)])),
        joint=joint,
        regulator_transfer=transfer,
    )


def some_notice(draw: st.DrawFn, on: date) -> Notice:
    if draw(st.booleans()):
        return notice(on, method=NoticeMethod.AGREED, agreed_terms=f"微信告知 {on}")
    return notice(on)


def handling_step(draw: st.DrawFn, case: Case, on: date) -> Command:
    """A command the desk might enter on `on`; the rules may still refuse it."""
    kind = draw(
        st.sampled_from(
            ["assign", "recuse", "pause", "resume", "extend", "supplement", "notify", "flag"]
        )
    )
    if kind == "assign":
        return AssignHandler(draw(st.sampled_from(HANDLERS)))
    if kind == "recuse":
        return RecuseHandler(case.state.handler_id or HANDLERS[0], f"亲属关系 {on}")
    if kind == "pause":
        pause_kind = draw(st.sampled_from(PauseKind))
        return PauseClock(pause_kind, on, f"委托鉴定 {on}", some_notice(draw, on))
    if kind == "resume":
        return ResumeClock(on)
    if kind == "extend":
        approval = draw(st.sampled_from([None, SENIOR_MANAGER_APPROVAL]))
        return ExtendDeadline(f"情况复杂 {on}", some_notice(draw, on), approval)
    if kind == "supplement":
        return SupplementComplaint(on, draw(st.booleans()), f"补充材料 {on}")
    if kind == "notify":
        subject = draw(st.sampled_from([NoticeSubject.ACCEPTANCE, NoticeSubject.PROGRESS]))
        return NotifyComplainant(subject, some_notice(draw, on), f"电话告知进度 {on}")
    cause = draw(st.sampled_from([MajorCause.DISASTER, MajorCause.ACCIDENT]))
    return FlagMajor(cause, f"台风过境 {on}")


def attempt(case: Case, command: Command, on: date) -> None:
    """Enter `command`; a refused one stores nothing and the history goes on without it."""
    with contextlib.suppress(RuleViolation, InvalidCommand):
        case.do(command, today=on)


def close(draw: st.DrawFn, case: Case, on: date) -> None:
    """Close the case one of the ways DOMAIN.md "Lifecycle" names."""
    if case.state.clock.paused_since is not None:
        case.do(ResumeClock(on))
    ending = draw(st.sampled_from(["review", "late", "decide", "withdraw", "decline", "merge"]))
    if ending == "withdraw":
        case.do(withdraw(on))
    elif ending == "decline":
        case.do(decline(on))
    elif ending == "merge":
        case.do(MergeComplaint("case-0"), today=on)
    else:
        decide(case, on)
        if case.superior is not None and ending != "decide":
            later = on + timedelta(draw(st.integers(0, 30)))
            if ending == "review":
                case.do(appeal(later))
                case.do(review_decision(later + timedelta(draw(st.integers(0, 30)))))
            else:
                case.do(withdraw(later))  # within the review window
        internal_control(draw, case, case.state.last_business_date)


def internal_control(draw: st.DrawFn, case: Case, on: date) -> None:
    """Attribution, rectification and follow-up after the decision, also after closure
    (desk rule 責任歸屬; 回访)."""
    for _ in range(draw(st.integers(0, 4))):
        on += timedelta(draw(st.integers(0, 5)))
        kind = draw(st.sampled_from(["attribute", "rectify", "follow_up"]))
        if kind == "attribute":
            cause = draw(st.sampled_from(RootCause))
            actions = tuple(
                action(f"A{number}", on + timedelta(days=10))
                for number in range(draw(st.integers(0, 2)))
            )
            attempt(case, attribute(on, *actions, root_cause=cause), on)
        elif kind == "rectify":
            attempt(case, rectify(draw(st.sampled_from(["A0", "A1"])), on), on)
        else:
            satisfaction = draw(st.sampled_from([None, *Satisfaction]))
            attempt(case, follow_up(on, satisfaction), on)


def decide(case: Case, on: date) -> None:
    state = case.state
    if state.handler_id is None:
        free = next(handler for handler in HANDLERS if handler not in state.barred_handlers)
        case.do(AssignHandler(free), today=on)
    remedies = REMEDIES_WITH_REVIEW if case.superior is not None else REMEDIES_WITHOUT_REVIEW
    handler = case.state.handler_id
    assert handler is not None
    case.do(approve_redress(on, 12_345), **BRANCH_SUPERVISOR)  # Art. 24, voided by the decision
    case.do(decision(on, handler=handler, remedies=remedies, redress_fen=12_345))


@st.composite
def closed_histories(draw: st.DrawFn) -> tuple[Case, list[Event]]:
    """A closed case with its retention ended and erased; its events before the erasure."""
    years = draw(st.integers(1, 10))
    case = Case(policy=replace(DEFAULT_POLICY, retention_years=years))
    case.superior = draw(st.sampled_from([SUPERIOR, SUPERIOR, None]))
    command = draw(receipts())
    on = command.received_on
    case.do(command)
    for _ in range(draw(st.integers(0, 8))):
        on += timedelta(draw(st.integers(0, 6)))
        attempt(case, handling_step(draw, case, on), on)
    close(draw, case, on + timedelta(draw(st.integers(0, 6))))
    history = list(case.events)
    closed = closed_on(case.state, FAR_LATER)
    assert closed is not None
    case.do(erase(retention_ends_on(closed, years) + timedelta(draw(st.integers(1, 4)))))
    return case, history


# --- the properties --------------------------------------------------------------------------


def leaves(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(place, value) of every leaf of a state: records walked, a tuple's items by index."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from leaves(getattr(value, field.name), (*at, field.name))
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            yield from leaves(item, (*at, index))
    else:
        yield at, value


def pattern(place: tuple[Any, ...]) -> Path:
    return tuple(EACH if isinstance(key, int) else key for key in place)


def rebuilt_after_erasure(events: list[Event]) -> ComplaintState | None:
    """The case as a replay reads it once its key is destroyed: every payload erased."""
    return fold(
        event_from_erased_payload(
            event.event_type, erased(event.event_type, event_to_payload(event))
        )
        for event in events
    )


HISTORIES = settings(max_examples=150, deadline=None)


@HISTORIES
@given(closed_histories())
def test_a_rebuild_after_erasure_gives_the_case_as_erased_live(
    history: tuple[Case, list[Event]],
) -> None:
    case, events = history
    (erasure,) = case.events[len(events) :]

    live = evolve(fold(events), erasure)

    assert rebuilt_after_erasure([*events, erasure]) == live == case.state
    assert live.personal_data == "erased"


@HISTORIES
@given(closed_histories())
def test_erasure_sets_every_personal_value_to_none_and_changes_nothing_else(
    history: tuple[Case, list[Event]],
) -> None:
    case, events = history
    before, after = fold(events), case.state
    assert before is not None
    held, kept = dict(leaves(before)), dict(leaves(after))

    assert held.keys() == kept.keys()  # the same records, lists of the same lengths
    for place, value in kept.items():
        if pattern(place) in PERSONAL_IN_STATE:
            assert value is None, place
        elif place not in CHANGED_BY_ERASURE:
            assert value == held[place], place
    assert after.version == before.version + 1
    assert closed_on(after, FAR_LATER) == closed_on(before, FAR_LATER)
    assert clock_status(after, FAR_LATER, case.policy) == clock_status(
        before, FAR_LATER, case.policy
    )


@HISTORIES
@given(closed_histories())
def test_no_personal_value_of_any_event_is_left_in_the_erased_state(
    history: tuple[Case, list[Event]],
) -> None:
    case, events = history
    personal = {
        value
        for event in events
        for value in split_personal(event.event_type, event_to_payload(event))[1].values()
        if value
    }
    texts = {value for _, value in leaves(case.state) if isinstance(value, str)}

    assert personal, "every history holds some personal data"
    assert personal.isdisjoint(texts)
