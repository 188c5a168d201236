"""Realistic demo data for `complaintcore demo`: a bank's institution tree, the principals who get
tokens, and complaint stories (a receipt and the dated commands that follow it).

Everything here is pure and seeded: the same seed and `today` give the same stories. The bank is
fictional (东方汇通银行); its codes are modelled on the institution codes of 金融许可证 (B, a bank
number, H/B/S for head office, branch or sub-branch, then area and serial digits). Complainants,
identity numbers and unified social credit codes are made up, but the numbers pass their check
digits as the receipt rules demand.

A story's commands are dated business days relative to its receipt, never after `today`, and in
non-decreasing order, so replaying them through `ComplaintService` (with its `today` set to each
command's date) satisfies every business-date rule.

Why one file of 850 lines: it is data (a bank's tree, people and stories), read top to bottom.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from complaintcore.auth.principals import Principal
from complaintcore.domain.commands import (
    Agent,
    Approval,
    ApproveRedress,
    ApproverRole,
    AssignHandler,
    Attribute,
    Category,
    Complainant,
    ComplainantKind,
    DecideComplaint,
    DecideReview,
    DeclineComplaint,
    ExtendDeadline,
    FlagMajor,
    FollowUp,
    IdType,
    JointComplaint,
    MajorCause,
    MergeComplaint,
    Notice,
    NoticeMethod,
    NoticeSubject,
    NotifyComplainant,
    Outcome,
    PauseClock,
    PauseKind,
    ReceiveComplaint,
    RectificationAction,
    Rectify,
    RecuseHandler,
    RegulatorTransfer,
    Remedy,
    RequestReview,
    RespondentStaff,
    ResumeClock,
    ReviewOutcome,
    RootCause,
    Satisfaction,
    SupplementComplaint,
    WithdrawComplaint,
)
from complaintcore.domain.identity import (
    USCC_CHARACTERS,
    is_valid_resident_id,
    is_valid_unified_social_credit_code,
)
from complaintcore.domain.policy import DEFAULT_POLICY
from complaintcore.reference.institutions import InstitutionNode

_RECTIFICATIONS = (
    "修订业务操作规程并组织培训",
    "优化系统提示与风险揭示",
    "对相关人员进行合规教育",
    "完善产品说明书条款",
)
DEFAULT_SEED = 20200301  # Order 2020 No. 3 took effect on 1 March 2020
DEFAULT_CASES = 300
OLDEST_RECEIPT_DAYS = 120  # cases are received over the last four months

BANK_NAME = "东方汇通银行"


@dataclass(frozen=True)
class Site:
    """An institution node with what the demo needs to write its complaints."""

    code: str
    name: str
    kind: str
    parent: str | None
    tag: str  # short prefix of its staff ids
    city: str
    districts: tuple[str, ...]  # GB/T 2260 district codes where its customers live
    weight: int  # share of the bank's complaints

    def staff_id(self, number: int) -> str:
        return f"{self.tag}-{number:03d}"

    @property
    def supervisor_id(self) -> str:
        return f"{self.tag}-901"

    @property
    def node(self) -> InstitutionNode:
        return InstitutionNode(self.code, self.name, self.kind, self.parent)


_HO = "B0917H111000001"
_SH = "B0917B231000001"
_SZ = "B0917B244030001"
_FULL_NAME = "东方汇通银行股份有限公司"

SITES: tuple[Site, ...] = (
    Site(_HO, _FULL_NAME, "head_office", None, "HO", "北京", ("110101", "110105", "110108"), 4),
    Site(_SH, f"{_FULL_NAME}上海分行", "branch", _HO, "SH", "上海", ("310101",), 12),
    Site(
        "B0917S231000011", f"{_FULL_NAME}上海浦东支行", "sub_branch", _SH,
        "SHPD", "上海", ("310115",), 14,
    ),
    Site(
        "B0917S231000012", f"{_FULL_NAME}上海徐汇支行", "sub_branch", _SH,
        "SHXH", "上海", ("310104",), 10,
    ),
    Site(
        "B0917S231000013", f"{_FULL_NAME}上海静安支行", "sub_branch", _SH,
        "SHJA", "上海", ("310106",), 9,
    ),
    Site(
        "B0917S231000014", f"{_FULL_NAME}上海陆家嘴支行", "sub_branch", _SH,
        "SHLJZ", "上海", ("310115",), 8,
    ),
    Site(_SZ, f"{_FULL_NAME}深圳分行", "branch", _HO, "SZ", "深圳", ("440304",), 11),
    Site(
        "B0917S244030011", f"{_FULL_NAME}深圳福田支行", "sub_branch", _SZ,
        "SZFT", "深圳", ("440304",), 12,
    ),
    Site(
        "B0917S244030012", f"{_FULL_NAME}深圳南山支行", "sub_branch", _SZ,
        "SZNS", "深圳", ("440305",), 11,
    ),
    Site(
        "B0917S244030013", f"{_FULL_NAME}深圳罗湖支行", "sub_branch", _SZ,
        "SZLH", "深圳", ("440303",), 9,
    ),
)  # fmt: skip

SITES_BY_CODE = {site.code: site for site in SITES}


def institution_nodes() -> list[InstitutionNode]:
    return [site.node for site in SITES]


# --- principals who get a token ------------------------------------------------------------


@dataclass(frozen=True)
class DemoPrincipal:
    principal: Principal
    title: str
    can: str


REGULATOR = Principal("SHJG-001", "regulator", None)  # 上海监管局 examiner

DEMO_PRINCIPALS: tuple[DemoPrincipal, ...] = (
    DemoPrincipal(
        Principal(SITES[1].staff_id(1), "staff", SITES[1].code),
        "上海分行 complaint handler",
        "registers and handles complaints of 上海分行 and its four sub-branches; lists and "
        "reads them (GET /v1/complaints, /v1/deadlines); other branches' cases are 404",
    ),
    DemoPrincipal(
        Principal(SITES[2].staff_id(1), "staff", SITES[2].code),
        "上海浦东支行 complaint handler",
        "the same, for 上海浦东支行 only",
    ),
    DemoPrincipal(
        Principal(SITES[0].supervisor_id, "supervisor", SITES[0].code),
        "head-office consumer-protection supervisor",
        "handles and reads every complaint of the bank (the head office's whole subtree)",
    ),
    DemoPrincipal(
        REGULATOR,
        "regulator (上海监管局 examiner)",
        "reads every case, its events and its audit (GET /v1/complaints/{id}/audit), the global "
        "feed (GET /v1/events); designates major complaints; registers nothing",
    ),
    DemoPrincipal(
        Principal("OPS-ADMIN", "admin", None),
        "operations administrator",
        "loads the institution tree and holiday calendars (PUT /v1/institutions/{code}, "
        "PUT /v1/calendars/{year}); reads everything; erases a case's personal data once its "
        "retention has ended (POST /v1/complaints/{id}/erase-personal-data); handles no "
        "complaint",
    ),
)


# --- stories -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A command handled on business date `on` by `actor`. A merge's `into` is filled in when the
    story is played, from `CaseStory.merge_into` (the earlier story's case id)."""

    on: date
    actor: Principal
    command: Any


