"""The state of one case, and how each event changes it.

`evolve(state, event)` and `fold(events)` live here, beside the state they build, so that the
deadline arithmetic (`deadlines`) and the decider can both use them without an import cycle;
`decider` re-exports them. A case that does not exist yet is `INITIAL` (None).

The state keeps personal data in full (`complainant`, `agent`, …); projections that do not need it
mask it (Art. 22).

Why one file of 500 lines: the state's dataclasses and the `evolve` branch of every event that
changes them belong together; split, a new event would be half-applied in one file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from complaintcore.domain.commands import (
    Agent,
    Approval,
    Category,
    Complainant,
    JointComplaint,
    MajorCause,
    Notice,
    NoticeSubject,
    Outcome,
    PauseKind,
    Remedy,
    RespondentStaff,
    ReviewOutcome,
)
from complaintcore.domain.events import (
    ClockPaused,
    ClockResumed,
    ComplainantNotified,
    ComplaintDecided,
    ComplaintDeclined,
    ComplaintMerged,
    ComplaintReceived,
    ComplaintSupplemented,
    ComplaintWithdrawn,
    DeadlineExtended,
    Event,
    HandlerAssigned,
    HandlerRecused,
    MarkedMajor,
    RegulatorTransferCheck,
    ReviewDecided,
    ReviewRequested,
)
from complaintcore.domain.frozen import built, changed


class CaseStatus(StrEnum):
    RECEIVED = "received"  # also: back to unassigned after a recusal
    ASSIGNED = "assigned"
    DECIDED = "decided"
    UNDER_REVIEW = "under_review"
    REVIEW_DECIDED = "review_decided"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"
    MERGED = "merged"


BEFORE_DECISION = frozenset({CaseStatus.RECEIVED, CaseStatus.ASSIGNED})
TERMINAL = frozenset(
    {CaseStatus.WITHDRAWN, CaseStatus.DECLINED, CaseStatus.MERGED, CaseStatus.REVIEW_DECIDED}
)


@dataclass(frozen=True)
class Clock:
    """The Art. 18 handling clock.

    `anchor_on` is the day of receipt, or the day new facts and reasons restarted the period;
    it is not counted. `paused_days` are the pause days since the anchor that push the due date
    out; `paused_since` is where the open pause started counting (its `paused_on`, or the restart
    day when new facts came in during a pause). `total_paused_days` counts every closed pause
    since receipt, for handling-day statistics. `due_on` is the due date as the latest deadline
    event recorded it. `stopped_on` is the decision notice, withdrawal, decline or merge day.
    """

    anchor_on: date
    due_on: date
    level: int = 0
    paused_days: int = 0
    paused_since: date | None = None
    total_paused_days: int = 0
    stopped_on: date | None = None

    @property
    def is_paused(self) -> bool:
        return clock_is_paused(self.paused_since, self.stopped_on)


def clock_is_paused(paused_since: date | None, stopped_on: date | None) -> bool:
    """A handling clock paused and not stopped since (a case_view row keeps the same dates)."""
    return paused_since is not None and stopped_on is None


@dataclass(frozen=True)
class Pause:
    kind: PauseKind
    paused_on: date
    reason: str
    notice: Notice
    resumed_on: date | None = None


@dataclass(frozen=True)
class Extension:
    level: int
    reason: str
    approval: Approval | None
    notice: Notice
    due_on: date


@dataclass(frozen=True)
class Supplement:
    received_on: date
    new_facts_and_reasons: bool
    summary: str
    restarted: bool


@dataclass(frozen=True)
class NoticeRecord:
    subject: NoticeSubject
    notice: Notice
    summary: str = ""


@dataclass(frozen=True)
class Decision:
    handler_id: str
    outcome: Outcome
    findings: str
    basis: str
    redress_fen: int
    remedies: tuple[Remedy, ...]
    notice: Notice
    due_on: date
    on_time: bool
    handling_days: int
    review_window_ends_on: date | None

    @property
    def decided_on(self) -> date:
        return self.notice.notified_on


@dataclass(frozen=True)
class ReviewDecision:
    reviewer_id: str
    outcome: ReviewOutcome
    findings: str
    new_outcome: Outcome | None
    new_redress_fen: int | None
    notice: Notice
    on_time: bool


@dataclass(frozen=True)
class Review:
    requested_on: date
    grounds: str
    reviewing_institution: str
    due_on: date
    decision: ReviewDecision | None = None


@dataclass(frozen=True)
class MajorFlag:
    cause: MajorCause
    detail: str
    marked_on: date


@dataclass(frozen=True)
class Withdrawal:
    received_on: date
    reason: str


@dataclass(frozen=True)
class Decline:
    reason: str
    notice: Notice


@dataclass(frozen=True)
class ComplaintState:
    id: str
    registration_no: str
    status: CaseStatus
    version: int
    respondent_institution: str
    channel: str
    category: Category
    complainant: Complainant
    agent: Agent | None
    filed_by_heir: bool
    heir_proof_ref: str
    claims: str
    facts: str
    respondent_staff: tuple[RespondentStaff, ...]
    joint: JointComplaint | None
    regulator_transfer: RegulatorTransferCheck | None
    received_on: date
    last_business_date: date
    clock: Clock
    handler_id: str | None = None
    recused_handlers: tuple[str, ...] = ()
    major_flag: MajorFlag | None = None
    pauses: tuple[Pause, ...] = ()
    extensions: tuple[Extension, ...] = ()
    supplements: tuple[Supplement, ...] = ()
    notices: tuple[NoticeRecord, ...] = ()
    decision: Decision | None = None
    review: Review | None = None
    withdrawal: Withdrawal | None = None
    decline: Decline | None = None
    merged_into: str | None = None

    @property
    def barred_handlers(self) -> frozenset[str]:
        """Staff who can never handle this case (Art. 17): named respondent staff and anyone
        who recused."""
        return frozenset(staff.staff_id for staff in self.respondent_staff) | frozenset(
            self.recused_handlers
        )

    @property
    def complainant_count(self) -> int:
        """How many complainants the case speaks for: a joint complaint's headcount, else 1."""
        return self.joint.complainants if self.joint is not None else 1

    @property
    def major(self) -> bool:
        return self.major_flag is not None

    @property
    def level(self) -> int:
        return self.clock.level

    @property
    def due_on(self) -> date:
        return self.clock.due_on

    @property
    def open_pause(self) -> Pause | None:
        if self.pauses and self.pauses[-1].resumed_on is None and self.clock.is_paused:
            return self.pauses[-1]
        return None

    @property
    def final_outcome(self) -> Outcome | None:
        """The outcome after any review that changed it."""
        review_decision = self.review.decision if self.review else None
        if review_decision and review_decision.new_outcome is not None:
            return review_decision.new_outcome
        return self.decision.outcome if self.decision else None


