"""Refusals as named rules with stable codes.

A refused command raises `RuleViolation` (a business rule of the current state said no: HTTP 409)
or `InvalidCommand` (the command itself is malformed: HTTP 422, every bad field listed).
`InvalidComplaint` is the receipt's flavour of `InvalidCommand`. Codes are part of the HTTP
contract: never rename one; add a new rule instead.

Articles cite CBIRC Order 2020 No. 3 ("Art. N"). Rules from the HTTP contract's conventions on
business dates cite Art. 28, the duty to keep a truthful register (登记制度) of every complaint.
Rules of the complaint desk's internal control cite the article and the desk rule DOMAIN.md
names ("desk rule 客訴金額核決權限", redress authority; "desk rule 責任歸屬", responsibility and
rectification). Rules on erasing personal data cite Art. 28 (records kept as long as the law
requires) and the Personal Information Protection Law ("PIPL Art. N": Art. 19 retention,
Art. 47 erasure).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """A business rule that can refuse a command."""

    code: str
    article: str
    message: str

    def violation(self, detail: str = "") -> RuleViolation:
        return RuleViolation(self, detail)


class RuleViolation(Exception):
    """A command refused by `rule`; nothing is stored."""

    def __init__(self, rule: Rule, detail: str = "") -> None:
        self.rule = rule
        self.code = rule.code
        self.article = rule.article
        self.message = f"{rule.message} ({detail})" if detail else rule.message
        super().__init__(f"{self.code}: {self.message} [{self.article}]")


@dataclass(frozen=True)
class FieldError:
    """One bad field of a command, `field` a dotted path such as `complainant.id_number`."""

    field: str
    code: str
    message: str


class InvalidCommand(Exception):
    """A command whose fields are missing or malformed; `errors` lists every bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        summary = "; ".join(f"{error.field}: {error.code}" for error in self.errors)
        super().__init__(f"invalid command: {summary}")


class InvalidComplaint(InvalidCommand):
    """A complaint that cannot be received as given (Art. 12–14, 33)."""


# --- existence and closure -------------------------------------------------------------------

CASE_NOT_FOUND = Rule("case_not_found", "Art. 28", "No complaint is registered under this id.")
CASE_ALREADY_EXISTS = Rule(
    "case_already_exists", "Art. 28", "A complaint is already registered under this id."
)
CASE_CLOSED = Rule(
    "case_closed",
    "Art. 15, 18, 20",
    "The case is closed (withdrawn, declined, merged, reviewed, or decided with the review "
    "window passed); no further command applies.",
)

# --- business dates --------------------------------------------------------------------------

BUSINESS_DATE_IN_FUTURE = Rule(
    "business_date_in_future", "Art. 28", "A business date cannot be later than today."
)
BUSINESS_DATE_BEFORE_PREVIOUS = Rule(
    "business_date_before_previous",
    "Art. 28",
    "A business date cannot be earlier than the case's previous business date.",
)
CALENDAR_YEAR_MISSING = Rule(
    "calendar_year_missing",
    "Art. 33, 43",
    "No working-day calendar is loaded for a year this date arithmetic needs; load it first.",
)

# --- assignment and recusal (Art. 17) --------------------------------------------------------

CASE_NOT_ASSIGNED = Rule(
    "case_not_assigned", "Art. 17", "The case has no handler (处理人员) assigned."
)
HANDLER_HAS_CONFLICT = Rule(
    "handler_has_conflict",
    "Art. 17",
    "The handler has a direct interest (named respondent staff, or recused from this case) "
    "and can never handle it (回避).",
)
HANDLER_NOT_ASSIGNED = Rule(
    "handler_not_assigned", "Art. 17", "Only the assigned handler can do this."
)
HANDLER_ALREADY_ASSIGNED = Rule(
    "handler_already_assigned", "Art. 17", "This handler is already assigned to the case."
)
REVIEWER_HAS_CONFLICT = Rule(
    "reviewer_has_conflict",
    "Art. 17, 20",
    "The reviewer decided the case, is named respondent staff or recused from it (回避).",
)

# --- deadlines (Art. 18, 23) -----------------------------------------------------------------

EXTENSION_REQUIRES_APPROVAL = Rule(
    "extension_requires_approval",
    "Art. 18",
    "A second extension needs the approval of the superior institution or a head-office senior "
    "manager (上级机构或者总行、总公司高级管理人员审批), given by neither the handler nor anyone "
    "with a direct interest in the case (Art. 17).",
)
EXTENSION_LIMIT_REACHED = Rule(
    "extension_limit_reached", "Art. 18", "The period was already extended twice (to 60 days)."
)
CASE_OVERDUE = Rule(
    "case_overdue",
    "Art. 18",
    "The handling period has already run out; this must happen on or before the due date.",
)
CASE_PAUSED = Rule(
    "case_paused",
    "Art. 18, 23",
    "The clock is paused (鉴定、检测、评估 or mediation); resume it first.",
)
CASE_NOT_PAUSED = Rule("case_not_paused", "Art. 18, 23", "The clock is not paused.")
PAUSE_ALREADY_OPEN = Rule(
    "pause_already_open", "Art. 18, 23", "A pause is already open; only one at a time."
)