@dataclass(frozen=True)
class CaseStory:
    institution: str
    received_on: date
    receiver: Principal
    receipt: ReceiveComplaint  # case_id and registration_no are allocated by the service
    steps: tuple[Step, ...]
    fate: str
    merge_into: int | None = None  # index, in the story list, of the case this one duplicates

    def receipt_for(self, case_id: str, registration_no: str) -> ReceiveComplaint:
        return replace(self.receipt, case_id=case_id, registration_no=registration_no)


@dataclass(frozen=True)
class Scenario:
    """What a complaint is about, with the words a handler would use to decide it."""

    business: str
    reason: str
    claims: str
    facts: str
    findings: str
    basis: str
    redress_fen: int


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "credit_card", "pricing_and_fees", "退还信用卡年费 {amount} 元",
        "信用卡未激活即被扣收年费，办卡时未被告知收费标准。",
        "经调阅办卡录音及申请资料，营销人员未明确告知年费收取规则。",
        "《商业银行信用卡业务监督管理办法》第四十五条及领用合约相关约定。", 30000,
    ),
    Scenario(
        "debt_collection", "collection_methods", "停止向本人亲友及工作单位催收",
        "信用卡逾期后，催收人员多次致电本人亲属及单位同事，影响正常生活和工作。",
        "经核查外包催收通话记录，存在向第三人透露欠款信息的情况。",
        "《商业银行信用卡业务监督管理办法》第六十九条关于催收行为的规定。", 0,
    ),
    Scenario(
        "loans", "pricing_and_fees", "退还提前还款违约金 {amount} 元",
        "提前归还个人住房贷款时被收取违约金，签订合同时客户经理未作说明。",
        "借款合同第十二条约定了提前还款违约金，签约时已由借款人签字确认。",
        "《个人贷款管理暂行办法》及借款合同第十二条。", 120000,
    ),
    Scenario(
        "wealth_management", "marketing", "赔偿理财产品本金损失 {amount} 元",
        "客户经理推介理财产品时口头承诺保本保收益，产品到期后本金亏损。",
        "经调阅双录视频，客户经理存在“稳赚不赔”等不当表述，风险测评流程不完整。",
        "《商业银行理财业务监督管理办法》第二十六条关于销售行为的规定。", 500000,
    ),
    Scenario(
        "debit_card", "fund_safety", "追回被盗刷资金 {amount} 元",
        "借记卡在本人持卡的情况下于异地 ATM 被取现，本人未泄露密码。",
        "交易发生时持卡人位于本市，经公安机关立案，交易系伪卡所致。",
        "《中华人民共和国民法典》合同编及借记卡章程关于伪卡交易责任的约定。", 860000,
    ),
    Scenario(
        "payment_settlement", "facilities_and_systems", "退还重复扣划的转账款项 {amount} 元",
        "手机银行跨行转账提示失败，账户资金却被扣划，多日未退回。",
        "系统日志显示交易在清算环节超时，款项已于次日自动冲正但未通知客户。",
        "《电子支付指引（第一号）》及本行电子银行服务协议。", 250000,
    ),
    Scenario(
        "savings", "service_attitude", "要求网点工作人员书面道歉",
        "在网点办理定期存款支取时，柜员态度生硬，拒绝解释利息计算方式。",
        "经调阅网点监控录像，柜员服务用语不规范，未按要求解释利息计算规则。",
        "本行《营业网点服务规范》第三章。", 0,
    ),
    Scenario(
        "personal_financial_information", "information_security", "说明个人信息使用情况并停止推销",
        "开户后频繁接到贷款推销电话，怀疑个人信息被泄露给第三方。",
        "经核查，客户信息未对外提供，推销电话来自与本行无关的第三方。",
        "《中华人民共和国个人信息保护法》及本行客户信息保护制度。", 0,
    ),
    Scenario(
        "agency_business", "disclosure", "全额退还代销保险保费 {amount} 元",
        "在网点办理存款时被推荐购买“存款类产品”，事后发现为分红型保险。",
        "代销人员未充分揭示产品属性，销售过程未执行双录要求。",
        "《商业银行代理保险业务管理办法》第二十一条。", 1000000,
    ),
    Scenario(
        "foreign_exchange", "rules_and_processes", "尽快办理境外留学汇款",
        "为子女汇付境外学费，材料多次被退回，每次退回的理由不同。",
        "经核查，审核人员对材料要求的解释前后不一致，已统一告知清单并完成汇款。",
        "《个人外汇管理办法》及本行跨境汇款业务操作规程。", 0,
    ),
    Scenario(
        "loans", "rules_and_processes", "撤销征信报告中的逾期记录",
        "已按期足额还款，但个人征信报告显示一次逾期记录，影响房贷申请。",
        "还款日系统批量扣款失败，客户账户余额充足，逾期非客户原因所致。",
        "《征信业管理条例》第二十五条关于异议处理的规定。", 0,
    ),
    Scenario(
        "precious_metals", "disclosure", "按购买价回购实物黄金",
        "购买的投资金条申请回购时被告知需扣除手续费，购买时未被告知。",
        "产品说明书载明回购手续费标准，销售时已向客户出示并签收。",
        "本行《实物贵金属业务管理办法》及产品说明书。", 0,
    ),
)  # fmt: skip

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国晓红志强海燕俊峰雪梅"
_COMPANY_WORDS = ("恒瑞达", "鑫泰", "嘉禾", "华信", "博远", "金桥", "裕丰", "宏图", "晨光")
_COMPANY_TRADES = ("贸易", "科技", "物流", "餐饮管理", "建筑工程", "电子商务")
_ROADS = {"北京": "朝阳路", "上海": "世纪大道", "深圳": "深南大道"}
_MOBILE_PREFIXES = ("135", "138", "139", "150", "158", "186", "136", "177", "188", "199")
_CHANNEL_WEIGHTS = {"phone": 40, "online": 22, "in_person": 20, "letter": 5, "email": 5}
_NOTICE_METHODS = (NoticeMethod.SMS, NoticeMethod.PHONE, NoticeMethod.EMAIL, NoticeMethod.MAIL)
_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def demo_stories(
    seed: int, count: int, today: date, calendar_years: Collection[int]
) -> list[CaseStory]:
    """`count` stories in receipt order (the order to play them in), the same for the same
    arguments. `calendar_years` are the years a regulator transfer's working days can be
    counted in; without them no case comes by regulator transfer."""
    rng = random.Random(seed)
    duplicates = round(count * DUPLICATE_SHARE)
    stories = [_story(rng, today, calendar_years) for _ in range(count - duplicates)]
    # A duplicate merges only into a case still being handled (`merge_target_not_open`).
    originals = [index for index, story in enumerate(stories) if story.fate in STILL_OPEN]
    for _ in range(duplicates):
        if originals:
            stories.append(_duplicate(rng, today, stories, rng.choice(originals)))
        else:
            stories.append(_story(rng, today, calendar_years))
    # Played in receipt order, so registration serials follow the dates as in a real register.
    order = sorted(range(len(stories)), key=lambda index: (stories[index].received_on, index))
    position = {old: new for new, old in enumerate(order)}
    return [_with_merge_target(stories[old], position) for old in order]


