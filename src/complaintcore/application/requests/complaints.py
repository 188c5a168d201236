"""Request bodies of the complaint commands (API.md "Commands") and their domain commands.

Business dates default to today (Asia/Shanghai) when left out; `today` is passed in so the
mapping stays a pure function.
"""

from datetime import date
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from complaintcore.application.requests.fields import (
    Body,
    BusinessDate,
    Channel,
    Code,
    Count,
    DocumentNumber,
    Fen,
    Flag,
    OptionalText,
    ShortText,
    Text,
)
from complaintcore.domain import commands as c


def _examples(*examples: dict) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class NoticeBody(Body):
    """`{method, notified_on, proof_ref}`, or `{unreachable: true, notified_on, attempts}`."""

    method: c.NoticeMethod | None = None
    notified_on: BusinessDate | None = None
    proof_ref: OptionalText = ""
    agreed_terms: OptionalText = ""
    unreachable: Flag = False
    attempts: Annotated[Count, Field(ge=0, le=1000)] = 0

    @model_validator(mode="after")
    def method_or_unreachable(self) -> "NoticeBody":
        if self.unreachable and self.method is not None:
            raise ValueError("a notice is either sent by a method or unreachable, not both")
        if not self.unreachable and self.method is None:
            raise ValueError("method is required unless unreachable is true")
        if self.unreachable and self.attempts < 1:
            raise ValueError("an unreachable notice records at least one attempt")
        return self

    def to_domain(self, today: date) -> c.Notice:
        return c.Notice(
            notified_on=self.notified_on or today,
            method=self.method,
            proof_ref=self.proof_ref,
            agreed_terms=self.agreed_terms,
            unreachable=self.unreachable,
            attempts=self.attempts,
        )


class ComplainantBody(Body):
    kind: c.ComplainantKind
    name: ShortText
    contact: OptionalText = ""
    id_type: c.IdType | None = None
    id_number: DocumentNumber = ""
    address: OptionalText = ""
    unified_social_credit_code: DocumentNumber = ""
    legal_representative_name: OptionalText = ""
    legal_representative_contact: OptionalText = ""

    def to_domain(self) -> c.Complainant:
        return c.Complainant(**self.model_dump())


class AgentBody(Body):
    name: ShortText
    id_type: c.IdType
    id_number: Annotated[DocumentNumber, Field(min_length=1)]
    contact: ShortText
    authorization_ref: Text = Field(description="The power of attorney (授权委托书), Art. 14.")

    def to_domain(self) -> c.Agent:
        return c.Agent(**self.model_dump())


class CategoryBody(Body):
    business: Code
    reason: Code


class RespondentStaffBody(Body):
    staff_id: Code
    name: ShortText


class JointBody(Body):
    complainants: Annotated[Count, Field(ge=1, le=1_000_000)]
    representatives: Annotated[list[ShortText], Field(max_length=100)] = []


class RegulatorTransferBody(Body):
    regulator_received_on: BusinessDate
    forwarded_on: BusinessDate


