"""Random command sequences through decide/evolve, checked against a small model of the rules.

The model below is written from DOMAIN.md and the regulation, not from the decider: it predicts,
for every command, either the rule code that refuses it or the change it makes (status, handler,
barred handlers, level, due-date arithmetic, pause days, major). After every step the case
rebuilt by `evolve` must agree with the model, and folding the stream again must give the same
state. A refused command must raise, emit nothing and leave the state as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from builders import (
    CASE_TREE,
    REMEDIES_WITH_REVIEW,
    REMEDIES_WITHOUT_REVIEW,
    action,
    appeal,
    approve_redress,
    attribute,
    context,
    decision,
    decline,
    extend,
    follow_up,
    pause,
    receive,
    rectify,
    resume,
    review_decision,
    supplement,
    withdraw,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from complaintcore.domain import (
    AssignHandler,
    ClockResumed,
    Command,
    ComplaintDecided,
    ComplaintState,
    ComplaintSupplemented,
    DeadlineExtended,
    DecideReview,
    Event,
    FlagMajor,
    MajorCause,
    MergeComplaint,
    Outcome,
    RecuseHandler,
    RespondentStaff,
    ReviewOutcome,
    RuleViolation,
    decide,
    evolve,
    fold,
)
from complaintcore.domain.commands import Satisfaction

PERIOD = {0: 15, 1: 30, 2: 60}  # Art. 18
NAMED_STAFF = "s-named"
STAFF = ("h1", "h2", "h3", NAMED_STAFF)
REVIEWERS = ("r1", *STAFF)
BEFORE_DECISION = {"received", "assigned"}
TERMINAL = {"withdrawn", "declined", "merged", "review_decided"}
# Mostly today, sometimes a few days back, sometimes (-1) a business date after today.
DAYS_BACK = st.sampled_from([0, 0, 0, 0, 1, 2, 3, -1])
# None stands for "the current handler", so that recusals and decisions often find them.
SOME_HANDLER = st.one_of(st.none(), st.sampled_from(STAFF))
# Redress authority (Art. 24; desk rule 客訴金額核決權限): the DOMAIN.md defaults, None unlimited.
STAFF_LIMIT, SUPERVISOR_LIMIT = 100_000, 5_000_000
LIMITS = st.sampled_from([None, STAFF_LIMIT, STAFF_LIMIT])
REDRESS = st.sampled_from([0, 30_000, STAFF_LIMIT, 200_000, 6_000_000])
ACTION_IDS = ("A1", "A2", "A3")


def days(count: int) -> timedelta:
    return timedelta(days=count)


@dataclass
class Model:
    """What the rules say the case should be."""

    superior: str | None
    anchor: date
    last_business_date: date
    status: str = "received"
    handler: str | None = None
    barred: set[str] = field(default_factory=lambda: {NAMED_STAFF})
    level: int = 0
    paused_days: int = 0
    paused_since: date | None = None
    major: bool = False
    decided_by: str | None = None
    window_ends_on: date | None = None
    reviewed: bool = False
    approved_up_to: int | None = None  # the unused redress approval (Art. 24)
    actions: dict[str, date | None] = field(default_factory=dict)  # id -> closed on (責任歸屬)
    attributed: bool = False
    satisfaction: Satisfaction | None = None
    followed_up: bool = False

    @property
    def due_on(self) -> date:
        return self.anchor + days(PERIOD[self.level] + self.paused_days)

    def closed_at(self, on: date) -> bool:
        if self.status in TERMINAL:
            return True
        return self.status == "decided" and (
            self.window_ends_on is None or on > self.window_ends_on
        )

    def dates_refusal(self, today: date, *business_dates: date) -> str | None:
        for day in business_dates:
            if day > today:
                return "business_date_in_future"
            if day < self.last_business_date:
                return "business_date_before_previous"
        return None

    def open_refusal(self, today: date, on: date) -> str | None:
        if self.status in TERMINAL:
            return "case_closed"
        dates = self.dates_refusal(today, on)
        if dates:
            return dates
        return "case_closed" if self.closed_at(on) else None

    def authority_refusal(self, redress_fen: int, limit: int | None) -> str | None:
        """Art. 24: within the caller's limit, or covered by the unused approval."""
        if limit is None or redress_fen <= limit:
            return None
        if self.approved_up_to is not None and self.approved_up_to >= redress_fen:
            return None
        return "redress_exceeds_authority"

    def after_decision_refusal(self, today: date, on: date) -> str | None:
        """Attribution and follow-up: any business date in order, once decided, closed or not."""
        refusal = self.dates_refusal(today, on)
        if refusal is None and self.decided_by is None:
            return "case_not_decided"
        return refusal

    def undecided_refusal(self, today: date, on: date) -> str | None:
        refusal = self.open_refusal(today, on)
        if refusal is None and self.status not in BEFORE_DECISION:
            return "case_already_decided"
        return refusal


class ComplaintLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []
        self.state: ComplaintState
        self.states_seen: list[tuple[ComplaintState, dict]] = []  # each with its fields then
        self.model: Model
        self.today = date(2026, 1, 1)

    # --- driving -------------------------------------------------------------------------

    def attempt(
        self, command: Command, refusal: str | None, **context_overrides: Any
    ) -> list[Event]:
        before = self.state
        ctx = context(self.today, superior=self.model.superior, **context_overrides)
        try:
            events = decide(before, command, ctx)
        except RuleViolation as refused:
            assert refused.code == refusal, f"{command}: refused {refused.code}, model {refusal}"
            assert self.state == before == fold(self.events)
            return []
        assert refusal is None, f"{command}: accepted, model expected {refusal}"
        assert events, "an accepted command emits at least one event"
        for event in events:
            self.state = evolve(self.state, event)
            self.states_seen.append((self.state, dict(vars(self.state))))
        self.events.extend(events)
        return events

    @initialize(
        received_on=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 6, 30)),
        superior=st.sampled_from([None, "BR-SH"]),
    )
    def receive(self, received_on: date, superior: str | None) -> None:
        self.today = received_on
        staff = (RespondentStaff(NAMED_STAFF, "赵六"),)
        command = receive(received_on, respondent_staff=staff)
        self.model = Model(superior=superior, anchor=received_on, last_business_date=received_on)
        self.events = decide(None, command, context(received_on, superior=superior))
        state = fold(self.events)
        assert state is not None
        self.state = state

    @rule(count=st.sampled_from([1, 2, 5, 10, 16, 31]))
    def time_passes(self, count: int) -> None:
        self.today += days(count)

    # --- assignment and recusal (Art. 17) ----------------------------------------------------

    @rule(handler=st.sampled_from(STAFF))
    def assign(self, handler: str) -> None:
        model = self.model
        refusal = model.undecided_refusal(self.today, self.today)
        if refusal is None and handler in model.barred:
            refusal = "handler_has_conflict"
        if refusal is None and handler == model.handler:
            refusal = "handler_already_assigned"
        if self.attempt(AssignHandler(handler), refusal):
            model.handler, model.status = handler, "assigned"

    @rule(handler=SOME_HANDLER)
    def recuse(self, handler: str | None) -> None:
        model = self.model
        handler = handler or model.handler or STAFF[0]
        refusal = model.undecided_refusal(self.today, self.today) or self.handler_refusal(handler)
        if self.attempt(RecuseHandler(handler, "利益冲突"), refusal):
            model.barred.add(handler)
            model.handler, model.status = None, "received"

    def handler_refusal(self, handler: str) -> str | None:
        if self.model.handler is None:
            return "case_not_assigned"
        return "handler_not_assigned" if handler != self.model.handler else None

    # --- deadlines (Art. 18, 23) ---------------------------------------------------------

    @rule(back=DAYS_BACK, approved=st.booleans())
    def extend(self, back: int, approved: bool) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.undecided_refusal(self.today, on)
        if refusal is None:
            refusal = (
                ("case_paused" if model.paused_since else None)
                or ("extension_limit_reached" if model.level == 2 else None)
                or ("case_overdue" if on > model.due_on else None)
                or ("extension_requires_approval" if model.level == 1 and not approved else None)
            )
        previous_due_on = self.state.due_on
        if self.attempt(extend(on, approved=approved), refusal):
            model.level += 1
            model.last_business_date = on
            assert self.state.due_on > previous_due_on  # an extension never moves it earlier
            assert isinstance(self.events[-1], DeadlineExtended)

    @rule(back=DAYS_BACK)
    def pause(self, back: int) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.undecided_refusal(self.today, on)
        if refusal is None:
            refusal = ("pause_already_open" if model.paused_since else None) or (
                "case_overdue" if on > model.due_on else None
            )
        if self.attempt(pause(on), refusal):
            model.paused_since = model.last_business_date = on

    @rule(back=DAYS_BACK)
    def resume(self, back: int) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.undecided_refusal(self.today, on)
        if refusal is None and model.paused_since is None:
            refusal = "case_not_paused"
        due_before = self.state.due_on
        if self.attempt(resume(on), refusal):
            assert model.paused_since is not None
            counted = (on - model.paused_since).days
            model.paused_days += counted
            model.paused_since = None
            model.last_business_date = on
            assert self.state.due_on - due_before == days(counted)  # moves by the paused days
            assert isinstance(self.events[-1], ClockResumed)

    @rule(back=DAYS_BACK, new_facts=st.booleans())
    def supplement(self, back: int, new_facts: bool) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.undecided_refusal(self.today, on)
        within_period = model.paused_since is not None or on <= model.due_on
        if self.attempt(supplement(on, new_facts=new_facts), refusal):
            restarted = new_facts and within_period
            event = self.events[-1]
            assert isinstance(event, ComplaintSupplemented) and event.restarted is restarted
            if restarted:
                model.anchor, model.paused_days = on, 0
                model.paused_since = on if model.paused_since else None
            model.last_business_date = on

    # --- decision and review (Art. 18-21) ------------------------------------------------

    @rule(handler=SOME_HANDLER, back=DAYS_BACK, redress=REDRESS, limit=LIMITS)
    def decide_complaint(
        self, handler: str | None, back: int, redress: int = 30_000, limit: int | None = None
    ) -> None:
        model, on = self.model, self.today - days(back)
        handler = handler or model.handler or STAFF[0]
        refusal = model.undecided_refusal(self.today, on) or self.handler_refusal(handler)
        if refusal is None and model.paused_since is not None:
            refusal = "case_paused"
        refusal = refusal or model.authority_refusal(redress, limit)
        remedies = REMEDIES_WITH_REVIEW if model.superior else REMEDIES_WITHOUT_REVIEW
        due_on = model.due_on
        command = decision(on, handler=handler, remedies=remedies, redress_fen=redress)
        if self.attempt(command, refusal, redress_limit_fen=limit):
            event = self.events[-1]
            assert isinstance(event, ComplaintDecided)
            assert event.due_on == due_on
            assert event.on_time is (on <= due_on)  # met iff notified by the due date
            model.status, model.decided_by, model.last_business_date = "decided", handler, on
            model.window_ends_on = on + days(30) if model.superior else None
            model.approved_up_to = None  # used or not, a decision voids the approval

    @rule(back=DAYS_BACK)
    def request_review(self, back: int) -> None:
        model, on = self.model, self.today - days(back)
        refusal = "case_closed" if model.status in TERMINAL else None
        refusal = refusal or model.dates_refusal(self.today, on)
        if refusal is None:
            if model.status in BEFORE_DECISION:
                refusal = "case_not_decided"
            elif model.status == "under_review":
                refusal = "review_already_requested"
            elif model.window_ends_on is None:
                refusal = "review_not_available"
            elif on > model.window_ends_on:
                refusal = "appeal_window_closed"
        if self.attempt(appeal(on), refusal):
            model.status, model.last_business_date = "under_review", on
            assert self.state.review is not None
            assert self.state.review.due_on == on + days(30)

    @rule(
        reviewer=st.sampled_from(REVIEWERS),
        changed=st.booleans(),
        back=DAYS_BACK,
        new_redress=st.none() | REDRESS,
        limit=LIMITS,
    )
    def decide_review(
        self,
        reviewer: str,
        changed: bool,
        back: int,
        new_redress: int | None = None,
        limit: int | None = None,
    ) -> None:
        model, on = self.model, self.today - days(back)
        new_redress = new_redress if changed else None
        refusal = model.open_refusal(self.today, on)
        if refusal is None:
            if model.status in BEFORE_DECISION:
                refusal = "case_not_decided"
            elif model.status != "under_review":
                refusal = "review_not_requested"
            elif reviewer in model.barred or reviewer == model.decided_by:
                refusal = "reviewer_has_conflict"
            elif new_redress is not None:
                refusal = model.authority_refusal(new_redress, limit)
        command = DecideReview(
            reviewer_id=reviewer,
            outcome=ReviewOutcome.CHANGED if changed else ReviewOutcome.KEPT,
            findings="处理过程、时限和结果经核查",
            notice=review_decision(on).notice,
            new_outcome=Outcome.UPHELD if changed else None,
            new_redress_fen=new_redress,
        )
        if self.attempt(command, refusal, redress_limit_fen=limit):
            model.status, model.last_business_date = "review_decided", on
            model.approved_up_to = None

    # --- internal control (Art. 24, 26; desk rules 客訴金額核決權限, 責任歸屬; 回访) -----------

    @rule(
        role=st.sampled_from(["supervisor", "supervisor", "staff", "regulator"]),
        above=st.sampled_from([True, True, True, False]),
        up_to=st.sampled_from([50_000, 200_000, SUPERVISOR_LIMIT, SUPERVISOR_LIMIT + 1]),
        back=DAYS_BACK,
    )
    def approve_redress(self, role: str, above: bool, up_to: int, back: int) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.open_refusal(self.today, on)
        if refusal is None and (role != "supervisor" or not above or up_to > SUPERVISOR_LIMIT):
            refusal = "approver_lacks_authority"
        authority = {
            "actor_role": role,
            "actor_at_or_above_respondent": above,
            "redress_limit_fen": SUPERVISOR_LIMIT,
        }
        if self.attempt(approve_redress(on, up_to), refusal, **authority):
            model.approved_up_to, model.last_business_date = up_to, on

    @rule(
        back=DAYS_BACK,
        count=st.integers(0, len(ACTION_IDS)),
        institution=st.sampled_from([*sorted(CASE_TREE), "OTHER-BANK"]),
    )
    def attribute(self, back: int, count: int, institution: str) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.after_decision_refusal(self.today, on)
        if refusal is None and institution not in CASE_TREE:
            refusal = "unknown_institution"
        ids = ACTION_IDS[:count]
        command = attribute(
            on,
            *(action(action_id, on + days(10)) for action_id in ids),
            responsible_institution=institution,
        )
        if self.attempt(command, refusal, institutions_of_case_tree=CASE_TREE):
            # the new list replaces the old; an id already closed stays closed
            model.actions = {action_id: model.actions.get(action_id) for action_id in ids}
            model.attributed, model.last_business_date = True, on

    @rule(action_id=st.sampled_from(ACTION_IDS), back=DAYS_BACK)
    def rectify(self, action_id: str, back: int) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.dates_refusal(self.today, on)
        if refusal is None and action_id not in model.actions:
            refusal = "unknown_action"
        if refusal is None and model.actions[action_id] is not None:
            refusal = "action_already_closed"
        if self.attempt(rectify(action_id, on), refusal):
            model.actions[action_id], model.last_business_date = on, on

    @rule(satisfaction=st.none() | st.sampled_from(Satisfaction), back=DAYS_BACK)
    def follow_up(self, satisfaction: Satisfaction | None, back: int) -> None:
        model, on = self.model, self.today - days(back)
        refusal = model.after_decision_refusal(self.today, on)
        if self.attempt(follow_up(on, satisfaction), refusal):
            model.satisfaction, model.followed_up, model.last_business_date = (
                satisfaction,
                True,
                on,
            )

    # --- exits (Art. 15, 18) and major (Art. 29) -----------------------------------------

    @rule(back=DAYS_BACK)
    def withdraw(self, back: int) -> None:
        model, on = self.model, self.today - days(back)
        if self.attempt(withdraw(on), model.open_refusal(self.today, on)):
            model.status, model.last_business_date = "withdrawn", on

    @rule(back=DAYS_BACK, merge=st.booleans())
    def decline_or_merge(self, back: int, merge: bool) -> None:
        """One rule for both, so that fewer runs end before a decision."""
        model, on = self.model, self.today - days(back)
        if merge:
            refusal = model.undecided_refusal(self.today, self.today)
            if self.attempt(MergeComplaint("case-0"), refusal):
                model.status = "merged"
        elif self.attempt(decline(on), model.undecided_refusal(self.today, on)):
            model.status, model.last_business_date = "declined", on

    @rule(
        role=st.sampled_from(["staff", "supervisor", "regulator", "admin"]),
        cause=st.sampled_from(
            [
                MajorCause.DISASTER,
                MajorCause.ACCIDENT,
                MajorCause.PUBLIC_HEALTH,
                MajorCause.REGULATOR,
            ]
        ),
    )
    def flag_major(self, role: str, cause: MajorCause) -> None:
        model = self.model
        refusal = model.open_refusal(self.today, self.today)
        may_flag = role == "regulator" or (
            role in ("staff", "supervisor") and cause is not MajorCause.REGULATOR
        )
        if refusal is None and not may_flag:
            refusal = "not_authorized_to_designate"
        if refusal is None and model.major:
            refusal = "already_major"
        if self.attempt(FlagMajor(cause, "详情"), refusal, actor_role=role):
            model.major = True

    @rule()
    def next_natural_step(self) -> None:
        """The step a diligent desk would take next, so that runs reach decisions and reviews;
        it goes through the same model predictions as the random rules."""
        model = self.model
        if model.status == "received":
            self.assign(next((staff for staff in STAFF if staff not in model.barred), STAFF[0]))
        elif model.status == "assigned" and model.paused_since is not None:
            self.resume(0)
        elif model.status == "assigned":
            self.decide_complaint(None, 0)
        elif model.status == "decided":
            self.request_review(0)
        elif model.status == "under_review":
            self.decide_review("r1", changed=False, back=0)
        elif model.decided_by is not None and not model.attributed:
            self.attribute(0, 2, "BR-SH")
        elif model.decided_by is not None and None in model.actions.values():
            self.rectify(next(i for i, closed in model.actions.items() if closed is None), 0)
        else:
            self.withdraw(0)

    # --- the state agrees with the model ---------------------------------------------------

    @invariant()
    def state_agrees_with_the_model(self) -> None:
        state, model = self.state, self.model
        assert state.status == model.status
        assert state.handler_id == model.handler
        assert state.barred_handlers == model.barred
        assert state.level == model.level
        assert state.clock.paused_days == model.paused_days
        assert state.clock.paused_since == model.paused_since
        assert state.major is model.major
        assert state.last_business_date == model.last_business_date
        if state.decision is None:
            assert state.due_on == model.due_on

    @invariant()
    def internal_control_agrees_with_the_model(self) -> None:
        state, model = self.state, self.model
        approval = state.redress_approval
        assert (approval.up_to_fen if approval else None) == model.approved_up_to
        attribution = state.attribution
        assert (attribution is not None) is model.attributed
        closed = {a.action_id: a.closed_on for a in attribution.actions} if attribution else {}
        assert closed == model.actions
        assert (state.follow_up is not None) is model.followed_up
        if state.follow_up is not None:
            assert state.follow_up.satisfaction == model.satisfaction
            assert state.follow_up.reached is (model.satisfaction is not None)

    @invariant()
    def folding_the_stream_rebuilds_the_same_state(self) -> None:
        assert fold(self.events) == self.state
        assert fold(list(self.events)) == fold(self.events)
        assert self.state.version == len(self.events)
        # fold fills its own record in place: no state handed out before may have changed
        assert all(vars(state) == fields for state, fields in self.states_seen)

    @invariant()
    def a_decision_met_its_deadline_iff_notified_by_the_due_date(self) -> None:
        decided = self.state.decision
        if decided is not None:
            assert decided.on_time is (decided.notice.notified_on <= decided.due_on)


ComplaintLifecycle.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None
)
test_the_case_follows_the_rules_for_any_command_sequence = ComplaintLifecycle.TestCase