def _with_merge_target(story: CaseStory, position: dict[int, int]) -> CaseStory:
    if story.merge_into is None:
        return story
    return replace(story, merge_into=position[story.merge_into])


# --- one story -----------------------------------------------------------------------------


@dataclass
class _Plot:
    """A story being written: a site, a receipt date and dated steps in order."""

    rng: random.Random
    site: Site
    received_on: date
    today: date
    steps: list[Step] = field(default_factory=list)

    @property
    def age(self) -> int:
        return (self.today - self.received_on).days

    @property
    def last_offset(self) -> int:
        return (self.steps[-1].on - self.received_on).days if self.steps else 0

    @property
    def superior(self) -> Site | None:
        return SITES_BY_CODE.get(self.site.parent) if self.site.parent else None

    def day(self, offset: int) -> date:
        on = self.received_on + timedelta(days=offset)
        if on > self.today:
            raise AssertionError(f"demo story step on {on} is after today {self.today}")
        if self.steps and on < self.steps[-1].on:
            raise AssertionError("demo story steps must be in date order")
        return on

    def add(self, offset: int, command: Any, actor: Principal | None = None) -> None:
        on = self.day(offset)
        self.steps.append(Step(on, actor or self.staff(1), command))

    def staff(self, number: int) -> Principal:
        return Principal(self.site.staff_id(number), "staff", self.site.code)

    def notice(self, offset: int) -> Notice:
        on = self.received_on + timedelta(days=offset)
        if self.rng.random() < 0.03:
            return Notice(notified_on=on, unreachable=True, attempts=self.rng.randint(2, 4))
        method = self.rng.choice(_NOTICE_METHODS)
        proof = f"{method.value.upper()}-{on:%Y%m%d}-{self.rng.randint(1, 9999):04d}"
        return Notice(notified_on=on, method=method, proof_ref=proof)

    # the commands a story is made of

    def acknowledge(self, offset: int) -> None:
        notice = self.notice(offset)
        self.add(offset, NotifyComplainant(NoticeSubject.ACCEPTANCE, notice, "已受理并登记"))

    def assign(self, offset: int, handler: int) -> str:
        handler_id = self.site.staff_id(handler)
        supervisor = Principal(self.site.supervisor_id, "supervisor", self.site.code)
        self.add(offset, AssignHandler(handler_id), supervisor)
        return handler_id

    def extend(self, offset: int, second: bool = False) -> None:
        approval = None
        if second:
            superior = self.superior
            approval = (
                Approval(superior.supervisor_id, ApproverRole.SUPERIOR_INSTITUTION)
                if superior
                else Approval("HO-801", ApproverRole.HEAD_OFFICE_SENIOR_MANAGER)
            )
        reason = "需调取外部机构交易记录" if not second else "涉及多方核实，情况复杂"
        self.add(offset, ExtendDeadline(reason, self.notice(offset), approval))

    def pause(self, offset: int) -> None:
        kind = self.rng.choice((PauseKind.APPRAISAL, PauseKind.MEDIATION))
        reason = "委托司法鉴定机构进行笔迹鉴定" if kind is PauseKind.APPRAISAL else "投诉人同意调解"
        self.add(offset, PauseClock(kind, self.day(offset), reason, self.notice(offset)))

    def resume(self, offset: int) -> None:
        self.add(offset, ResumeClock(self.day(offset)))

    def decide(
        self, offset: int, handler_id: str, scenario: Scenario, outcome: Outcome | None = None
    ) -> None:
        outcome = outcome or self.rng.choices(list(Outcome), weights=(35, 30, 35))[0]
        redress = 0 if outcome is Outcome.REJECTED else scenario.redress_fen
        if outcome is Outcome.PARTIALLY_UPHELD:
            redress //= 2
        remedies = [Remedy.MEDIATION, Remedy.LITIGATION]
        if self.superior is not None:
            remedies.insert(0, Remedy.REVIEW)
        command = DecideComplaint(
            handler_id=handler_id,
            outcome=outcome,
            findings=scenario.findings,
            basis=scenario.basis,
            remedies=tuple(remedies),
            notice=self.notice(offset),
            redress_fen=redress,
        )
        if redress > DEFAULT_POLICY.redress_limits_fen.staff:  # beyond the handler's (Art. 24)
            supervisor = Principal(self.site.supervisor_id, "supervisor", self.site.code)
            approval = ApproveRedress(redress, "金额超出经办权限，经主管审批", self.day(offset))
            self.add(offset, approval, supervisor)
        self.add(offset, command, self._principal(handler_id))

    def appeal(self, offset: int) -> None:
        self.add(offset, RequestReview(self.day(offset), "对处理结果不满意，申请上级机构核查"))

    def review(self, offset: int, changed: bool) -> None:
        superior = self.superior
        assert superior is not None
        reviewer = Principal(superior.supervisor_id, "supervisor", superior.code)
        if changed:
            command = DecideReview(
                reviewer_id=reviewer.id,
                outcome=ReviewOutcome.CHANGED,
                findings="核查认为原处理认定事实不清，予以变更",
                notice=self.notice(offset),
                new_outcome=Outcome.PARTIALLY_UPHELD,
                new_redress_fen=self.rng.choice((20000, 50000, 100000)),
            )
        else:
            command = DecideReview(
                reviewer_id=reviewer.id,
                outcome=ReviewOutcome.KEPT,
                findings="核查认为原处理事实清楚、依据充分，维持原处理决定",
                notice=self.notice(offset),
            )
        self.add(offset, command, reviewer)

    def _principal(self, staff_id: str) -> Principal:
        return Principal(staff_id, "staff", self.site.code)

    def control(self) -> None:
        """After a decision, most cases are followed up and many traced to a cause with
        rectification actions, some of them closed and some past due (Art. 26; desk rules).
        Drawn from a generator of the story's own, so the other stories stay as they were."""
        if not any(isinstance(step.command, DecideComplaint) for step in self.steps):
            return
        rng = random.Random(f"{self.site.code}/{self.received_on}/{len(self.steps)}")
        start = self.last_offset
        if self.age > start and rng.random() < 0.8:
            reached = rng.random() < 0.85
            satisfaction = rng.choice(list(Satisfaction)) if reached else None
            offset = rng.randint(start, self.age)
            self.add(offset, FollowUp(reached, self.day(offset), satisfaction, "电话回访"))
        if self.age > self.last_offset + 1 and rng.random() < 0.5:
            self._attribute(rng)

    def _attribute(self, rng: random.Random) -> None:
        offset = rng.randint(self.last_offset, self.age - 1)
        attributed_on = self.day(offset)
        actions = tuple(
            RectificationAction(
                f"A{number}",
                rng.choice(_RECTIFICATIONS),
                self.site.staff_id(rng.randint(1, 3)),
                attributed_on + timedelta(days=rng.randint(3, 30)),
            )
            for number in range(1, rng.randint(1, 2) + 1)
        )
        cause = rng.choice([cause for cause in RootCause if cause is not RootCause.THIRD_PARTY])
        supervisor = Principal(self.site.supervisor_id, "supervisor", self.site.code)
        command = Attribute(attributed_on, self.site.code, cause, actions=actions)
        self.add(offset, command, supervisor)
        closings = []  # some closed in time; the others stay open, overdue once due
        for action in actions:
            done = offset + (action.due_on - attributed_on).days - rng.randint(0, 2)
            if done <= self.age and rng.random() < 0.6:
                evidence = f"ZG-{action.due_on:%Y%m%d}-{action.action_id}"
                closings.append((done, Rectify(action.action_id, self.day(done), evidence)))
        for done, rectify in sorted(closings, key=lambda closing: closing[0]):
            self.add(done, rectify)