INITIAL: ComplaintState | None = None


def is_closed(state: ComplaintState, today: date) -> bool:
    """Closed: withdrawn, declined, merged, review decided, or decided with the review window
    passed without a request. A decision against which no review is open (the deciding node
    has no superior, Art. 20) closes the case at once."""
    if state.status in TERMINAL:
        return True
    if state.status is CaseStatus.DECIDED and state.decision is not None:
        window_ends_on = state.decision.review_window_ends_on
        return window_ends_on is None or today > window_ends_on
    return False


def fold(events: Iterable[Event]) -> ComplaintState | None:
    """The state after `events`, applied in order to `INITIAL`: what `evolve` one event at a
    time gives, without a copy of the state per event."""
    state = INITIAL
    for event in events:
        if state is None or isinstance(event, ComplaintReceived):
            state = evolve(state, event)  # a new record, which no one else holds yet
            continue
        # The record was built here and is handed out only at the end, so its fields can be
        # replaced as the events come (the fold's hottest path: a copy per event is most of it).
        fields = state.__dict__
        fields.update(_changes(state, event))
        fields["version"] += 1
    return state


def evolve(state: ComplaintState | None, event: Event) -> ComplaintState:
    """The state after `event`. Pure: `state` is never changed."""
    if isinstance(event, ComplaintReceived):
        if state is not None:
            raise ValueError("ComplaintReceived on a case that already exists")
        return _received(event)
    if state is None:
        raise ValueError(f"{event.event_type} before ComplaintReceived")
    return changed(state, **_changes(state, event), version=state.version + 1)


