"""Commands (imperative, one per route of API.md) and the value objects they carry.

Commands are plain frozen data; `decider.decide` validates them against the case. Field names
follow the HTTP contract's JSON bodies. Business dates are Asia/Shanghai calendar dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

# --- enumerations ----------------------------------------------------------------------------


class ComplainantKind(StrEnum):
    NATURAL_PERSON = "natural_person"
    LEGAL_PERSON = "legal_person"  # 法人或者其他组织


class IdType(StrEnum):
    """Identity documents; `resident_id` and `residence_permit` numbers are citizen identity
    numbers (GB 11643), with its check character (`NUMBERED_BY_GB_11643`)."""

    RESIDENT_ID = "resident_id"  # 居民身份证
    PASSPORT = "passport"
    HK_MACAO_PERMIT = "hk_macao_permit"  # 港澳居民来往内地通行证
    TAIWAN_PERMIT = "taiwan_permit"  # 台湾居民来往大陆通行证
    RESIDENCE_PERMIT = "residence_permit"  # 港澳台居民居住证
    FOREIGN_PERMANENT_RESIDENT = "foreign_permanent_resident"  # 外国人永久居留身份证
    OTHER = "other"


# The document a legal person is identified by, as a repeat complainant is searched for (its
# unified social credit code; DOMAIN.md "Receiving a complaint", "Personal data").
CREDIT_CODE_DOCUMENT = "unified_social_credit_code"

# A residence permit for residents of Hong Kong, Macao and Taiwan carries a citizen identity
# number under the area codes 810000, 820000 and 830000, built and checked as a resident id's.
NUMBERED_BY_GB_11643 = frozenset({IdType.RESIDENT_ID, IdType.RESIDENCE_PERMIT})


class NoticeMethod(StrEnum):
    """How a notice was given (Art. 21)."""

    IN_PERSON = "in_person"  # 当面递交
    MAIL = "mail"  # 邮寄
    SMS = "sms"
    EMAIL = "email"
    PHONE = "phone"
    AGREED = "agreed"  # 协商一致的方式, with `agreed_terms`


class NoticeSubject(StrEnum):
    """What a notice told the complainant; `notify` may send any of them as an extra notice."""

    ACCEPTANCE = "acceptance"  # 受理告知
    EXTENSION = "extension"
    PAUSE = "pause"
    DECISION = "decision"
    REVIEW_DECISION = "review_decision"
    DECLINE = "decline"
    PROGRESS = "progress"
    OTHER = "other"


class ApproverRole(StrEnum):
    """Who may approve a second extension (Art. 18)."""

    SUPERIOR_INSTITUTION = "superior_institution"  # 上级机构
    HEAD_OFFICE_SENIOR_MANAGER = "head_office_senior_manager"  # 总行、总公司高级管理人员


class PauseKind(StrEnum):
    APPRAISAL = "appraisal"  # 外部机构鉴定、检测、评估 (Art. 18 ¶2)
    MEDIATION = "mediation"  # 投诉人同意调解 (Art. 23)


class Outcome(StrEnum):
    UPHELD = "upheld"
    PARTIALLY_UPHELD = "partially_upheld"
    REJECTED = "rejected"


class Remedy(StrEnum):
    """救济途径 a decision must tell the complainant of (Art. 19)."""

    REVIEW = "review"  # 申请核查
    MEDIATION = "mediation"
    ARBITRATION = "arbitration"
    LITIGATION = "litigation"


class ReviewOutcome(StrEnum):
    KEPT = "kept"
    CHANGED = "changed"


class MajorCause(StrEnum):
    """Why a complaint is major (Art. 29)."""

    DISASTER = "disaster"  # 重大自然灾害
    ACCIDENT = "accident"  # 安全事故
    PUBLIC_HEALTH = "public_health"  # 公共卫生事件
    REGULATOR = "regulator"  # 银行保险监督管理机构认定
    GROUP_COMPLAINT = "group_complaint"  # 20名以上面谈共同投诉: set at receipt, never flagged


class RootCause(StrEnum):
    """Why the complaint arose, as the desk attributes it (責任歸屬; Art. 26 溯源整改)."""

    PRODUCT_DESIGN = "product_design"
    RULES_AND_PROCESS = "rules_and_process"
    SYSTEMS = "systems"
    STAFF_CONDUCT = "staff_conduct"
    THIRD_PARTY = "third_party"  # with the third party's name (Art. 10)
    EXTERNAL = "external"
    NOT_SUBSTANTIATED = "not_substantiated"


class Satisfaction(StrEnum):
    """The complainant's answer when followed up (回访)."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