def _story(rng: random.Random, today: date, calendar_years: Collection[int]) -> CaseStory:
    site = rng.choices(SITES, weights=[site.weight for site in SITES])[0]
    fates = [fate for fate in FATES if site.parent is not None or fate not in NEEDS_SUPERIOR]
    fate = rng.choices(fates, weights=[FATE_WEIGHTS[fate] for fate in fates])[0]
    low, high = FATE_AGES[fate]
    age = rng.randint(low, high)
    plot = _Plot(rng, site, today - timedelta(days=age), today)
    scenario = rng.choice(SCENARIOS)
    receipt = _receipt(rng, plot, scenario, fate, calendar_years)
    FATES[fate](plot, scenario)
    plot.control()
    return CaseStory(site.code, plot.received_on, plot.staff(1), receipt, tuple(plot.steps), fate)


def _duplicate(
    rng: random.Random, today: date, stories: list[CaseStory], original_index: int
) -> CaseStory:
    """The same complaint made again a few days later, merged into the first case."""
    original = stories[original_index]
    age = (today - original.received_on).days
    later = rng.randint(0, min(age, 5))
    received_on = original.received_on + timedelta(days=later)
    plot = _Plot(rng, SITES_BY_CODE[original.institution], received_on, today)
    channel = rng.choice(("phone", "online", "letter"))
    receipt = replace(
        original.receipt,
        channel=channel,
        received_on=received_on,
        regulator_transfer=None,
        joint=None,
    )
    plot.add(min(plot.age, rng.randint(0, 2)), MergeComplaint(into=""))
    return CaseStory(
        original.institution,
        plot.received_on,
        plot.staff(1),
        receipt,
        tuple(plot.steps),
        "merged",
        merge_into=original_index,
    )


