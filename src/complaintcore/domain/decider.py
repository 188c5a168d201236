"""`decide(state, command, context) -> events`: every rule of the regulation as a pure function.

A refused command raises `RuleViolation` (a rule of the case said no) or `InvalidCommand` /
`InvalidComplaint` (the command is malformed) and emits nothing. `evolve` and `fold` (from
`state`) turn the events back into state; `decide` never changes the state it is given.

Order of checks, the same for every command: the case exists; its personal data is not erased
(`personal_data_erased`: an erased case takes no command at all); the command's fields; a closed
case; the business dates; whether the case is closed at the business date; then the command's
own rules in the order its handler lists them. A review request (appeal) on a decided case says
why it is out of reach (`review_not_available`, `appeal_window_closed`) instead of `case_closed`.

Choices made where DOMAIN.md is silent (a compliance officer's reading, documented here):

- Business dates. A command's business date is its own date (`received_on`, `paused_on`,
  `resumed_on`) or its notice's `notified_on`; it must lie between the case's previous business
  date and `context.today`. Rules are judged at that date, never at the wall clock. Commands
  without a date of their own (assign, recuse, merge, flag-major) happen `context.today`, and do
  not advance the case's previous business date: a paper withdrawal posted on Monday must still
  be enterable on Wednesday after a Tuesday assignment.
- Receipt: a joint complaint (Art. 12 多名投诉人) has at least 2 complainants and 1 to 5
  representatives, no more than the complainants. A regulator transfer (Art. 33) comes with
  channel `regulator_transfer` and the other way round, and its dates are ordered: regulator
  received <= forwarded <= received by the institution.
- Assignment: a supervisor may reassign an assigned case to another handler without a recusal;
  assigning the current handler again is refused (`handler_already_assigned`). Recusal and
  assignment end with the decision; the review has its own reviewer, who must not be the deciding
  handler, named respondent staff or a recused handler (`reviewer_has_conflict`, Art. 17).
- Extensions are refused while the clock is paused (`case_paused`): the notice must tell the
  complainant a definite new due date, which a running pause leaves open. A first extension may
  carry an approval (recorded, not required). A head office has no superior institution, so its
  second extension needs a head-office senior manager (`extension_requires_approval`).
- A pause must start on or before the due date (`case_overdue`): pausing cannot revive a period
  that has run out. New facts after the due date are recorded but do not restart the period
  (Art. 18 ¶3 restarts only a complaint repeated "within the period"); during a pause any day is
  within the period, and the open pause then counts from the restart day.
- A decision must list the remedies open (Art. 19): review exactly when the deciding node has a
  superior (`review_remedy_required` / `review_not_available`), at least one remedy, no
  duplicates. The review window runs from the decision notice's date even when the complainant
  could not be reached; a decision against which no review is open closes the case at once.
- Withdrawal is accepted while the case is open, so also after a decision within the review
  window; the decision's met/missed stays. Decline and merge only before a decision.
- Flag-major: staff and supervisors flag disaster, accident or public-health causes; a regulator
  any of those or `regulator`; admins none (`not_authorized_to_designate`). A case is major for
  one cause; the automatic group-complaint cause (Art. 29 (二)) is set at receipt only.
- Erasure (PIPL Art. 47, DOMAIN.md "Personal data"): its date `erased_on` is a business date like
  any other (not before the case's previous one, not after today), the case must be closed as of
  that day (`case_open`), and its retention (`retention.retention_ends_on` of `state.closed_on`
  and policy `retention_years`, its last day) must have passed (`retention_not_expired`). The event
  records the closing day and the years it applied, so an audit can check them from the stream.
- Redress authority (Art. 24, desk rule 客訴金額核決權限). The caller's limit, where it comes from,
  whether the caller stands at the case's institution or above, and the codes of the case's
  institution tree come in the `DecisionContext` (the service reads them from the policy and the
  tree). `approve-redress`: supervisors only, at or above the case's institution, for a positive
  amount within their own limit (`approver_lacks_authority` otherwise), on an open case
  (`case_closed`): before the decision, and also after it while the case is open (review window
  running or review pending), since a review decision that changes the outcome may need it. The
  latest approval replaces an earlier unused one. A decision, or a review decision that changes
  the outcome with a new redress, above the caller's limit needs an unused approval covering it
  (`redress_exceeds_authority`); every decision and review decision voids the approval, used or
  not. The approval records the approver's limit and its source, so an audit needs no policy.
- Attribution, rectification, follow-up (desk rule 責任歸屬, Art. 26; 回访). They need a decision
  (`case_not_decided`): a case withdrawn within its review window was decided and may be
  attributed; one withdrawn, declined or merged before a decision never can. They apply after the
  case closed too (the desk's work follows closure), and not once personal data is erased. The
  responsible unit must be a code of the case's tree (`unknown_institution`; matched regardless of
  letter case and stored as the tree spells it). A new attribution replaces the earlier one with
  its list of actions; an action id already closed stays closed (see `state._attributed`).
  Follow-ups may be repeated; the latest is the case's. The dates of these commands (and of
  `approve-redress`) are business dates like any other: not after today, not before the case's
  previous business date, and each becomes the previous business date, so the register reads in
  order (a rectification is never dated before its attribution, a decision never before its
  approval).
- A due date that needs a calendar year not loaded (policy `roll_past_holidays`) refuses the
  command with `calendar_year_missing`; at receipt the regulator-transfer check reports the same
  code as a field error of `regulator_transfer`.

Why one file of 1,050 lines: every command's rules read the same shared checks (dates, closed
cases, field errors) in one order, stated once at the top; a file per command would scatter that
order, which a compliance officer reads here end to end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from complaintcore.domain.calendar import CalendarYearMissing, WorkingDayCalendar
from complaintcore.domain.commands import (
    NUMBERED_BY_GB_11643,
    Agent,
    ApproveRedress,
    ApproverRole,
    AssignHandler,
    Attribute,
    Command,
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
    JointComplaint,
    MajorCause,
    MergeComplaint,
    Notice,
    NoticeMethod,
    NotifyComplainant,
    PauseClock,
    ReceiveComplaint,
    RectificationAction,
    Rectify,
    RecuseHandler,
    Remedy,
    RequestReview,
    ResumeClock,
    ReviewOutcome,
    RootCause,
    SupplementComplaint,
    WithdrawComplaint,
)
from complaintcore.domain.deadlines import (
    MAX_LEVEL,
    due_date,
    extended_due_date,
    handling_days,
    moved_due_date,
    pause_days,
    regulator_transfer_check,
    review_due_on,
    review_window_ends_on,
)
from complaintcore.domain.events import (
    CaseAttributed,
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
    FollowedUp,
    HandlerAssigned,
    HandlerRecused,
    MarkedMajor,
    PersonalDataErased,
    RectificationActionClosed,
    RedressApproved,
    RegulatorTransferCheck,
    ReviewDecided,
    ReviewRequested,
)
from complaintcore.domain.identity import (
    holds_a_personal_number,
    is_valid_resident_id,
    is_valid_unified_social_credit_code,
)
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.domain.retention import retention_ended, retention_ends_on
from complaintcore.domain.roles import Role, may_approve_redress, may_designate_major
from complaintcore.domain.rules import (
    ACTION_ALREADY_CLOSED,
    ALREADY_MAJOR,
    APPEAL_WINDOW_CLOSED,
    APPROVER_LACKS_AUTHORITY,
    BUSINESS_DATE_BEFORE_PREVIOUS,
    BUSINESS_DATE_IN_FUTURE,
    CALENDAR_YEAR_MISSING,
    CANNOT_MERGE_INTO_ITSELF,
    CASE_ALREADY_DECIDED,
    CASE_ALREADY_EXISTS,
    CASE_CLOSED,
    CASE_NOT_ASSIGNED,
    CASE_NOT_DECIDED,
    CASE_NOT_FOUND,
    CASE_NOT_PAUSED,
    CASE_OPEN,
    CASE_OVERDUE,
    CASE_PAUSED,
    EXTENSION_LIMIT_REACHED,
    EXTENSION_REQUIRES_APPROVAL,
    HANDLER_ALREADY_ASSIGNED,
    HANDLER_HAS_CONFLICT,
    HANDLER_NOT_ASSIGNED,
    MERGE_TARGET_NOT_OPEN,
    NOT_AUTHORIZED_TO_DESIGNATE,
    PAUSE_ALREADY_OPEN,
    PERSONAL_DATA_ERASED,
    REDRESS_EXCEEDS_AUTHORITY,
    RETENTION_NOT_EXPIRED,
    REVIEW_ALREADY_REQUESTED,
    REVIEW_CHANGES_NOTHING,
    REVIEW_DECIDED_BELOW_SUPERIOR,
    REVIEW_NOT_AVAILABLE,
    REVIEW_NOT_REQUESTED,
    REVIEW_REMEDY_REQUIRED,
    REVIEWER_HAS_CONFLICT,
    UNKNOWN_ACTION,
    UNKNOWN_INSTITUTION,
    FieldError,
    InvalidCommand,
    InvalidComplaint,
)
from complaintcore.domain.state import (
    BEFORE_DECISION,
    INITIAL,
    TERMINAL,
    Attribution,
    CaseStatus,
    ComplaintState,
    Decision,
    closed_on,
    evolve,
    fold,
    is_closed,
)
from complaintcore.domain.taxonomy import is_channel

__all__ = [
    "INITIAL",
    "ActorRole",
    "DecisionContext",
    "check_merge_target",
    "decide",
    "evolve",
    "fold",
]

MAX_REPRESENTATIVES = 5  # Art. 12
MAJOR_GROUP_COMPLAINANTS = 20  # Art. 29 (二)
IN_PERSON = "in_person"
REGULATOR_TRANSFER = "regulator_transfer"


ActorRole = Role  # the caller's role, as `roles` declares them


@dataclass(frozen=True)
class DecisionContext:
    """What a command is decided against besides the case.

    `today` is the Asia/Shanghai date when the command is handled. `superior_of_respondent` is
    the code of the respondent node's superior, None for a head office: review goes to it and is
    only open when it exists (Art. 20).

    Internal control (Art. 24, 26), each defaulted so that callers without it keep working:
    `redress_limit_fen` is the caller's redress limit at the case's institution on the business
    date (None: no limit, a head-office supervisor's); `redress_limit_source` names where it
    comes from, for refusals and the audit ("policy of BR-SH, version 3", or "default").
    `actor_at_or_above_respondent` says the caller's institution is the case's respondent
    institution or one of its ancestors (only such a caller approves redress; False by default,
    so no approval passes unless the caller says so). `institutions_of_case_tree` holds the codes
    of the case's institution tree, the responsible units an attribution may name.
    `barred_on_merged_duplicates`: the staff barred on the duplicates merged into the case (named
    in one, or recused from one: the same complaint, Art. 17), for the commands that name a
    handler, a reviewer or an approver (`needs_merged_duplicates`).
    """

    today: date
    calendar: WorkingDayCalendar
    policy: InstitutionPolicy
    actor_id: str
    actor_role: ActorRole
    superior_of_respondent: str | None
    redress_limit_fen: int | None = None
    redress_limit_source: str = "default"
    actor_at_or_above_respondent: bool = False
    institutions_of_case_tree: frozenset[str] = frozenset()
    barred_on_merged_duplicates: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "actor_role", ActorRole(self.actor_role))


def decide(state: ComplaintState | None, command: Command, context: DecisionContext) -> list[Event]:
    """The events `command` produces on the case `state`; raises when it is refused."""
    if state is not None and state.personal_data_erased:
        raise PERSONAL_DATA_ERASED.violation()
    if isinstance(command, ReceiveComplaint):
        return _receive(state, command, context)
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"not a command: {command!r}")
    if state is None:
        raise CASE_NOT_FOUND.violation()
    return handler(state, command, context)


# --- receive (Art. 12-14, 18, 29, 33) ------------------------------------------------------


def _receive(
    state: ComplaintState | None, command: ReceiveComplaint, context: DecisionContext
) -> list[Event]:
    if state is not None:
        raise CASE_ALREADY_EXISTS.violation(command.case_id)
    errors = _FieldErrors()
    _check_receipt_fields(command, context.policy, errors)
    transfer = _regulator_transfer(command, context.calendar, errors)
    errors.raise_if_any(InvalidComplaint)
    _check_not_future(command.received_on, context)
    with _calendar_needed():
        due_on = due_date(command.received_on, 0, 0, context.calendar, context.policy)
    events: list[Event] = [
        ComplaintReceived(
            case_id=command.case_id,
            registration_no=command.registration_no,
            respondent_institution=command.respondent_institution,
            channel=command.channel,
            received_on=command.received_on,
            complainant=command.complainant,
            claims=command.claims,
            facts=command.facts,
            category=command.category,
            agent=command.agent,
            filed_by_heir=command.filed_by_heir,
            heir_proof_ref=command.heir_proof_ref,
            respondent_staff=tuple(command.respondent_staff),
            joint=command.joint,
            regulator_transfer=transfer,
            due_on=due_on,
        )
    ]
    if command.joint is not None and command.joint.complainants >= MAJOR_GROUP_COMPLAINANTS:
        detail = f"{command.joint.complainants} complainants made the complaint face to face"
        events.append(MarkedMajor(MajorCause.GROUP_COMPLAINT, detail, command.received_on))
    return events


def _check_receipt_fields(
    command: ReceiveComplaint, policy: InstitutionPolicy, errors: _FieldErrors
) -> None:
    for name in ("case_id", "registration_no", "respondent_institution", "claims", "facts"):
        errors.require(name, getattr(command, name))
    if not is_channel(command.channel):
        errors.add("channel", "unknown_channel", f"{command.channel!r} is not a channel")
    if not policy.taxonomy.has_business(command.category.business):
        errors.add("category.business", "unknown_business", "not in the taxonomy")
    if not policy.taxonomy.has_cause(command.category.reason):
        errors.add("category.reason", "unknown_cause", "not in the taxonomy")
    _check_complainant(command.complainant, command.received_on, errors)
    if command.agent is not None:
        _check_agent(command.agent, command.received_on, errors)
    if command.filed_by_heir:
        errors.require("heir_proof_ref", command.heir_proof_ref)  # 继承关系证明, Art. 14
    for index, staff in enumerate(command.respondent_staff):
        errors.require(f"respondent_staff[{index}].staff_id", staff.staff_id)
        errors.require(f"respondent_staff[{index}].name", staff.name)
    if command.joint is not None:
        _check_joint(command.joint, command.channel, errors)


def _check_complainant(complainant: Complainant, received_on: date, errors: _FieldErrors) -> None:
    errors.require("complainant.name", complainant.name)
    if complainant.kind is ComplainantKind.NATURAL_PERSON:
        if complainant.id_type is None:
            errors.add("complainant.id_type", "required", "complainant.id_type is required")
        _check_identity(
            "complainant", complainant.id_type, complainant.id_number, received_on, errors
        )
        errors.require("complainant.contact", complainant.contact)
        if complainant.unified_social_credit_code.strip():
            # an organisation's code, stored in clear: a person's number put there would be too
            errors.add(
                "complainant.unified_social_credit_code",
                "not_allowed",
                "only a legal person has a unified social credit code",
            )
        return
    errors.require("complainant.address", complainant.address)
    code_field = "complainant.unified_social_credit_code"
    code = complainant.unified_social_credit_code
    if errors.require(code_field, code) and not is_valid_unified_social_credit_code(code):
        errors.add(code_field, "invalid_credit_code", "fails the GB 32100 check character")
    errors.require("complainant.legal_representative_name", complainant.legal_representative_name)
    errors.require(
        "complainant.legal_representative_contact", complainant.legal_representative_contact
    )


def _check_agent(agent: Agent, received_on: date, errors: _FieldErrors) -> None:
    errors.require("agent.name", agent.name)
    _check_identity("agent", agent.id_type, agent.id_number, received_on, errors)
    errors.require("agent.contact", agent.contact)
    errors.require("agent.authorization_ref", agent.authorization_ref)  # 授权委托书, Art. 14


def _check_identity(
    prefix: str, id_type: IdType | None, id_number: str, received_on: date, errors: _FieldErrors
) -> None:
    field = f"{prefix}.id_number"
    if not errors.require(field, id_number) or id_type not in NUMBERED_BY_GB_11643:
        return
    if not is_valid_resident_id(id_number, today=received_on):
        errors.add(field, "invalid_resident_id", "fails the GB 11643 check (MOD 11-2)")


def _check_joint(joint: JointComplaint, channel: str, errors: _FieldErrors) -> None:
    if channel != IN_PERSON:
        errors.add("joint", "not_allowed", "a joint complaint is made face to face (in_person)")
    if joint.complainants < 2:
        errors.add("joint.complainants", "too_few", "a joint complaint has several complainants")
    if not joint.representatives:
        errors.add("joint.representatives", "required", "elect 1 to 5 representatives (Art. 12)")
    if len(joint.representatives) > MAX_REPRESENTATIVES:
        errors.add("joint.representatives", "too_many_representatives", "at most 5 (Art. 12)")
    elif len(joint.representatives) > joint.complainants:
        errors.add("joint.representatives", "more_than_complainants", "more than the complainants")
    for index, name in enumerate(joint.representatives):
        errors.require(f"joint.representatives[{index}]", name)


def _regulator_transfer(
    command: ReceiveComplaint, calendar: WorkingDayCalendar, errors: _FieldErrors
) -> RegulatorTransferCheck | None:
    transfer = command.regulator_transfer
    if transfer is None:
        if command.channel == REGULATOR_TRANSFER:
            errors.add("regulator_transfer", "required", "a regulator transfer records its dates")
        return None
    if command.channel != REGULATOR_TRANSFER:
        errors.add("regulator_transfer", "not_allowed", "only for channel regulator_transfer")
        return None
    field = "regulator_transfer.forwarded_on"
    if transfer.forwarded_on < transfer.regulator_received_on:
        errors.add(field, "before_regulator_received", "forwarded before the regulator received")
        return None
    if transfer.forwarded_on > command.received_on:
        errors.add(field, "after_received_on", "forwarded after the institution received it")
        return None
    try:
        return regulator_transfer_check(transfer, calendar)
    except CalendarYearMissing as missing:
        errors.add(
            "regulator_transfer",
            "calendar_year_missing",
            f"no working-day calendar loaded for {missing.year} (Art. 33)",
        )
        return None


# --- assignment and recusal (Art. 17) ------------------------------------------------------


def _assign(state: ComplaintState, command: AssignHandler, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    errors.require("handler_id", command.handler_id)
    errors.raise_if_any()
    _require_open(state, context, context.today)
    _require_before_decision(state)
    if command.handler_id in _barred(state, context):
        raise HANDLER_HAS_CONFLICT.violation(command.handler_id)
    if command.handler_id == state.handler_id:
        raise HANDLER_ALREADY_ASSIGNED.violation(command.handler_id)
    return [HandlerAssigned(command.handler_id, context.today, state.handler_id)]


def _recuse(state: ComplaintState, command: RecuseHandler, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    errors.require("handler_id", command.handler_id)
    errors.require("reason", command.reason)
    errors.raise_if_any()
    _require_open(state, context, context.today)
    _require_before_decision(state)
    _require_assigned_handler(state, command.handler_id)
    return [HandlerRecused(command.handler_id, command.reason, context.today)]


# --- deadlines (Art. 18, 23) ---------------------------------------------------------------


def _extend(
    state: ComplaintState, command: ExtendDeadline, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    errors.require("reason", command.reason)
    _check_notice(command.notice, errors)
    if command.approval is not None:
        errors.require("approval.approver_id", command.approval.approver_id)
    errors.raise_if_any()
    on = command.notice.notified_on
    _require_open(state, context, on)
    _require_before_decision(state)
    _require_running(state)
    clock = state.clock
    if clock.level >= MAX_LEVEL:
        raise EXTENSION_LIMIT_REACHED.violation()
    if on > clock.due_on:
        raise CASE_OVERDUE.violation(f"due {clock.due_on.isoformat()}")
    level = clock.level + 1
    if level == MAX_LEVEL:
        _check_second_extension_approval(state, command, context)
    with _calendar_needed():
        new_due_on = extended_due_date(clock, level, context.calendar, context.policy)
    return [
        DeadlineExtended(
            level=level,
            reason=command.reason,
            approval=command.approval,
            notice=command.notice,
            previous_due_on=clock.due_on,
            due_on=new_due_on,
        )
    ]


def needs_merged_duplicates(command: Command) -> bool:
    """Whether deciding `command` asks who is barred on the duplicates merged into the case
    (`DecisionContext.barred_on_merged_duplicates`): it names a handler, a reviewer or an
    approver, or decides (a duplicate merged in after the assignment may bar the handler)."""
    if isinstance(command, ExtendDeadline):
        return command.approval is not None
    return isinstance(command, AssignHandler | DecideComplaint | DecideReview | ApproveRedress)


def _barred(state: ComplaintState, context: DecisionContext) -> frozenset[str]:
    """Who can never handle the case (Art. 17): its own barred staff, and those of the
    duplicates merged into it (found by a review pass: the staff a duplicate named could be
    assigned the case it was merged into)."""
    return state.barred_handlers | context.barred_on_merged_duplicates


def _check_second_extension_approval(
    state: ComplaintState, command: ExtendDeadline, context: DecisionContext
) -> None:
    approval = command.approval
    if approval is None:
        raise EXTENSION_REQUIRES_APPROVAL.violation()
    if approval.approver_id in _barred(state, context):
        # the person complained of approving their own case's extension (a review pass)
        raise EXTENSION_REQUIRES_APPROVAL.violation(
            f"{approval.approver_id} has a direct interest in the case (Art. 17)"
        )
    if approval.approver_id == state.handler_id:
        raise EXTENSION_REQUIRES_APPROVAL.violation(
            "the handler cannot approve the extension of their own case"
        )
    if (
        approval.approver_role is ApproverRole.SUPERIOR_INSTITUTION
        and context.superior_of_respondent is None
    ):
        raise EXTENSION_REQUIRES_APPROVAL.violation(
            "a head office has no superior institution; a head-office senior manager approves"
        )


def _pause(state: ComplaintState, command: PauseClock, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    errors.require("reason", command.reason)
    _check_notice(command.notice, errors)
    errors.raise_if_any()
    _require_open(state, context, command.paused_on, command.notice.notified_on)
    _require_before_decision(state)
    if state.clock.paused_since is not None:
        raise PAUSE_ALREADY_OPEN.violation()
    if command.paused_on > state.clock.due_on:
        raise CASE_OVERDUE.violation(f"due {state.clock.due_on.isoformat()}")
    return [ClockPaused(command.kind, command.paused_on, command.reason, command.notice)]


def _resume(state: ComplaintState, command: ResumeClock, context: DecisionContext) -> list[Event]:
    _require_open(state, context, command.resumed_on)
    _require_before_decision(state)
    clock = state.clock
    pause = state.open_pause
    if clock.paused_since is None or pause is None:
        raise CASE_NOT_PAUSED.violation()
    counted = pause_days(clock.paused_since, command.resumed_on)
    with _calendar_needed():
        new_due_on = moved_due_date(clock.due_on, counted, context.calendar, context.policy)
    return [
        ClockResumed(
            paused_on=pause.paused_on,
            resumed_on=command.resumed_on,
            paused_days=pause_days(pause.paused_on, command.resumed_on),
            due_on=new_due_on,
        )
    ]


def _supplement(
    state: ComplaintState, command: SupplementComplaint, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    errors.require("summary", command.summary)
    errors.raise_if_any()
    on = command.received_on
    _require_open(state, context, on)
    _require_before_decision(state)
    clock = state.clock
    within_period = clock.paused_since is not None or on <= clock.due_on
    restarted = command.new_facts_and_reasons and within_period
    due_on = clock.due_on
    if restarted:
        with _calendar_needed():
            due_on = due_date(on, clock.level, 0, context.calendar, context.policy)
    return [
        ComplaintSupplemented(
            received_on=on,
            new_facts_and_reasons=command.new_facts_and_reasons,
            summary=command.summary,
            restarted=restarted,
            due_on=due_on,
        )
    ]


def _merge(state: ComplaintState, command: MergeComplaint, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    errors.require("into", command.into)
    errors.raise_if_any()
    _require_open(state, context, context.today)
    _require_before_decision(state)
    if command.into == state.id:
        raise CANNOT_MERGE_INTO_ITSELF.violation()
    return [ComplaintMerged(command.into, context.today)]


def check_review_decider(
    state: ComplaintState, actor_institution: str | None, lineage: tuple[str, ...]
) -> None:
    """A review goes to the respondent's superior (Art. 20): its decision is that institution's
    or one above it (`lineage`: the respondent's, from it up to its head office), never the
    reviewed institution's own or one below it.

    Judged by the caller, once `decide` has accepted the review decision on the case's own
    rules, from where the caller sits; a bulk import asks it of a step whose actor has an
    institution."""
    if state.review is None:
        return
    reviewing = state.review.reviewing_institution
    # from the reviewing institution up; should the tree have moved since the request, it or
    # any institution now above the respondent
    above = (
        lineage[lineage.index(reviewing) :] if reviewing in lineage else (reviewing, *lineage[1:])
    )
    if actor_institution not in above:
        raise REVIEW_DECIDED_BELOW_SUPERIOR.violation(
            f"the review went to {reviewing}; the caller is at {actor_institution}"
        )


def check_merge_target(target: ComplaintState | None) -> None:
    """The case a duplicate merges into must exist (for the caller) and still be handled.

    Cross-case, so the caller loads the target and asks this once `decide` has accepted the
    merge on the duplicate's own rules (an erased or closed duplicate is refused as such).
    """
    if target is None:
        raise InvalidCommand([FieldError("into", "unknown_case", "no such case")])
    if target.status not in BEFORE_DECISION:
        raise MERGE_TARGET_NOT_OPEN.violation(f"it is {target.status.value}")


# --- decision and notice (Art. 18, 19, 21) -------------------------------------------------


def _decide(
    state: ComplaintState, command: DecideComplaint, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    errors.require("handler_id", command.handler_id)
    errors.require("findings", command.findings)
    errors.require("basis", command.basis)
    _check_remedies(command.remedies, errors)
    _check_fen("redress_fen", command.redress_fen, errors)
    _check_notice(command.notice, errors)
    errors.raise_if_any()
    on = command.notice.notified_on
    _require_open(state, context, on)
    _require_before_decision(state)
    _require_assigned_handler(state, command.handler_id)
    if command.handler_id in _barred(state, context):
        # barred by a duplicate merged in after the assignment (a review pass): the case is
        # handed to another, by `assign`, before it is decided
        raise HANDLER_HAS_CONFLICT.violation(command.handler_id)
    _require_running(state)
    review_open = context.superior_of_respondent is not None
    if Remedy.REVIEW in command.remedies and not review_open:
        raise REVIEW_NOT_AVAILABLE.violation("the decision may not offer review")
    if review_open and Remedy.REVIEW not in command.remedies:
        raise REVIEW_REMEDY_REQUIRED.violation(f"review by {context.superior_of_respondent}")
    _require_redress_authority(state, command.redress_fen, context)
    window_ends_on = None
    if review_open:
        with _calendar_needed():
            window_ends_on = review_window_ends_on(on, context.calendar, context.policy)
    return [
        ComplaintDecided(
            handler_id=command.handler_id,
            outcome=command.outcome,
            findings=command.findings,
            basis=command.basis,
            redress_fen=command.redress_fen,
            remedies=tuple(command.remedies),
            notice=command.notice,
            due_on=state.clock.due_on,
            on_time=on <= state.clock.due_on,
            handling_days=handling_days(state.received_on, on, state.clock.total_paused_days),
            review_window_ends_on=window_ends_on,
        )
    ]


def _notify(
    state: ComplaintState, command: NotifyComplainant, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    _check_notice(command.notice, errors)
    errors.raise_if_any()
    _require_open(state, context, command.notice.notified_on)
    return [ComplainantNotified(command.subject, command.notice, command.summary)]


# --- review (Art. 20) ----------------------------------------------------------------------


def _request_review(
    state: ComplaintState, command: RequestReview, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    errors.require("grounds", command.grounds)
    errors.raise_if_any()
    on = command.received_on
    _require_not_terminal(state)
    _check_business_date(state, on, context)
    if state.status in BEFORE_DECISION or state.decision is None:
        raise CASE_NOT_DECIDED.violation()
    if state.status is CaseStatus.UNDER_REVIEW:
        raise REVIEW_ALREADY_REQUESTED.violation()
    superior = context.superior_of_respondent
    window_ends_on = state.decision.review_window_ends_on
    if superior is None or window_ends_on is None:
        raise REVIEW_NOT_AVAILABLE.violation()
    if on > window_ends_on:
        raise APPEAL_WINDOW_CLOSED.violation(f"the window ended on {window_ends_on.isoformat()}")
    with _calendar_needed():
        due_on = review_due_on(on, context.calendar, context.policy)
    return [ReviewRequested(on, command.grounds, superior, due_on)]


def _decide_review(
    state: ComplaintState, command: DecideReview, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    errors.require("reviewer_id", command.reviewer_id)
    errors.require("findings", command.findings)
    _check_review_outcome(command, errors)
    _check_notice(command.notice, errors)
    errors.raise_if_any()
    on = command.notice.notified_on
    _require_open(state, context, on)
    if state.status in BEFORE_DECISION:
        raise CASE_NOT_DECIDED.violation()
    if state.review is None or state.decision is None:
        raise REVIEW_NOT_REQUESTED.violation()
    reviewer = command.reviewer_id
    if reviewer in _barred(state, context) or reviewer == state.decision.handler_id:
        raise REVIEWER_HAS_CONFLICT.violation(reviewer)
    if command.outcome is ReviewOutcome.CHANGED:
        _require_a_change(state.decision, command)
        # the redress in force after it: the new amount, else the decision's, which stays
        # (DOMAIN.md "Redress authority": a review decision that changes the outcome is judged
        # by its redress, whoever authorised the decision's)
        redress = command.new_redress_fen
        if redress is None:
            redress = state.decision.redress_fen
        if redress:
            _require_redress_authority(state, redress, context)
    return [
        ReviewDecided(
            reviewer_id=reviewer,
            outcome=command.outcome,
            findings=command.findings,
            new_outcome=command.new_outcome,
            new_redress_fen=command.new_redress_fen,
            notice=command.notice,
            due_on=state.review.due_on,
            on_time=on <= state.review.due_on,
        )
    ]


def _require_a_change(decision: Decision, command: DecideReview) -> None:
    """A review that says it changed the outcome changes it: the statistics count it among the
    reviews that changed the outcome, and the handler's figures among those that changed theirs."""
    same_outcome = command.new_outcome is decision.outcome
    same_redress = command.new_redress_fen in (None, decision.redress_fen)
    if same_outcome and same_redress:
        raise REVIEW_CHANGES_NOTHING.violation(
            f"the decision was {decision.outcome.value} with {decision.redress_fen} fen"
        )


def _check_review_outcome(command: DecideReview, errors: _FieldErrors) -> None:
    if command.outcome is ReviewOutcome.CHANGED:
        if command.new_outcome is None:
            errors.add("new_outcome", "required", "a changed outcome states the new outcome")
        if command.new_redress_fen is not None:
            _check_fen("new_redress_fen", command.new_redress_fen, errors)
        return
    if command.new_outcome is not None:
        errors.add("new_outcome", "not_allowed", "only when the outcome is changed")
    if command.new_redress_fen is not None:
        errors.add("new_redress_fen", "not_allowed", "only when the outcome is changed")


# --- withdrawal, decline, merge (Art. 15, 18) ----------------------------------------------


def _withdraw(
    state: ComplaintState, command: WithdrawComplaint, context: DecisionContext
) -> list[Event]:
    _require_open(state, context, command.received_on)
    return [ComplaintWithdrawn(command.received_on, command.reason)]


def _decline(
    state: ComplaintState, command: DeclineComplaint, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    errors.require("reason", command.reason)
    _check_notice(command.notice, errors)
    errors.raise_if_any()
    _require_open(state, context, command.notice.notified_on)
    _require_before_decision(state)
    return [ComplaintDeclined(command.reason, command.notice)]


# --- major complaints (Art. 29) ------------------------------------------------------------


def _flag_major(state: ComplaintState, command: FlagMajor, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    errors.require("detail", command.detail)
    if command.cause is MajorCause.GROUP_COMPLAINT:
        errors.add("cause", "not_allowed", "set automatically at receipt (Art. 29 (二))")
    errors.raise_if_any()
    _require_open(state, context, context.today)
    if not may_designate_major(context.actor_role, command.cause):
        raise NOT_AUTHORIZED_TO_DESIGNATE.violation(f"{context.actor_role} / {command.cause}")
    if state.major_flag is not None:
        raise ALREADY_MAJOR.violation(state.major_flag.cause)
    return [MarkedMajor(command.cause, command.detail, context.today)]


# --- personal data (PIPL Art. 19, 47; Art. 28) ---------------------------------------------


def check_erasure_ground(reason: str, legal_basis: str) -> None:
    """`InvalidCommand` unless an erasure's reason and legal basis are given and name no
    identity or mobile number: both are kept in clear for good (a review pass found the
    complainant's mobile there). The single-case erasure and the sweep's order ask it."""
    errors = _FieldErrors()
    for field, text in (("reason", reason), ("legal_basis", legal_basis)):
        if errors.require(field, text):
            errors.refuse_a_personal_number(field, text)
    errors.raise_if_any()


def _erase_personal_data(
    state: ComplaintState, command: ErasePersonalData, context: DecisionContext
) -> list[Event]:
    check_erasure_ground(command.reason, command.legal_basis)
    on = command.erased_on
    _check_business_date(state, on, context)
    closed = closed_on(state, on)
    if closed is None:
        raise CASE_OPEN.violation(f"{state.status} as of {on.isoformat()}")
    years = context.policy.retention_years
    if not retention_ended(closed, years, on):
        last_day = retention_ends_on(closed, years)
        raise RETENTION_NOT_EXPIRED.violation(
            f"it lasts through {last_day.isoformat()}, {years} years after the case closed on"
            f" {closed.isoformat()}; erasable from {(last_day + timedelta(days=1)).isoformat()}"
        )
    return [PersonalDataErased(on, command.reason, command.legal_basis, closed, years)]


# --- internal control (Art. 24, 26; desk rules 客訴金額核決權限, 責任歸屬; 回访) ---------------


def _approve_redress(
    state: ComplaintState, command: ApproveRedress, context: DecisionContext
) -> list[Event]:
    errors = _FieldErrors()
    _check_fen("up_to_fen", command.up_to_fen, errors, minimum=1)
    errors.require("note", command.note)
    errors.raise_if_any()
    _require_open(state, context, command.approved_on)
    _require_approver(state, command.up_to_fen, context)
    return [
        RedressApproved(
            up_to_fen=command.up_to_fen,
            note=command.note,
            approved_on=command.approved_on,
            approver_id=context.actor_id,
            approver_limit_fen=context.redress_limit_fen,
            limit_source=context.redress_limit_source,
        )
    ]


def _require_approver(state: ComplaintState, amount: int, context: DecisionContext) -> None:
    if not may_approve_redress(context.actor_role):
        raise APPROVER_LACKS_AUTHORITY.violation(f"a {context.actor_role} does not approve")
    if context.actor_id in _barred(state, context):
        # a supervisor named in the complaint approved its payout (found by a review pass)
        raise APPROVER_LACKS_AUTHORITY.violation(
            f"{context.actor_id} has a direct interest in the case (Art. 17)"
        )
    if not context.actor_at_or_above_respondent:
        raise APPROVER_LACKS_AUTHORITY.violation("not at the case's institution or above it")
    if not _within_limit(amount, context):
        raise APPROVER_LACKS_AUTHORITY.violation(_beyond_limit(amount, context))


def _require_redress_authority(
    state: ComplaintState, amount: int, context: DecisionContext
) -> None:
    """Redress within the caller's limit, or covered by the unused approval on the case."""
    if _within_limit(amount, context):
        return
    approval = state.redress_approval
    if approval is not None and approval.up_to_fen >= amount:
        return
    detail = _beyond_limit(amount, context)
    if approval is not None:
        detail += f"; the approval on the case covers only {approval.up_to_fen} fen"
    raise REDRESS_EXCEEDS_AUTHORITY.violation(detail)


def _within_limit(amount: int, context: DecisionContext) -> bool:
    return context.redress_limit_fen is None or amount <= context.redress_limit_fen


def _beyond_limit(amount: int, context: DecisionContext) -> str:
    return (
        f"{amount} fen is above the limit of {context.redress_limit_fen} fen "
        f"({context.redress_limit_source})"
    )


def _attribute(state: ComplaintState, command: Attribute, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    _check_attribution_fields(command, errors, state.attribution)
    errors.raise_if_any()
    _check_business_date(state, command.attributed_on, context)
    _require_decided(state)
    institution = _institution_of_tree(command.responsible_institution, context)
    return [
        CaseAttributed(
            attributed_on=command.attributed_on,
            responsible_institution=institution,
            department=command.department,
            responsible_staff=tuple(command.responsible_staff),
            root_cause=command.root_cause,
            third_party=command.third_party,
            actions=tuple(command.actions),
        )
    ]


def _check_attribution_fields(
    command: Attribute, errors: _FieldErrors, current: Attribution | None
) -> None:
    errors.require("responsible_institution", command.responsible_institution)
    if command.department is not None:
        errors.require("department", command.department)
    named: set[str] = set()
    for index, staff_id in enumerate(command.responsible_staff):
        field = f"responsible_staff[{index}]"
        if errors.require(field, staff_id) and staff_id in named:
            errors.add(field, "duplicate", "each staff member once")
        named.add(staff_id)
    if command.root_cause is RootCause.THIRD_PARTY:
        errors.require("third_party", command.third_party or "")  # its name (Art. 10)
    elif command.third_party is not None:
        errors.add("third_party", "not_allowed", "only when the root cause is third_party")
    carried_due_on = {a.action_id: a.due_on for a in current.actions} if current else {}
    _check_actions(command.actions, command.attributed_on, errors, carried_due_on)


def _check_actions(
    actions: tuple[RectificationAction, ...],
    attributed_on: date,
    errors: _FieldErrors,
    carried_due_on: dict[str, date],
) -> None:
    """`carried_due_on`: the current attribution's actions' due dates. An action named again
    with its due date unchanged is carried over as it is, overdue or closed, though due before a
    corrected attribution; a new action or a new due date is not due before it is set."""
    seen: set[str] = set()
    for index, action in enumerate(actions):
        field = f"actions[{index}]"
        if errors.require(f"{field}.action_id", action.action_id) and action.action_id in seen:
            errors.add(f"{field}.action_id", "duplicate", "action ids are unique in an attribution")
        seen.add(action.action_id)
        errors.require(f"{field}.description", action.description)
        errors.require(f"{field}.owner_id", action.owner_id)
        carried = carried_due_on.get(action.action_id) == action.due_on
        if action.due_on < attributed_on and not carried:
            errors.add(f"{field}.due_on", "before_attributed_on", "due before the attribution")


def _institution_of_tree(code: str, context: DecisionContext) -> str:
    """The code as the case's tree spells it (codes are unique regardless of letter case)."""
    wanted = code.casefold()
    for institution in context.institutions_of_case_tree:
        if institution.casefold() == wanted:
            return institution
    raise UNKNOWN_INSTITUTION.violation(code)


def _rectify(state: ComplaintState, command: Rectify, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    errors.require("action_id", command.action_id)
    errors.require("evidence_ref", command.evidence_ref)
    errors.raise_if_any()
    _check_business_date(state, command.done_on, context)
    action = state.attribution.action(command.action_id) if state.attribution else None
    if action is None:
        raise UNKNOWN_ACTION.violation(command.action_id)
    if action.closed_on is not None:
        raise ACTION_ALREADY_CLOSED.violation(f"closed on {action.closed_on.isoformat()}")
    return [RectificationActionClosed(command.action_id, command.done_on, command.evidence_ref)]


def _follow_up(state: ComplaintState, command: FollowUp, context: DecisionContext) -> list[Event]:
    errors = _FieldErrors()
    if command.reached and command.satisfaction is None:
        errors.add("satisfaction", "required", "a complainant reached states their satisfaction")
    if not command.reached and command.satisfaction is not None:
        errors.add("satisfaction", "not_allowed", "only when the complainant was reached")
    errors.raise_if_any()
    _check_business_date(state, command.followed_up_on, context)
    _require_decided(state)
    return [FollowedUp(command.reached, command.satisfaction, command.followed_up_on, command.note)]


def _require_decided(state: ComplaintState) -> None:
    if state.decision is None:
        raise CASE_NOT_DECIDED.violation(f"it is {state.status.value}")


# --- shared checks -------------------------------------------------------------------------


def _require_not_terminal(state: ComplaintState) -> None:
    if state.status in TERMINAL:
        raise CASE_CLOSED.violation(state.status)


def _check_not_future(day: date, context: DecisionContext) -> None:
    if day > context.today:
        raise BUSINESS_DATE_IN_FUTURE.violation(
            f"{day.isoformat()} is after today, {context.today.isoformat()}"
        )


def _check_business_date(state: ComplaintState, day: date, context: DecisionContext) -> None:
    _check_not_future(day, context)
    if day < state.last_business_date:
        raise BUSINESS_DATE_BEFORE_PREVIOUS.violation(
            f"{day.isoformat()} is before {state.last_business_date.isoformat()}"
        )


def _require_open(
    state: ComplaintState, context: DecisionContext, on: date, *other_dates: date
) -> None:
    """Not closed, business dates in order, and not closed as of the business date `on`."""
    _require_not_terminal(state)
    for day in (on, *other_dates):
        _check_business_date(state, day, context)
    if is_closed(state, on):
        raise CASE_CLOSED.violation(f"closed as of {on.isoformat()}")


def _require_before_decision(state: ComplaintState) -> None:
    if state.status not in BEFORE_DECISION:
        raise CASE_ALREADY_DECIDED.violation()


def _require_assigned_handler(state: ComplaintState, handler_id: str) -> None:
    if state.handler_id is None:
        raise CASE_NOT_ASSIGNED.violation()
    if handler_id != state.handler_id:
        raise HANDLER_NOT_ASSIGNED.violation(f"{handler_id} is not the assigned handler")


def _require_running(state: ComplaintState) -> None:
    if state.clock.paused_since is not None:
        raise CASE_PAUSED.violation(f"paused since {state.clock.paused_since.isoformat()}")


def _check_notice(notice: Notice, errors: _FieldErrors, field: str = "notice") -> None:
    """Art. 21: how and when, with proof; or that the complainant could not be reached."""
    if notice.unreachable:
        if notice.attempts < 1:
            errors.add(f"{field}.attempts", "required", "record the attempts to reach them")
        return
    if notice.method is None:
        errors.add(f"{field}.method", "required", f"{field}.method is required")
    errors.require(f"{field}.proof_ref", notice.proof_ref)
    if notice.method is NoticeMethod.AGREED:
        errors.require(f"{field}.agreed_terms", notice.agreed_terms)


def _check_remedies(remedies: tuple[Remedy, ...], errors: _FieldErrors) -> None:
    if not remedies:
        errors.add("remedies", "required", "state the remedies open to the complainant (Art. 19)")
    elif len(set(remedies)) != len(remedies):
        errors.add("remedies", "duplicate", "each remedy once")


def _check_fen(field: str, amount: int, errors: _FieldErrors, minimum: int = 0) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        errors.add(field, "not_integer", "an amount in integer fen")
    elif amount < 0:
        errors.add(field, "negative", "an amount cannot be negative")
    elif amount < minimum:
        errors.add(field, "not_positive", "an amount of at least 1 fen")


@contextmanager
def _calendar_needed() -> Iterator[None]:
    try:
        yield
    except CalendarYearMissing as missing:
        raise CALENDAR_YEAR_MISSING.violation(f"no calendar for {missing.year}") from missing


class _FieldErrors:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, code: str, message: str) -> None:
        self.errors.append(FieldError(field, code, message))

    def require(self, field: str, value: str) -> bool:
        """Record `field` as missing when blank; whether it was given."""
        if value.strip():
            return True
        self.add(field, "required", f"{field} is required")
        return False

    def refuse_a_personal_number(self, field: str, text: str) -> None:
        """For a text kept in clear for good, however the case's personal data is erased later
        (the erasure's own reason: a review pass found the complainant's mobile number there)."""
        if holds_a_personal_number(text):
            self.add(
                field,
                "personal_number",
                f"{field} holds an identity or mobile number, kept in clear for good: say why,"
                " not who",
            )

    def raise_if_any(self, error_class: type[InvalidCommand] = InvalidCommand) -> None:
        if self.errors:
            raise error_class(self.errors)


_HANDLERS: dict[type, Callable[[ComplaintState, Any, DecisionContext], list[Event]]] = {
    AssignHandler: _assign,
    RecuseHandler: _recuse,
    ExtendDeadline: _extend,
    PauseClock: _pause,
    ResumeClock: _resume,
    SupplementComplaint: _supplement,
    MergeComplaint: _merge,
    DecideComplaint: _decide,
    NotifyComplainant: _notify,
    RequestReview: _request_review,
    DecideReview: _decide_review,
    WithdrawComplaint: _withdraw,
    DeclineComplaint: _decline,
    FlagMajor: _flag_major,
    ErasePersonalData: _erase_personal_data,
    ApproveRedress: _approve_redress,
    Attribute: _attribute,
    Rectify: _rectify,
    FollowUp: _follow_up,
}