class ReceiveBody(Body):
    respondent_institution: Code
    channel: Channel
    received_on: BusinessDate | None = None
    complainant: ComplainantBody
    agent: AgentBody | None = None
    heir_proof_ref: Text | None = Field(
        default=None,
        description="Proof of succession (继承关系证明), when an heir complains (Art. 14).",
    )
    claims: Text
    facts: Text
    category: CategoryBody
    respondent_staff: Annotated[list[RespondentStaffBody], Field(max_length=100)] = []
    joint: JointBody | None = None
    regulator_transfer: RegulatorTransferBody | None = None

    model_config = _examples(
        {
            "respondent_institution": "BR-SH-01",
            "channel": "phone",
            "received_on": "2026-11-20",
            "complainant": {
                "kind": "natural_person",
                "name": "张三",
                "id_type": "resident_id",
                "id_number": "11010519491231002X",
                "contact": "13800138000",
            },
            "claims": "退还信用卡年费 300 元",
            "facts": "未经同意扣收年费",
            "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        }
    )

    def to_command(self, case_id: str, registration_no: str, today: date) -> c.ReceiveComplaint:
        return c.ReceiveComplaint(
            case_id=case_id,
            registration_no=registration_no,
            respondent_institution=self.respondent_institution,
            channel=self.channel,
            received_on=self.received_on or today,
            complainant=self.complainant.to_domain(),
            claims=self.claims,
            facts=self.facts,
            category=c.Category(self.category.business, self.category.reason),
            agent=self.agent.to_domain() if self.agent else None,
            filed_by_heir=self.heir_proof_ref is not None,
            heir_proof_ref=self.heir_proof_ref or "",
            respondent_staff=tuple(
                c.RespondentStaff(staff.staff_id, staff.name) for staff in self.respondent_staff
            ),
            joint=(
                c.JointComplaint(self.joint.complainants, tuple(self.joint.representatives))
                if self.joint
                else None
            ),
            regulator_transfer=(
                c.RegulatorTransfer(
                    self.regulator_transfer.regulator_received_on,
                    self.regulator_transfer.forwarded_on,
                )
                if self.regulator_transfer
                else None
            ),
        )


NOTICE_EXAMPLE = {"method": "sms", "notified_on": "2026-11-21", "proof_ref": "SMS-20261121-0042"}


class AssignBody(Body):
    handler_id: Code
    model_config = _examples({"handler_id": "staff-0012"})

    def to_command(self, today: date) -> c.AssignHandler:
        return c.AssignHandler(self.handler_id)


class RecuseBody(Body):
    handler_id: Code
    reason: Text
    model_config = _examples({"handler_id": "staff-0012", "reason": "与投诉人存在亲属关系"})

    def to_command(self, today: date) -> c.RecuseHandler:
        return c.RecuseHandler(self.handler_id, self.reason)


class ApprovalBody(Body):
    approver_id: Code
    approver_role: c.ApproverRole


class ExtendBody(Body):
    reason: Text
    approval: ApprovalBody | None = None
    notice: NoticeBody
    model_config = _examples({"reason": "需调取异地交易记录，情况复杂", "notice": NOTICE_EXAMPLE})

    def to_command(self, today: date) -> c.ExtendDeadline:
        approval = (
            c.Approval(self.approval.approver_id, self.approval.approver_role)
            if self.approval
            else None
        )
        return c.ExtendDeadline(self.reason, self.notice.to_domain(today), approval)


class PauseBody(Body):
    kind: c.PauseKind
    paused_on: BusinessDate | None = None
    reason: Text
    notice: NoticeBody
    model_config = _examples(
        {
            "kind": "appraisal",
            "paused_on": "2026-11-21",
            "reason": "委托第三方司法鉴定签名真伪",
            "notice": NOTICE_EXAMPLE,
        }
    )

    def to_command(self, today: date) -> c.PauseClock:
        return c.PauseClock(
            self.kind, self.paused_on or today, self.reason, self.notice.to_domain(today)
        )


class ResumeBody(Body):
    resumed_on: BusinessDate | None = None
    model_config = _examples({"resumed_on": "2026-11-22"})

    def to_command(self, today: date) -> c.ResumeClock:
        return c.ResumeClock(self.resumed_on or today)


class SupplementBody(Body):
    received_on: BusinessDate | None = None
    new_facts_and_reasons: Flag
    summary: Text
    model_config = _examples(
        {"received_on": "2026-11-21", "new_facts_and_reasons": True, "summary": "补充提交通话录音"}
    )

    def to_command(self, today: date) -> c.SupplementComplaint:
        return c.SupplementComplaint(
            self.received_on or today, self.new_facts_and_reasons, self.summary
        )


class MergeBody(Body):
    into: Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{36}$", description="The case id.")]
    model_config = _examples({"into": "0b5e4c1e-54a4-4d7e-9c1e-6a51b1f0c2d3"})

    def to_command(self, today: date) -> c.MergeComplaint:
        return c.MergeComplaint(self.into.lower())


class DecideBody(Body):
    handler_id: Code
    outcome: c.Outcome
    findings: Text
    basis: Text
    redress_fen: Fen = 0
    remedies: Annotated[list[c.Remedy], Field(max_length=4)] = []
    notice: NoticeBody
    model_config = _examples(
        {
            "handler_id": "staff-0012",
            "outcome": "partially_upheld",
            "findings": "年费扣收前未按约定短信提示",
            "basis": "《信用卡章程》第十二条",
            "redress_fen": 30000,
            "remedies": ["review", "mediation", "litigation"],
            "notice": NOTICE_EXAMPLE,
        }
    )

    def to_command(self, today: date) -> c.DecideComplaint:
        return c.DecideComplaint(
            handler_id=self.handler_id,
            outcome=self.outcome,
            findings=self.findings,
            basis=self.basis,
            remedies=tuple(dict.fromkeys(self.remedies)),
            notice=self.notice.to_domain(today),
            redress_fen=self.redress_fen,
        )


class NotifyBody(Body):
    subject: c.NoticeSubject
    notice: NoticeBody
    summary: OptionalText = ""
    model_config = _examples(
        {"subject": "acceptance", "notice": NOTICE_EXAMPLE, "summary": "已受理并告知处理时限"}
    )

    def to_command(self, today: date) -> c.NotifyComplainant:
        return c.NotifyComplainant(self.subject, self.notice.to_domain(today), self.summary)


class AppealBody(Body):
    received_on: BusinessDate | None = None
    grounds: Text
    model_config = _examples({"received_on": "2026-11-22", "grounds": "对赔付金额不服，申请核查"})

    def to_command(self, today: date) -> c.RequestReview:
        return c.RequestReview(self.received_on or today, self.grounds)


class DecideReviewBody(Body):
    reviewer_id: Code
    outcome: c.ReviewOutcome
    findings: Text
    new_outcome: c.Outcome | None = None
    new_redress_fen: Fen | None = None
    notice: NoticeBody
    model_config = _examples(
        {
            "reviewer_id": "staff-ho-0003",
            "outcome": "changed",
            "findings": "原处理未考虑客户已提交的停卡申请",
            "new_outcome": "upheld",
            "new_redress_fen": 60000,
            "notice": NOTICE_EXAMPLE,
        }
    )

    def to_command(self, today: date) -> c.DecideReview:
        return c.DecideReview(
            reviewer_id=self.reviewer_id,
            outcome=self.outcome,
            findings=self.findings,
            notice=self.notice.to_domain(today),
            new_outcome=self.new_outcome,
            new_redress_fen=self.new_redress_fen,
        )


class WithdrawBody(Body):
    received_on: BusinessDate | None = None
    reason: OptionalText = ""
    model_config = _examples({"received_on": "2026-11-22", "reason": "已与网点协商解决"})

    def to_command(self, today: date) -> c.WithdrawComplaint:
        return c.WithdrawComplaint(self.received_on or today, self.reason)


class DeclineBody(Body):
    reason: Text
    notice: NoticeBody
    model_config = _examples({"reason": "非投诉人本人或其代理人提出", "notice": NOTICE_EXAMPLE})

    def to_command(self, today: date) -> c.DeclineComplaint:
        return c.DeclineComplaint(self.reason, self.notice.to_domain(today))


class FlagMajorBody(Body):
    cause: Literal["disaster", "accident", "public_health", "regulator"]
    detail: Text
    model_config = _examples({"cause": "disaster", "detail": "台风“海葵”致网点停业引发集中投诉"})

    def to_command(self, today: date) -> c.FlagMajor:
        return c.FlagMajor(c.MajorCause(self.cause), self.detail)


_KEPT_IN_CLEAR = (
    "Kept in clear in the erasure event for good: no identity or mobile number (422, field code "
    "`personal_number`)."
)


class ErasePersonalDataBody(Body):
    """Not an imported case's action: only an admin erases, once retention ended."""

    reason: Annotated[Text, Field(description=_KEPT_IN_CLEAR)]
    legal_basis: Annotated[Text, Field(description=_KEPT_IN_CLEAR)]
    model_config = _examples(
        {"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"}
    )

    def to_command(self, today: date) -> c.ErasePersonalData:
        return c.ErasePersonalData(today, self.reason, self.legal_basis)


class ApproveRedressBody(Body):
    """The approver is the calling principal: a supervisor at the case's institution or above
    whose own limit covers `up_to_fen` (Art. 24; desk rule 客訴金額核決權限)."""

    up_to_fen: Fen
    note: Text
    approved_on: BusinessDate | None = None
    model_config = _examples(
        {
            "up_to_fen": 500000,
            "note": "经分行复核同意赔付，金额在核决权限内",
            "approved_on": "2026-11-23",
        }
    )

    def to_command(self, today: date) -> c.ApproveRedress:
        return c.ApproveRedress(self.up_to_fen, self.note, self.approved_on or today)


class RectificationActionBody(Body):
    action_id: Code
    description: Text
    owner_id: Code = Field(description="The staff id of the action's owner.")
    due_on: BusinessDate


class AttributeBody(Body):
    attributed_on: BusinessDate | None = None
    responsible_institution: Code = Field(
        description="The responsible unit: an institution code of the case's tree."
    )
    department: ShortText | None = None
    responsible_staff: Annotated[list[Code], Field(max_length=100)] = []
    root_cause: c.RootCause
    third_party: ShortText | None = Field(
        default=None,
        description="The third party's name (Art. 10), exactly when `root_cause` is `third_party`.",
    )
    actions: Annotated[list[RectificationActionBody], Field(max_length=100)] = []
    model_config = _examples(
        {
            "attributed_on": "2026-11-24",
            "responsible_institution": "BR-SH-01",
            "department": "信用卡中心",
            "responsible_staff": ["staff-0031"],
            "root_cause": "rules_and_process",
            "actions": [
                {
                    "action_id": "RA-1",
                    "description": "修订年费扣收前短信提示流程",
                    "owner_id": "staff-0007",
                    "due_on": "2026-12-31",
                }
            ],
        }
    )

    def to_command(self, today: date) -> c.Attribute:
        return c.Attribute(
            attributed_on=self.attributed_on or today,
            responsible_institution=self.responsible_institution,
            root_cause=self.root_cause,
            department=self.department,
            responsible_staff=tuple(self.responsible_staff),
            third_party=self.third_party,
            actions=tuple(
                c.RectificationAction(
                    action.action_id, action.description, action.owner_id, action.due_on
                )
                for action in self.actions
            ),
        )


class RectifyBody(Body):
    action_id: Code
    done_on: BusinessDate | None = None
    evidence_ref: Text = Field(description="A reference to the evidence of the work done.")
    model_config = _examples(
        {"action_id": "RA-1", "done_on": "2026-12-15", "evidence_ref": "OA-整改-2026-0158"}
    )

    def to_command(self, today: date) -> c.Rectify:
        return c.Rectify(self.action_id, self.done_on or today, self.evidence_ref)


class FollowUpBody(Body):
    reached: Flag
    satisfaction: c.Satisfaction | None = Field(
        default=None, description="Exactly when the complainant was reached."
    )
    followed_up_on: BusinessDate | None = None
    note: OptionalText = ""
    model_config = _examples(
        {
            "reached": True,
            "satisfaction": "basically_satisfied",
            "followed_up_on": "2026-11-28",
            "note": "客户表示已收到退款，希望加强短信提示",
        }
    )

    def to_command(self, today: date) -> c.FollowUp:
        return c.FollowUp(self.reached, self.followed_up_on or today, self.satisfaction, self.note)


# `POST /v1/complaints/{case_id}/{command}` and an imported case's actions: the body of each command
COMMAND_BODIES: dict[str, type[Body]] = {
    "assign": AssignBody,
    "recuse": RecuseBody,
    "extend": ExtendBody,
    "pause": PauseBody,
    "resume": ResumeBody,
    "supplement": SupplementBody,
    "merge": MergeBody,
    "decide": DecideBody,
    "notify": NotifyBody,
    "appeal": AppealBody,
    "decide-review": DecideReviewBody,
    "withdraw": WithdrawBody,
    "decline": DeclineBody,
    "flag-major": FlagMajorBody,
    "approve-redress": ApproveRedressBody,
    "attribute": AttributeBody,
    "rectify": RectifyBody,
    "follow-up": FollowUpBody,
}