def _received(event: ComplaintReceived) -> ComplaintState:
    return built(
        ComplaintState,
        id=event.case_id,
        registration_no=event.registration_no,
        status=CaseStatus.RECEIVED,
        version=1,
        respondent_institution=event.respondent_institution,
        channel=event.channel,
        category=event.category,
        complainant=event.complainant,
        agent=event.agent,
        filed_by_heir=event.filed_by_heir,
        heir_proof_ref=event.heir_proof_ref,
        claims=event.claims,
        facts=event.facts,
        respondent_staff=event.respondent_staff,
        joint=event.joint,
        regulator_transfer=event.regulator_transfer,
        received_on=event.received_on,
        last_business_date=event.received_on,
        clock=built(Clock, anchor_on=event.received_on, due_on=event.due_on),
    )


def _changes(state: ComplaintState, event: Event) -> dict[str, Any]:
    """The fields `event` changes on `state`, with their new values."""
    match event:
        case HandlerAssigned():
            return dict(handler_id=event.handler_id, status=CaseStatus.ASSIGNED)
        case HandlerRecused():
            return dict(
                handler_id=None,
                status=CaseStatus.RECEIVED,
                recused_handlers=(*state.recused_handlers, event.handler_id),
            )
        case DeadlineExtended():
            return _extended(state, event)
        case ClockPaused():
            return _paused(state, event)
        case ClockResumed():
            return _resumed(state, event)
        case ComplaintSupplemented():
            return _supplemented(state, event)
        case ComplaintMerged():
            return dict(
                status=CaseStatus.MERGED,
                merged_into=event.into,
                clock=_stopped(state.clock, event.merged_on),
            )
        case ComplaintDecided():
            return _decided(state, event)
        case ComplainantNotified():
            return dict(
                notices=_noticed(state, event.subject, event.notice, event.summary),
                last_business_date=event.notice.notified_on,
            )
        case ReviewRequested():
            return _review_requested(state, event)
        case ReviewDecided():
            return _review_decided(state, event)
        case ComplaintWithdrawn():
            return dict(
                status=CaseStatus.WITHDRAWN,
                withdrawal=Withdrawal(event.received_on, event.reason),
                clock=_stopped(state.clock, event.received_on),
                last_business_date=event.received_on,
            )
        case ComplaintDeclined():
            return dict(
                status=CaseStatus.DECLINED,
                decline=Decline(event.reason, event.notice),
                clock=_stopped(state.clock, event.notice.notified_on),
                last_business_date=event.notice.notified_on,
                notices=_noticed(state, NoticeSubject.DECLINE, event.notice),
            )
        case MarkedMajor():
            return dict(major_flag=MajorFlag(event.cause, event.detail, event.marked_on))
    raise TypeError(f"not an event: {event!r}")


def _extended(state: ComplaintState, event: DeadlineExtended) -> dict[str, Any]:
    extension = Extension(event.level, event.reason, event.approval, event.notice, event.due_on)
    return dict(
        clock=changed(state.clock, level=event.level, due_on=event.due_on),
        extensions=(*state.extensions, extension),
        last_business_date=event.notice.notified_on,
        notices=_noticed(state, NoticeSubject.EXTENSION, event.notice),
    )