# --- decision, review, exits -----------------------------------------------------------------

CASE_ALREADY_DECIDED = Rule(
    "case_already_decided", "Art. 18", "The case has already been decided (处理决定)."
)
CASE_NOT_DECIDED = Rule(
    "case_not_decided",
    "Art. 20, 26",
    "The case has not been decided yet (处理决定); review, attribution and follow-up come after "
    "the decision.",
)
REVIEW_NOT_AVAILABLE = Rule(
    "review_not_available",
    "Art. 20",
    "Review (核查) is only open against a decision of a branch, i.e. a node with a superior.",
)
REVIEW_REMEDY_REQUIRED = Rule(
    "review_remedy_required",
    "Art. 19, 20",
    "The decision of a node with a superior must tell the complainant of the review remedy.",
)
APPEAL_WINDOW_CLOSED = Rule(
    "appeal_window_closed",
    "Art. 20",
    "The review request was received more than 30 days after the decision notice.",
)
REVIEW_ALREADY_REQUESTED = Rule(
    "review_already_requested", "Art. 20", "A review has already been requested."
)
REVIEW_NOT_REQUESTED = Rule(
    "review_not_requested", "Art. 20", "No review has been requested on this case."
)
REVIEW_CHANGES_NOTHING = Rule(
    "review_changes_nothing",
    "Art. 20",
    "A review decision that changes the outcome states another outcome or another redress.",
)
REVIEW_DECIDED_BELOW_SUPERIOR = Rule(
    "review_decided_below_superior",
    "Art. 20",
    "A review is decided by the superior institution it went to, or by one above that.",
)
CANNOT_MERGE_INTO_ITSELF = Rule(
    "cannot_merge_into_itself", "Art. 18", "A case cannot be merged into itself."
)
MERGE_TARGET_NOT_OPEN = Rule(
    "merge_target_not_open",
    "Art. 18",
    "A duplicate can only be merged into a case that is still being handled (not decided,"
    " merged, withdrawn or declined).",
)

# --- major complaints (Art. 29) --------------------------------------------------------------

NOT_AUTHORIZED_TO_DESIGNATE = Rule(
    "not_authorized_to_designate",
    "Art. 29",
    "Only a regulator designates a complaint major on its own authority; staff and supervisors "
    "flag disaster, accident or public-health causes.",
)
ALREADY_MAJOR = Rule("already_major", "Art. 29", "The case is already a major complaint.")

# --- internal control (Art. 24, 26; desk rules 客訴金額核決權限, 責任歸屬) -----------------------

REDRESS_EXCEEDS_AUTHORITY = Rule(
    "redress_exceeds_authority",
    "Art. 24; desk rule 客訴金額核決權限",
    "The redress exceeds the caller's redress limit (核决权限) and no unused approval recorded on "
    "the case covers it; a supervisor whose limit covers it must approve it first.",
)
APPROVER_LACKS_AUTHORITY = Rule(
    "approver_lacks_authority",
    "Art. 24; desk rule 客訴金額核決權限",
    "Only a supervisor at the case's institution or above, whose own redress limit covers the "
    "amount and who has no direct interest in the case (Art. 17), may approve redress.",
)
UNKNOWN_INSTITUTION = Rule(
    "unknown_institution",
    "Art. 26; desk rule 責任歸屬",
    "The responsible unit must be an institution of the case's institution tree.",
)
UNKNOWN_ACTION = Rule(
    "unknown_action",
    "Art. 26; desk rule 責任歸屬",
    "No rectification action with this id in the case's current attribution.",
)
ACTION_ALREADY_CLOSED = Rule(
    "action_already_closed",
    "Art. 26; desk rule 責任歸屬",
    "This rectification action is already closed.",
)

# --- personal data (PIPL Art. 19, 47; Art. 28) -----------------------------------------------

CASE_OPEN = Rule(
    "case_open",
    "Art. 28; PIPL Art. 47",
    "The case is not closed; its personal data is kept while it is handled.",
)
RETENTION_NOT_EXPIRED = Rule(
    "retention_not_expired",
    "Art. 28; PIPL Art. 19, 47",
    "The retention period of the case's personal data has not ended yet.",
)
PERSONAL_DATA_ERASED = Rule(
    "personal_data_erased",
    "Art. 22; PIPL Art. 47",
    "The case's personal data was erased; the case takes no further command.",
)

ALL_RULES: tuple[Rule, ...] = tuple(
    value for value in list(globals().values()) if isinstance(value, Rule)
)
