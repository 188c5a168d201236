"""Builders shared by the domain tests: valid commands, contexts and a case under test."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

import pytest

from complaintcore.domain import (
    DEFAULT_POLICY,
    ActorRole,
    Agent,
    Approval,
    ApproverRole,
    AssignHandler,
    Category,
    Command,
    Complainant,
    ComplainantKind,
    ComplaintReceived,
    ComplaintState,
    DecideComplaint,
    DecideReview,
    DecisionContext,
    DeclineComplaint,
    ErasePersonalData,
    Event,
    ExtendDeadline,
    IdType,
    InstitutionPolicy,
    InvalidCommand,
    JointComplaint,
    Notice,
    NoticeMethod,
    Outcome,
    PauseClock,
    PauseKind,
    ReceiveComplaint,
    Remedy,
    RequestReview,
    RespondentStaff,
    ResumeClock,
    ReviewOutcome,
    RuleViolation,
    SupplementComplaint,
    WithdrawComplaint,
    decide,
    evolve,
    fold,
    seeded_calendar,
)
from complaintcore.domain.commands import (
    ApproveRedress,
    Attribute,
    FollowUp,
    RectificationAction,
    Rectify,
    RootCause,
    Satisfaction,
    own_business_date,
)

CALENDAR = seeded_calendar()
SUPERIOR = "BR-SH"  # the respondent sub-branch's superior, a branch
RESPONDENT = "SB-SH-PD"
HANDLER = "h-wang"
OTHER_HANDLER = "h-li"
RESPONDENT_STAFF_ID = "s-zhao"
REVIEWER = "r-chen"
VALID_RESIDENT_ID = "11010519491231002X"
VALID_CREDIT_CODE = "91350100M000100Y43"
REMEDIES_WITH_REVIEW = (Remedy.REVIEW, Remedy.MEDIATION, Remedy.ARBITRATION, Remedy.LITIGATION)
REMEDIES_WITHOUT_REVIEW = (Remedy.MEDIATION, Remedy.ARBITRATION, Remedy.LITIGATION)
HEAD_OFFICE = "HO"
CASE_TREE = frozenset({HEAD_OFFICE, SUPERIOR, RESPONDENT, "BR-BJ", "SB-SH-XH"})
STAFF_LIMIT_FEN = 100_000  # DOMAIN.md "Redress authority" defaults
SUPERVISOR_LIMIT_FEN = 5_000_000
# A branch supervisor above the respondent sub-branch, with the default supervisor limit.
BRANCH_SUPERVISOR: dict[str, Any] = {
    "actor_role": "supervisor",
    "actor_id": "sup-zhou",
    "actor_at_or_above_respondent": True,
    "redress_limit_fen": SUPERVISOR_LIMIT_FEN,
    "redress_limit_source": "default",
}
# The assigned handler deciding under the default staff limit.
STAFF_WITH_LIMIT: dict[str, Any] = {
    "redress_limit_fen": STAFF_LIMIT_FEN,
    "redress_limit_source": "policy of BR-SH, version 3",
}


def d(iso: str) -> date:
    return date.fromisoformat(iso)


def days(count: int) -> timedelta:
    return timedelta(days=count)


def context(
    today: date,
    *,
    policy: InstitutionPolicy = DEFAULT_POLICY,
    actor_role: str = "staff",
    superior: str | None = SUPERIOR,
    actor_id: str = "actor-1",
    **internal_control: Any,
) -> DecisionContext:
    """`internal_control`: the redress limit, its source, the caller's place in the tree and the
    case's tree (`DecisionContext`'s defaulted fields)."""
    return DecisionContext(
        today=today,
        calendar=CALENDAR,
        policy=policy,
        actor_id=actor_id,
        actor_role=ActorRole(actor_role),
        superior_of_respondent=superior,
        **internal_control,
    )


def person(**overrides: Any) -> Complainant:
    values: dict[str, Any] = {
        "kind": ComplainantKind.NATURAL_PERSON,
        "name": "张三",
        "id_type": IdType.RESIDENT_ID,
        "id_number": VALID_RESIDENT_ID,
        "contact": "13812345678",
    }
    return Complainant(**(values | overrides))


def company(**overrides: Any) -> Complainant:
    values: dict[str, Any] = {
        "kind": ComplainantKind.LEGAL_PERSON,
        "name": "福州某某贸易有限公司",
        "address": "福州市鼓楼区某路1号",
        "unified_social_credit_code": VALID_CREDIT_CODE,
        "legal_representative_name": "李四",
        "legal_representative_contact": "13900001111",
    }
    return Complainant(**(values | overrides))


def agent(**overrides: Any) -> Agent:
    values: dict[str, Any] = {
        "name": "王五",
        "id_type": IdType.RESIDENT_ID,
        "id_number": "440301199001011234",
        "contact": "13700002222",
        "authorization_ref": "auth-letter-001",
    }
    return Agent(**(values | overrides))


def receive(received_on: date, **overrides: Any) -> ReceiveComplaint:
    values: dict[str, Any] = {
        "case_id": "case-1",
        "registration_no": f"{RESPONDENT}-{received_on:%Y%m}-000001",
        "respondent_institution": RESPONDENT,
        "channel": "phone",
        "received_on": received_on,
        "complainant": person(),
        "claims": "退还多收的年费",
        "facts": "信用卡年费在免年费期内被扣收",
        "category": Category("credit_card", "pricing_and_fees"),
    }
    return ReceiveComplaint(**(values | overrides))


def notice(on: date, **overrides: Any) -> Notice:
    values: dict[str, Any] = {
        "notified_on": on,
        "method": NoticeMethod.SMS,
        "proof_ref": f"sms-{on.isoformat()}",
    }
    return Notice(**(values | overrides))


def unreachable(on: date, attempts: int = 3) -> Notice:
    return Notice(notified_on=on, unreachable=True, attempts=attempts)


def extend(on: date, *, approved: bool = False) -> ExtendDeadline:
    approval = Approval("m-sun", ApproverRole.HEAD_OFFICE_SENIOR_MANAGER) if approved else None
    return ExtendDeadline(reason="情况复杂", notice=notice(on), approval=approval)


def pause(on: date, kind: PauseKind = PauseKind.APPRAISAL) -> PauseClock:
    return PauseClock(kind=kind, paused_on=on, reason="委托外部机构鉴定", notice=notice(on))


def resume(on: date) -> ResumeClock:
    return ResumeClock(resumed_on=on)


def supplement(on: date, *, new_facts: bool) -> SupplementComplaint:
    return SupplementComplaint(received_on=on, new_facts_and_reasons=new_facts, summary="补充材料")


def decision(
    on: date,
    *,
    handler: str = HANDLER,
    remedies: tuple[Remedy, ...] = REMEDIES_WITH_REVIEW,
    outcome: Outcome = Outcome.PARTIALLY_UPHELD,
    redress_fen: int = 30_000,
    notice_: Notice | None = None,
) -> DecideComplaint:
    return DecideComplaint(
        handler_id=handler,
        outcome=outcome,
        findings="年费扣收有误",
        basis="信用卡领用合约第5条",
        remedies=remedies,
        notice=notice_ or notice(on),
        redress_fen=redress_fen,
    )


def appeal(on: date) -> RequestReview:
    return RequestReview(received_on=on, grounds="退款金额不足")


def review_decision(
    on: date,
    *,
    reviewer: str = REVIEWER,
    outcome: ReviewOutcome = ReviewOutcome.KEPT,
    new_outcome: Outcome | None = None,
    new_redress_fen: int | None = None,
) -> DecideReview:
    return DecideReview(
        reviewer_id=reviewer,
        outcome=outcome,
        findings="处理过程、时限和结果经核查",
        notice=notice(on),
        new_outcome=new_outcome,
        new_redress_fen=new_redress_fen,
    )


def withdraw(on: date) -> WithdrawComplaint:
    return WithdrawComplaint(received_on=on, reason="已协商解决")


def decline(on: date) -> DeclineComplaint:
    return DeclineComplaint(reason="非投诉人本人或其受托人提出", notice=notice(on))


def erase(on: date) -> ErasePersonalData:
    return ErasePersonalData(
        erased_on=on, reason="保存期限届满", legal_basis="《个人信息保护法》第四十七条"
    )


def approve_redress(on: date, up_to_fen: int = 200_000) -> ApproveRedress:
    return ApproveRedress(up_to_fen=up_to_fen, note="客户损失核实无误, 同意赔付", approved_on=on)


def action(action_id: str, due_on: date, owner_id: str = "o-qian") -> RectificationAction:
    return RectificationAction(action_id, f"修订年费减免流程 {action_id}", owner_id, due_on)


def attribute(
    on: date,
    *actions: RectificationAction,
    root_cause: RootCause = RootCause.RULES_AND_PROCESS,
    **overrides: Any,
) -> Attribute:
    values: dict[str, Any] = {
        "attributed_on": on,
        "responsible_institution": RESPONDENT,
        "department": "信用卡中心",
        "responsible_staff": (RESPONDENT_STAFF_ID,),
        "root_cause": root_cause,
        "third_party": "某催收公司" if root_cause is RootCause.THIRD_PARTY else None,
        "actions": actions,
    }
    return Attribute(**(values | overrides))


def rectify(action_id: str, on: date) -> Rectify:
    return Rectify(action_id=action_id, done_on=on, evidence_ref=f"ev-{action_id}")


def follow_up(on: date, satisfaction: Satisfaction | None = Satisfaction.SATISFIED) -> FollowUp:
    return FollowUp(
        reached=satisfaction is not None,
        followed_up_on=on,
        satisfaction=satisfaction,
        note="客户表示认可" if satisfaction else "电话无人接听",
    )


def business_date(command: Command) -> date | None:
    """The date a command is about (tests enter each command on that day unless told)."""
    return own_business_date(command)


@dataclass
class Case:
    """A case under test: commands go through `decide`, their events through `evolve`."""

    policy: InstitutionPolicy = DEFAULT_POLICY
    superior: str | None = SUPERIOR
    actor_role: str = "staff"
    tree: frozenset[str] = CASE_TREE
    events: list[Event] = field(default_factory=list)
    today: date = date(2026, 1, 1)

    @property
    def state(self) -> ComplaintState:
        state = fold(self.events)
        assert state is not None
        return state

    def context(self, today: date | None = None, **overrides: Any) -> DecisionContext:
        values: dict[str, Any] = {
            "policy": self.policy,
            "superior": self.superior,
            "actor_role": self.actor_role,
            "institutions_of_case_tree": self.tree,
        }
        return context(today or self.today, **(values | overrides))

    def do(self, command: Command, today: date | None = None, **overrides: Any) -> list[Event]:
        """Decide `command`, entered on `today` (default: its business date) and apply it."""
        self.today = today or business_date(command) or self.today
        state = fold(self.events)
        new_events = decide(state, command, self.context(**overrides))
        for event in new_events:
            state = evolve(state, event)
        self.events.extend(new_events)
        return new_events

    def refuse(self, command: Command, today: date | None = None, **overrides: Any) -> str:
        """The rule code refusing `command`; asserts nothing was emitted or changed."""
        before = fold(self.events)
        entered_on = today or business_date(command) or self.today
        with pytest.raises(RuleViolation) as refused:
            decide(before, command, self.context(entered_on, **overrides))
        assert fold(self.events) == before
        return refused.value.code

    def invalid(
        self, command: Command, today: date | None = None, **overrides: Any
    ) -> list[tuple[str, str]]:
        """The (field, code) pairs of an `InvalidCommand`."""
        entered_on = today or business_date(command) or self.today
        with pytest.raises(InvalidCommand) as invalid:
            decide(fold(self.events), command, self.context(entered_on, **overrides))
        return [(error.field, error.code) for error in invalid.value.errors]


def received_case(received_on: date, **overrides: Any) -> Case:
    case = Case(**overrides)
    case.do(receive(received_on))
    return case


def assigned_case(received_on: date, handler: str = HANDLER, **overrides: Any) -> Case:
    case = received_case(received_on, **overrides)
    case.do(AssignHandler(handler), today=received_on)
    return case


def decided_case(received_on: date, decided_on: date, **overrides: Any) -> Case:
    case = assigned_case(received_on, **overrides)
    remedies = REMEDIES_WITH_REVIEW if case.superior is not None else REMEDIES_WITHOUT_REVIEW
    case.do(decision(decided_on, remedies=remedies))
    return case


def roll_policy(**overrides: Any) -> InstitutionPolicy:
    return replace(DEFAULT_POLICY, roll_past_holidays=True, **overrides)


def received_with_everything() -> ComplaintReceived:
    """A receipt with every personal field given: address, agent, respondent staff, joint."""
    case = Case()
    case.do(
        receive(
            d("2026-03-02"),
            channel="in_person",
            complainant=person(address="上海市浦东新区某路2号"),
            agent=agent(),
            respondent_staff=(RespondentStaff(RESPONDENT_STAFF_ID, "赵六"),),
            joint=JointComplaint(complainants=8, representatives=("代表甲", "代表乙")),
        )
    )
    received = case.events[0]
    assert isinstance(received, ComplaintReceived)
    return received