# --- value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Complainant:
    """投诉人 (Art. 13 (一)). Natural persons use `id_type`/`id_number`/`contact`; legal persons
    `address`, `unified_social_credit_code` and the legal representative's name and contact."""

    kind: ComplainantKind
    name: str
    contact: str = ""
    id_type: IdType | None = None
    id_number: str = ""
    address: str = ""
    unified_social_credit_code: str = ""
    legal_representative_name: str = ""
    legal_representative_contact: str = ""


@dataclass(frozen=True)
class Agent:
    """受托人 filing for the complainant (Art. 13, 14)."""

    name: str
    id_type: IdType
    id_number: str
    contact: str
    authorization_ref: str  # 授权委托书


@dataclass(frozen=True)
class Category:
    """Business line and cause codes from the institution's taxonomy (JR/T 0169-2018)."""

    business: str
    reason: str


@dataclass(frozen=True)
class RespondentStaff:
    """被投诉从业人员 named in the complaint; barred from handling it (Art. 17)."""

    staff_id: str
    name: str


@dataclass(frozen=True)
class JointComplaint:
    """A face-to-face complaint by several complainants through representatives (Art. 12)."""

    complainants: int
    representatives: tuple[str, ...]


@dataclass(frozen=True)
class RegulatorTransfer:
    """Dates of a complaint forwarded by the regulator (Art. 33)."""

    regulator_received_on: date
    forwarded_on: date


@dataclass(frozen=True)
class Notice:
    """A notice to the complainant (Art. 21): how, when and its proof; or `unreachable` after
    `attempts` tries (Art. 21 exempts that case), `notified_on` then the day of the last try."""

    notified_on: date
    method: NoticeMethod | None = None
    proof_ref: str = ""
    agreed_terms: str = ""
    unreachable: bool = False
    attempts: int = 0


@dataclass(frozen=True)
class Approval:
    """Approval of a second extension (Art. 18)."""

    approver_id: str
    approver_role: ApproverRole


@dataclass(frozen=True)
class RectificationAction:
    """One rectification action (整改措施) of an attribution: who does what by when."""

    action_id: str
    description: str
    owner_id: str  # a staff id
    due_on: date


# --- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveComplaint:
    """Register a complaint. `case_id` and `registration_no` are allocated by the application
    service. `filed_by_heir` marks a complaint made by the consumer's heir (Art. 14 ¶2)."""

    case_id: str
    registration_no: str
    respondent_institution: str
    channel: str
    received_on: date
    complainant: Complainant
    claims: str
    facts: str
    category: Category
    agent: Agent | None = None
    filed_by_heir: bool = False
    heir_proof_ref: str = ""
    respondent_staff: tuple[RespondentStaff, ...] = ()
    joint: JointComplaint | None = None
    regulator_transfer: RegulatorTransfer | None = None


@dataclass(frozen=True)
class AssignHandler:
    handler_id: str


@dataclass(frozen=True)
class RecuseHandler:
    handler_id: str
    reason: str


@dataclass(frozen=True)
class ExtendDeadline:
    reason: str
    notice: Notice
    approval: Approval | None = None


@dataclass(frozen=True)
class PauseClock:
    kind: PauseKind
    paused_on: date
    reason: str
    notice: Notice


@dataclass(frozen=True)
class ResumeClock:
    resumed_on: date


@dataclass(frozen=True)
class SupplementComplaint:
    """The complainant repeats the same complaint (Art. 18 ¶3)."""

    received_on: date
    new_facts_and_reasons: bool
    summary: str


@dataclass(frozen=True)
class MergeComplaint:
    into: str