# --- fates: what happens to a case after its receipt ---------------------------------------


def _received(plot: _Plot, scenario: Scenario) -> None:
    if plot.age >= 1 and plot.rng.random() < 0.6:
        plot.acknowledge(1)


def _in_progress(plot: _Plot, scenario: Scenario) -> None:
    rng, age = plot.rng, plot.age
    plot.assign(0, rng.randint(1, 3))
    plot.acknowledge(min(age, 1))
    if age >= 5 and rng.random() < 0.35:
        plot.extend(rng.randint(3, age))
    if age >= 3 and rng.random() < 0.3:
        plot.pause(rng.randint(max(2, plot.last_offset), age))


def _overdue(plot: _Plot, scenario: Scenario) -> None:
    plot.assign(0, plot.rng.randint(1, 3))
    plot.acknowledge(1)
    if plot.age > 35 and plot.rng.random() < 0.5:
        plot.extend(plot.rng.randint(8, 15))


def _decided_on_time(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(rng.randint(0, 1), rng.randint(1, 3))
    plot.acknowledge(rng.randint(1, 2))
    if rng.random() < 0.15:
        plot.add(3, SupplementComplaint(plot.day(3), False, "投诉人来电催促处理进度"))
    plot.decide(rng.randint(4, 15), handler, scenario)


def _decided_late(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(rng.randint(0, 2), rng.randint(1, 3))
    plot.acknowledge(2)
    plot.decide(rng.randint(16, 25), handler, scenario)


def _extended_once(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    plot.acknowledge(1)
    extended_on = rng.randint(8, 15)
    plot.extend(extended_on)
    late = rng.random() < 0.2
    plot.decide(
        rng.randint(31, 40) if late else rng.randint(extended_on + 1, 30), handler, scenario
    )


def _extended_twice(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    plot.acknowledge(1)
    first = rng.randint(8, 15)
    plot.extend(first)
    second = rng.randint(20, 30)
    plot.extend(second, second=True)
    plot.decide(rng.randint(second + 1, 60), handler, scenario)


def _paused(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    plot.acknowledge(1)
    paused_on = rng.randint(3, 12)
    plot.pause(paused_on)
    resumed_on = rng.randint(paused_on + 3, paused_on + 20)
    plot.resume(resumed_on)
    due = 15 + (resumed_on - paused_on)
    plot.decide(rng.randint(resumed_on + 1, due), handler, scenario)


def _reviewed(changed: bool) -> Callable[[_Plot, Scenario], None]:
    def reviewed(plot: _Plot, scenario: Scenario) -> None:
        rng = plot.rng
        handler = plot.assign(0, rng.randint(1, 3))
        plot.acknowledge(1)
        decided_on = rng.randint(5, 15)
        plot.decide(
            decided_on, handler, scenario, rng.choice((Outcome.REJECTED, Outcome.PARTIALLY_UPHELD))
        )
        appealed_on = rng.randint(decided_on + 1, decided_on + 20)
        plot.appeal(appealed_on)
        late = rng.random() < 0.1
        review_days = rng.randint(31, 35) if late else rng.randint(5, 30)
        plot.review(appealed_on + review_days, changed)

    return reviewed


def _under_review(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    decided_on = rng.randint(3, min(15, plot.age - 1))
    plot.decide(decided_on, handler, scenario, Outcome.REJECTED)
    plot.appeal(rng.randint(decided_on + 1, min(decided_on + 20, plot.age)))


def _withdrawn(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    plot.assign(0, rng.randint(1, 3))
    withdrawn_on = rng.randint(1, min(plot.age, 14))
    reason = rng.choice(("已与网点协商解决", "投诉人主动撤回", "问题已自行解决"))
    plot.add(withdrawn_on, WithdrawComplaint(plot.day(withdrawn_on), reason))


def _declined(plot: _Plot, scenario: Scenario) -> None:
    declined_on = plot.rng.randint(1, min(plot.age, 7))
    reason = "投诉并非由消费者本人、其法定代理人或受托人提出（第十八条第四款）"
    plot.add(declined_on, DeclineComplaint(reason, plot.notice(declined_on)))


def _major(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    if rng.random() < 0.5:
        detail = "媒体报道引发较大社会关注，监管机构认定为重大投诉"
        plot.add(rng.randint(1, 3), FlagMajor(MajorCause.REGULATOR, detail), REGULATOR)
    else:
        detail = "台风导致网点停业，多名客户无法按期还款"
        plot.add(rng.randint(1, 3), FlagMajor(MajorCause.DISASTER, detail))
    plot.extend(rng.randint(5, 15))
    plot.decide(rng.randint(16, 30), handler, scenario)


def _group(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    plot.acknowledge(1)
    plot.decide(rng.randint(8, 15), handler, scenario)


def _recused(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    first = plot.assign(0, 1)
    recused_on = rng.randint(1, 3)
    plot.add(recused_on, RecuseHandler(first, "处理人员与投诉人存在亲属关系（第十七条回避）"))
    second = plot.assign(recused_on, rng.randint(2, 3))
    plot.decide(rng.randint(recused_on + 1, 15), second, scenario)


def _restarted(plot: _Plot, scenario: Scenario) -> None:
    rng = plot.rng
    handler = plot.assign(0, rng.randint(1, 3))
    supplemented_on = rng.randint(3, 12)
    summary = "投诉人补充提交了新的交易凭证和理由"
    plot.add(supplemented_on, SupplementComplaint(plot.day(supplemented_on), True, summary))
    plot.decide(rng.randint(supplemented_on + 1, supplemented_on + 15), handler, scenario)


FATES: dict[str, Callable[[_Plot, Scenario], None]] = {
    "received": _received,
    "in_progress": _in_progress,
    "overdue": _overdue,
    "decided_on_time": _decided_on_time,
    "decided_late": _decided_late,
    "extended_once": _extended_once,
    "extended_twice": _extended_twice,
    "paused": _paused,
    "reviewed_kept": _reviewed(changed=False),
    "reviewed_changed": _reviewed(changed=True),
    "under_review": _under_review,
    "withdrawn": _withdrawn,
    "declined": _declined,
    "major": _major,
    "group": _group,
    "recused": _recused,
    "restarted": _restarted,
}
FATE_WEIGHTS = {
    "received": 6,
    "in_progress": 14,
    "overdue": 4,
    "decided_on_time": 24,
    "decided_late": 6,
    "extended_once": 9,
    "extended_twice": 4,
    "paused": 6,
    "reviewed_kept": 4,
    "reviewed_changed": 3,
    "under_review": 3,
    "withdrawn": 5,
    "declined": 3,
    "major": 2,
    "group": 1,
    "recused": 2,
    "restarted": 2,
}
# The youngest and oldest a case of each fate can be (days since receipt), so its story fits.
FATE_AGES = {
    "received": (0, 2),
    "in_progress": (1, 14),
    "overdue": (20, 100),
    "decided_on_time": (16, OLDEST_RECEIPT_DAYS),
    "decided_late": (26, OLDEST_RECEIPT_DAYS),
    "extended_once": (41, OLDEST_RECEIPT_DAYS),
    "extended_twice": (61, OLDEST_RECEIPT_DAYS),
    "paused": (48, OLDEST_RECEIPT_DAYS),
    "reviewed_kept": (71, OLDEST_RECEIPT_DAYS),
    "reviewed_changed": (71, OLDEST_RECEIPT_DAYS),
    "under_review": (8, 40),
    "withdrawn": (3, OLDEST_RECEIPT_DAYS),
    "declined": (2, OLDEST_RECEIPT_DAYS),
    "major": (31, OLDEST_RECEIPT_DAYS),
    "group": (16, OLDEST_RECEIPT_DAYS),
    "recused": (16, OLDEST_RECEIPT_DAYS),
    "restarted": (28, OLDEST_RECEIPT_DAYS),
}
DUPLICATE_SHARE = 0.03  # complaints made twice, the second merged into the first
STILL_OPEN = frozenset({"received", "in_progress", "overdue"})
NEEDS_SUPERIOR = frozenset({"reviewed_kept", "reviewed_changed", "under_review"})


# --- the receipt ---------------------------------------------------------------------------


def _receipt(
    rng: random.Random,
    plot: _Plot,
    scenario: Scenario,
    fate: str,
    calendar_years: Collection[int],
) -> ReceiveComplaint:
    site, received_on = plot.site, plot.received_on
    channel = rng.choices(list(_CHANNEL_WEIGHTS), weights=list(_CHANNEL_WEIGHTS.values()))[0]
    transfer = _regulator_transfer(rng, received_on, calendar_years) if fate != "group" else None
    if transfer is not None:
        channel = "regulator_transfer"
    joint = None
    if fate == "group":
        channel = "in_person"
        joint = JointComplaint(rng.randint(20, 45), tuple(_person_name(rng) for _ in range(3)))
    legal_person = rng.random() < 0.1
    complainant = _company(rng, site) if legal_person else _person(rng, site, received_on)
    amount = scenario.redress_fen // 100 or 0
    respondent_staff: tuple[RespondentStaff, ...] = ()
    if scenario.reason in ("service_attitude", "marketing") and rng.random() < 0.7:
        respondent_staff = (
            RespondentStaff(f"{site.tag}-T{rng.randint(1, 20):02d}", _person_name(rng)),
        )
    return ReceiveComplaint(
        case_id="",
        registration_no="",
        respondent_institution=site.code,
        channel=channel,
        received_on=received_on,
        complainant=complainant,
        claims=scenario.claims.format(amount=amount),
        facts=scenario.facts,
        category=Category(scenario.business, scenario.reason),
        agent=_agent(rng, site, received_on) if rng.random() < 0.05 else None,
        respondent_staff=respondent_staff,
        joint=joint,
        regulator_transfer=transfer,
    )


def _regulator_transfer(
    rng: random.Random, received_on: date, calendar_years: Collection[int]
) -> RegulatorTransfer | None:
    if rng.random() >= 0.05:
        return None
    regulator_received_on = received_on - timedelta(days=rng.randint(3, 12))
    forwarded_on = max(regulator_received_on, received_on - timedelta(days=rng.randint(0, 2)))
    years = {regulator_received_on.year, received_on.year}
    if not years <= set(calendar_years):
        return None
    return RegulatorTransfer(regulator_received_on, forwarded_on)


def _person(rng: random.Random, site: Site, today: date) -> Complainant:
    return Complainant(
        kind=ComplainantKind.NATURAL_PERSON,
        name=_person_name(rng),
        contact=_mobile(rng),
        id_type=IdType.RESIDENT_ID,
        id_number=resident_id(rng, rng.choice(site.districts), today),
    )


def _company(rng: random.Random, site: Site) -> Complainant:
    word, trade = rng.choice(_COMPANY_WORDS), rng.choice(_COMPANY_TRADES)
    return Complainant(
        kind=ComplainantKind.LEGAL_PERSON,
        name=f"{site.city}{word}{trade}有限公司",
        address=f"{site.city}市{_ROADS[site.city]}{rng.randint(1, 2999)}号",
        unified_social_credit_code=unified_social_credit_code(rng, rng.choice(site.districts)),
        legal_representative_name=_person_name(rng),
        legal_representative_contact=_mobile(rng),
    )


def _agent(rng: random.Random, site: Site, today: date) -> Agent:
    return Agent(
        name=_person_name(rng),
        id_type=IdType.RESIDENT_ID,
        id_number=resident_id(rng, rng.choice(site.districts), today),
        contact=_mobile(rng),
        authorization_ref=f"授权委托书-{today:%Y%m%d}-{rng.randint(1, 999):03d}",
    )


def _person_name(rng: random.Random) -> str:
    given = "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(_SURNAMES) + given


def _mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def resident_id(rng: random.Random, district: str, today: date) -> str:
    """A made-up resident identity number (GB 11643) of someone born 18 to 75 years ago."""
    born = today - timedelta(days=rng.randint(18 * 366, 75 * 365))
    body = f"{district}{born:%Y%m%d}{rng.randint(0, 999):03d}"
    total = sum(
        int(digit) * weight for digit, weight in zip(body, _RESIDENT_ID_WEIGHTS, strict=True)
    )
    number = body + "10X98765432"[total % 11]
    assert is_valid_resident_id(number, today=today)
    return number


def unified_social_credit_code(rng: random.Random, district: str) -> str:
    """A made-up 统一社会信用代码 (GB 32100) of a company registered in `district`."""
    body = "91" + district + "".join(rng.choice("0123456789") for _ in range(9))
    total = sum(
        USCC_CHARACTERS.index(character) * weight
        for character, weight in zip(body, _USCC_WEIGHTS, strict=True)
    )
    code = body + USCC_CHARACTERS[(31 - total % 31) % 31]
    assert is_valid_unified_social_credit_code(code)
    return code