def _paused(state: ComplaintState, event: ClockPaused) -> dict[str, Any]:
    pause = Pause(event.kind, event.paused_on, event.reason, event.notice)
    return dict(
        clock=changed(state.clock, paused_since=event.paused_on),
        pauses=(*state.pauses, pause),
        last_business_date=max(event.paused_on, event.notice.notified_on),
        notices=_noticed(state, NoticeSubject.PAUSE, event.notice),
    )


def _resumed(state: ComplaintState, event: ClockResumed) -> dict[str, Any]:
    clock = state.clock
    counted_since = clock.paused_since or event.paused_on
    clock = changed(
        clock,
        paused_days=clock.paused_days + (event.resumed_on - counted_since).days,
        total_paused_days=clock.total_paused_days + event.paused_days,
        paused_since=None,
        due_on=event.due_on,
    )
    pauses = (*state.pauses[:-1], changed(state.pauses[-1], resumed_on=event.resumed_on))
    return dict(clock=clock, pauses=pauses, last_business_date=event.resumed_on)


def _supplemented(state: ComplaintState, event: ComplaintSupplemented) -> dict[str, Any]:
    clock = state.clock
    if event.restarted:
        # Art. 18 ¶3: the period counts afresh from the new materials; earlier pause days no
        # longer count, and an open pause now counts from the restart day.
        clock = changed(
            clock,
            anchor_on=event.received_on,
            paused_days=0,
            paused_since=event.received_on if clock.paused_since else None,
            due_on=event.due_on,
        )
    supplement = Supplement(
        event.received_on, event.new_facts_and_reasons, event.summary, event.restarted
    )
    return dict(
        clock=clock,
        supplements=(*state.supplements, supplement),
        last_business_date=event.received_on,
    )


def _decided(state: ComplaintState, event: ComplaintDecided) -> dict[str, Any]:
    decision = built(
        Decision,
        handler_id=event.handler_id,
        outcome=event.outcome,
        findings=event.findings,
        basis=event.basis,
        redress_fen=event.redress_fen,
        remedies=event.remedies,
        notice=event.notice,
        due_on=event.due_on,
        on_time=event.on_time,
        handling_days=event.handling_days,
        review_window_ends_on=event.review_window_ends_on,
    )
    return dict(
        status=CaseStatus.DECIDED,
        decision=decision,
        clock=_stopped(state.clock, event.notice.notified_on),
        last_business_date=event.notice.notified_on,
        notices=_noticed(state, NoticeSubject.DECISION, event.notice),
    )


def _review_requested(state: ComplaintState, event: ReviewRequested) -> dict[str, Any]:
    review = Review(
        requested_on=event.received_on,
        grounds=event.grounds,
        reviewing_institution=event.reviewing_institution,
        due_on=event.due_on,
    )
    return dict(
        status=CaseStatus.UNDER_REVIEW,
        review=review,
        last_business_date=event.received_on,
    )


def _review_decided(state: ComplaintState, event: ReviewDecided) -> dict[str, Any]:
    if state.review is None:
        raise ValueError("ReviewDecided without ReviewRequested")
    review_decision = ReviewDecision(
        reviewer_id=event.reviewer_id,
        outcome=event.outcome,
        findings=event.findings,
        new_outcome=event.new_outcome,
        new_redress_fen=event.new_redress_fen,
        notice=event.notice,
        on_time=event.on_time,
    )
    return dict(
        status=CaseStatus.REVIEW_DECIDED,
        review=changed(state.review, decision=review_decision),
        last_business_date=event.notice.notified_on,
        notices=_noticed(state, NoticeSubject.REVIEW_DECISION, event.notice),
    )


def _stopped(clock: Clock, on: date) -> Clock:
    if clock.stopped_on is not None:
        return clock  # a withdrawal after the decision leaves the decision's stop in place
    return changed(clock, stopped_on=on)


def _noticed(
    state: ComplaintState, subject: NoticeSubject, notice: Notice, summary: str = ""
) -> tuple[NoticeRecord, ...]:
    """The case's notices with this one added."""
    return (*state.notices, NoticeRecord(subject, notice, summary))