@dataclass(frozen=True)
class DecideComplaint:
    handler_id: str
    outcome: Outcome
    findings: str  # 核实情况
    basis: str  # 依据和理由
    remedies: tuple[Remedy, ...]
    notice: Notice
    redress_fen: int = 0


@dataclass(frozen=True)
class NotifyComplainant:
    """An extra notice, e.g. of acceptance (Art. 21)."""

    subject: NoticeSubject
    notice: Notice
    summary: str = ""


@dataclass(frozen=True)
class RequestReview:
    """The complainant's written request for review (API `appeal`, Art. 20)."""

    received_on: date
    grounds: str


@dataclass(frozen=True)
class DecideReview:
    """The superior's review decision (Art. 20). `new_outcome` (and optionally
    `new_redress_fen`) only when `outcome` is `changed`."""

    reviewer_id: str
    outcome: ReviewOutcome
    findings: str
    notice: Notice
    new_outcome: Outcome | None = None
    new_redress_fen: int | None = None


@dataclass(frozen=True)
class WithdrawComplaint:
    """Art. 15: the procedure ends on the day the withdrawal is received."""

    received_on: date
    reason: str = ""


@dataclass(frozen=True)
class DeclineComplaint:
    """不予办理 (Art. 18 ¶4): not made by the complainant, its legal representative or agent."""

    reason: str
    notice: Notice


@dataclass(frozen=True)
class FlagMajor:
    cause: MajorCause
    detail: str


@dataclass(frozen=True)
class ErasePersonalData:
    """Erase the case's personal data once its retention has ended (PIPL Art. 47; DOMAIN.md
    "Personal data"). `reason` and `legal_basis` are the administrator's statement of the legal
    ground, kept readable for audit."""

    erased_on: date
    reason: str
    legal_basis: str


@dataclass(frozen=True)
class ApproveRedress:
    """A supervisor's approval of redress up to `up_to_fen` for the next decision or review
    decision of the case (核决权限; Art. 24). The approver is the calling principal."""

    up_to_fen: int
    note: str
    approved_on: date


@dataclass(frozen=True)
class Attribute:
    """Responsibility, root cause and rectification (責任歸屬; Art. 26 溯源整改、责任追究).
    `third_party` is given exactly when `root_cause` is `third_party`."""

    attributed_on: date
    responsible_institution: str
    root_cause: RootCause
    department: str | None = None
    responsible_staff: tuple[str, ...] = ()
    third_party: str | None = None
    actions: tuple[RectificationAction, ...] = ()


@dataclass(frozen=True)
class Rectify:
    """Close one rectification action of the current attribution."""

    action_id: str
    done_on: date
    evidence_ref: str


@dataclass(frozen=True)
class FollowUp:
    """回访 after the decision notice. `satisfaction` is given exactly when `reached`."""

    reached: bool
    followed_up_on: date
    satisfaction: Satisfaction | None = None
    note: str = ""


Command = (
    ReceiveComplaint
    | AssignHandler
    | RecuseHandler
    | ExtendDeadline
    | PauseClock
    | ResumeClock
    | SupplementComplaint
    | MergeComplaint
    | DecideComplaint
    | NotifyComplainant
    | RequestReview
    | DecideReview
    | WithdrawComplaint
    | DeclineComplaint
    | FlagMajor
    | ErasePersonalData
    | ApproveRedress
    | Attribute
    | Rectify
    | FollowUp
)

# A command's own business date, by the field that holds it (DOMAIN.md "Deadlines"; API.md
# "Conventions": a command whose date lives in its notice takes the notice's date).
_OWN_DATE_FIELDS = (
    "received_on",
    "paused_on",
    "resumed_on",
    "erased_on",
    "approved_on",
    "attributed_on",
    "followed_up_on",
    "done_on",
)


def own_business_date(command: object) -> date | None:
    """The day `command` says it happened: its own date, else its notice's; None for a command
    that happens the day it is handled (assign, recuse, merge, flag-major)."""
    for name in _OWN_DATE_FIELDS:
        day = getattr(command, name, None)
        if isinstance(day, date):
            return day
    notified_on = getattr(getattr(command, "notice", None), "notified_on", None)
    return notified_on if isinstance(notified_on, date) else None
