"""Driving complaints through the command path (`ComplaintService`, real PostgreSQL) on chosen
business dates, for the projection tests: each command runs with "today" set to its date."""

from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Any

import asyncpg

from complaintcore.application.complaint_service import (
    ComplaintService,
    Rendered,
    RequestInfo,
)
from complaintcore.application.retention_sweep import RetentionSweep, SweepOrder
from complaintcore.auth.principals import Principal
from complaintcore.auth.tokens import create_token
from complaintcore.domain.calendar import seeded_calendar
from complaintcore.domain.commands import (
    Approval,
    ApproverRole,
    AssignHandler,
    Attribute,
    Category,
    Complainant,
    ComplainantKind,
    DecideComplaint,
    DecideReview,
    DeclineComplaint,
    ErasePersonalData,
    ExtendDeadline,
    FlagMajor,
    FollowUp,
    IdType,
    MajorCause,
    MergeComplaint,
    Notice,
    NoticeMethod,
    Outcome,
    PauseClock,
    PauseKind,
    ReceiveComplaint,
    RectificationAction,
    Rectify,
    RecuseHandler,
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
from complaintcore.domain.decider import DecisionContext, decide
from complaintcore.domain.events import Event
from complaintcore.domain.policy import DEFAULT_POLICY, InstitutionPolicy
from complaintcore.domain.state import ComplaintState
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from complaintcore.projections.case_view import load_index_key
from complaintcore.reference.calendars import CalendarRepository
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import database_cloned_from_template, session_case_keys

# HO → BR-A → SUB-A1 (three levels), HO → BR-B
TREE = [
    ("HO", "总行", "head_office", None),
    ("BR-A", "上海分行", "branch", "HO"),
    ("BR-B", "北京分行", "branch", "HO"),
    ("SUB-A1", "浦东支行", "sub_branch", "BR-A"),
]
Principals = dict[str, tuple[str, str, str | None]]  # name → (id, role, institution)


async def tree_and_tokens(database_url: str, principals: Principals) -> dict[str, str]:
    """`TREE` written to the database at `database_url`, and a token for each principal, by
    name."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        directory = InstitutionDirectory(pool)
        for code, name, kind, parent in TREE:
            await directory.put(code, name, kind, parent)
        return {
            name: await create_token(pool, principal_id, role, institution)
            for name, (principal_id, role, institution) in principals.items()
        }
    finally:
        await pool.close()


HANDLER = "h-1"
REVIEWER = "r-1"
STAFF = Principal("staff-ho", "staff", "HO")


def _rendered(state: ComplaintState, today: date, policy: InstitutionPolicy) -> Rendered:
    return Rendered(200, {"id": state.id, "version": state.version}, {})


def notice(on: date) -> Notice:
    return Notice(notified_on=on, method=NoticeMethod.SMS, proof_ref=f"sms-{on.isoformat()}")


def receipt_command(
    case_id: str,
    registration_no: str,
    institution: str,
    on: date,
    *,
    channel: str = "phone",
    business: str = "credit_card",
    reason: str = "pricing_and_fees",
    staff: tuple[str, ...] = (),
) -> ReceiveComplaint:
    """A complaint received on `on`, naming the staff ids `staff` (被投诉从业人员)."""
    return ReceiveComplaint(
        case_id=case_id,
        registration_no=registration_no,
        respondent_institution=institution,
        channel=channel,
        received_on=on,
        complainant=Complainant(
            kind=ComplainantKind.NATURAL_PERSON,
            name="张三",
            id_type=IdType.RESIDENT_ID,
            id_number="11010519491231002X",
            contact="13800138000",
        ),
        claims="退还年费",
        facts="未经同意扣收年费",
        category=Category(business, reason),
        respondent_staff=tuple(RespondentStaff(staff_id, "李四") for staff_id in staff),
    )


def received(case_id: str, institution: str, superior: str, on: date) -> list[Event]:
    """The events of `receipt_command`, decided by a staff member on `on` (no database)."""
    context = DecisionContext(
        today=on,
        calendar=seeded_calendar(),
        policy=DEFAULT_POLICY,
        actor_id=STAFF.id,
        actor_role=STAFF.role,
        superior_of_respondent=superior,
    )
    return decide(None, receipt_command(case_id, f"{institution}-1", institution, on), context)


class CaseDesk:
    """A complaint desk whose clock is set by each command's business date."""

    def __init__(self, pool: asyncpg.Pool, actor: Principal = STAFF) -> None:
        self.pool = pool
        self.actor = actor  # who sends every command
        self.store = PostgresEventStore(pool)
        self.institutions = InstitutionDirectory(pool)
        self.today = date(2026, 1, 1)
        self._service: ComplaintService | None = None

    @property
    def service(self) -> ComplaintService:
        assert self._service is not None, "the desk's service is made by its first command"
        return self._service

    async def _ready_service(self) -> ComplaintService:
        """The service, made on first use: its blind index key is read from the database."""
        if self._service is None:
            case_keys = session_case_keys()
            async with self.pool.acquire() as connection:
                index_key = await load_index_key(
                    connection, case_keys.provider, case_keys.suite.name
                )
            self._service = ComplaintService(
                self.pool,
                self.store,
                self.institutions,
                CalendarRepository(self.pool),
                case_keys,
                index_key,
                today=lambda: self.today,
            )
        return self._service

    async def plant_tree(self) -> None:
        for code, name, kind, parent in TREE:
            await self.institutions.put(code, name, kind, parent)

    async def _handle(self, case_id: str, command: Any, on: date) -> None:
        self.today = on
        service = await self._ready_service()
        await service.handle(self.actor, case_id, command, None, RequestInfo(), _rendered)

    async def receive(self, institution: str, on: date, **details: Any) -> str:
        """Receive a complaint (`details`: `receipt_command`'s keywords)."""
        self.today = on

        def build(case_id: str, registration_no: str) -> ReceiveComplaint:
            return receipt_command(case_id, registration_no, institution, on, **details)

        service = await self._ready_service()
        rendered = await service.receive(
            self.actor, institution, on, build, RequestInfo(), _rendered
        )
        return rendered.body["id"]

    async def assign(self, case_id: str, on: date, handler: str = HANDLER) -> None:
        await self._handle(case_id, AssignHandler(handler), on)

    async def recuse(self, case_id: str, on: date, handler: str = HANDLER) -> None:
        await self._handle(case_id, RecuseHandler(handler, "与投诉人有亲属关系"), on)

    async def extend(self, case_id: str, on: date, *, approved: bool = False) -> None:
        approval = Approval("m-1", ApproverRole.HEAD_OFFICE_SENIOR_MANAGER) if approved else None
        await self._handle(case_id, ExtendDeadline("情况复杂", notice(on), approval), on)

    async def pause(self, case_id: str, on: date) -> None:
        await self._handle(case_id, PauseClock(PauseKind.APPRAISAL, on, "鉴定", notice(on)), on)

    async def resume(self, case_id: str, on: date) -> None:
        await self._handle(case_id, ResumeClock(on), on)

    async def supplement(self, case_id: str, on: date, *, new_facts: bool) -> None:
        await self._handle(case_id, SupplementComplaint(on, new_facts, "补充材料"), on)

    async def decide(
        self,
        case_id: str,
        on: date,
        *,
        outcome: Outcome = Outcome.UPHELD,
        redress_fen: int = 0,
        head_office: bool = False,
        handler: str = HANDLER,
    ) -> None:
        remedies = (Remedy.LITIGATION,) if head_office else (Remedy.REVIEW, Remedy.LITIGATION)
        command = DecideComplaint(
            handler, outcome, "核实情况", "依据和理由", remedies, notice(on), redress_fen
        )
        await self._handle(case_id, command, on)

    async def appeal(self, case_id: str, on: date) -> None:
        await self._handle(case_id, RequestReview(on, "不服"), on)

    async def decide_review(
        self,
        case_id: str,
        on: date,
        *,
        new_outcome: Outcome | None = None,
        new_redress_fen: int | None = None,
    ) -> None:
        outcome = ReviewOutcome.CHANGED if new_outcome else ReviewOutcome.KEPT
        command = DecideReview(REVIEWER, outcome, "核查", notice(on), new_outcome, new_redress_fen)
        await self._handle(case_id, command, on)

    async def withdraw(self, case_id: str, on: date) -> None:
        await self._handle(case_id, WithdrawComplaint(on, "已协商"), on)

    async def decline(self, case_id: str, on: date) -> None:
        await self._handle(case_id, DeclineComplaint("非本人投诉", notice(on)), on)

    async def merge(self, case_id: str, into: str, on: date) -> None:
        await self._handle(case_id, MergeComplaint(into), on)

    async def flag_major(self, case_id: str, on: date) -> None:
        await self._handle(case_id, FlagMajor(MajorCause.ACCIDENT, "安全事故"), on)

    async def attribute(
        self,
        case_id: str,
        on: date,
        *,
        root_cause: RootCause = RootCause.RULES_AND_PROCESS,
        responsible: str = "HO",
        due_on: tuple[date, ...] = (),
        staff: tuple[str, ...] = (),
    ) -> None:
        """Attribute the case, with one action a due date (ids a-1, a-2, …)."""
        actions = tuple(
            RectificationAction(f"a-{n}", "修订流程", "owner-1", due)
            for n, due in enumerate(due_on, start=1)
        )
        third_party = "某合作机构" if root_cause is RootCause.THIRD_PARTY else None
        command = Attribute(on, responsible, root_cause, None, staff, third_party, actions)
        await self._handle(case_id, command, on)

    async def rectify(self, case_id: str, on: date, action_id: str = "a-1") -> None:
        await self._handle(case_id, Rectify(action_id, on, f"evidence-{action_id}"), on)

    async def follow_up(
        self, case_id: str, on: date, satisfaction: Satisfaction | None = None
    ) -> None:
        """Follow up: reached with `satisfaction`, or not reached (None)."""
        reached = satisfaction is not None
        await self._handle(case_id, FollowUp(reached, on, satisfaction, "回访"), on)


SWEPT_ON = date(2026, 6, 1)  # a case closed in 2019 is past the default five years by then


async def closed_in_2019(desk: CaseDesk, day: int = 4) -> str:
    """A BR-A case received on 2019-03-`day` and withdrawn three days later: erasable."""
    case_id = await desk.receive("BR-A", date(2019, 3, day))
    await desk.withdraw(case_id, date(2019, 3, day + 3))
    return case_id


ERASER = Principal("admin-1", "admin", None)


async def erase_as_admin(desk: CaseDesk, case_id: str) -> None:
    """The case's personal data erased on `SWEPT_ON` by an admin, as the erase route does."""
    desk.today = SWEPT_ON
    command = ErasePersonalData(SWEPT_ON, "retention period ended", "PIPL Art. 47")
    await desk.service.handle(ERASER, case_id, command, None, RequestInfo(), _rendered)


async def erase_past_retention(pool: asyncpg.Pool, correlation_id: str) -> int:
    """The retention sweep as of `SWEPT_ON`, as another process runs it (case keys and a key
    cache of its own): how many cases it erased."""
    order = SweepOrder(on=SWEPT_ON, correlation_id=correlation_id)
    async with pool.acquire() as connection:
        sweep = RetentionSweep(
            connection, PostgresEventStore(pool), session_case_keys(), order, today=lambda: SWEPT_ON
        )
        return (await sweep.run()).erased


async def table_rows(executor: asyncpg.Pool | asyncpg.Connection, table: str) -> list[dict]:
    """Every row of `table` in key order, as plain dicts (row-for-row comparisons)."""
    rows = await executor.fetch(f"SELECT * FROM {table} ORDER BY 1")
    return [dict(row) for row in rows]


def scratch_database(server_url: str) -> AbstractAsyncContextManager[str]:
    """A migrated database of its own, dropped afterwards: for fixtures wider than one test."""
    return database_cloned_from_template(server_url)
