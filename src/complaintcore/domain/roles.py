"""Roles, and what each may do or see (API.md "Conventions", Auth; DOMAIN.md; Art. 29).

The one home of these rules: tokens, the service, bulk import, the routes and the decider all ask
here. Staff and supervisors work inside one institution's subtree and act on its complaints;
regulators read everything and may designate a case major for any cause; admins keep the
reference data and read everything. Regulators and admins belong to no institution.
"""

import re
from enum import StrEnum

from complaintcore.domain.commands import MajorCause


class Role(StrEnum):
    STAFF = "staff"
    SUPERVISOR = "supervisor"
    REGULATOR = "regulator"
    ADMIN = "admin"


ROLES = frozenset(role.value for role in Role)
ROLES_WITH_INSTITUTION = frozenset({Role.STAFF, Role.SUPERVISOR})
ROLES_WITHOUT_INSTITUTION = frozenset({Role.REGULATOR, Role.ADMIN})
ROLES_SEEING_EVERYTHING = frozenset({Role.REGULATOR, Role.ADMIN})
# Who handles complaints: receives them and runs the commands on them.
CASE_HANDLERS = frozenset({Role.STAFF, Role.SUPERVISOR})
# Who may approve redress beyond a handler's limit (核决权限; Art. 24; desk rule 客訴金額核決權限).
REDRESS_APPROVERS = frozenset({Role.SUPERVISOR})
# Who reads across institutions what no single one may see: the global feed, the projections' lag.
FEED_READERS = frozenset({Role.REGULATOR, Role.ADMIN})
# Who writes reference data: the institution tree, the calendars.
ADMINISTRATORS = frozenset({Role.ADMIN})
# Who reads the personal data access log (DOMAIN.md "Personal data", Reveal).
PERSONAL_DATA_ACCESS_READERS = frozenset({Role.REGULATOR, Role.ADMIN})
# Causes staff may designate themselves; any other is the regulator's (Art. 29).
FLAGGABLE_BY_STAFF = frozenset({MajorCause.DISASTER, MajorCause.ACCIDENT, MajorCause.PUBLIC_HEALTH})


# A code as the API takes one (institution codes, staff ids, action ids): a letter or digit, then
# letters, digits, `_`, `.` and `-`. Staff and supervisors are named by such ids in commands
# (`handler_id`, `reviewer_id`, `approver_id`), so their principal ids are such codes too.
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
CODE_MAX_LENGTH = 64
_CODE = re.compile(CODE_PATTERN)


def is_code(text: str) -> bool:
    return len(text) <= CODE_MAX_LENGTH and _CODE.fullmatch(text) is not None


def has_institution(role: str) -> bool:
    return role in ROLES_WITH_INSTITUTION


def sees_everything(role: str) -> bool:
    return role in ROLES_SEEING_EVERYTHING


def handles_complaints(role: str) -> bool:
    return role in CASE_HANDLERS


def may_run_command(role: str, designates_major: bool, erases: bool = False) -> bool:
    """Whether the role may run a command on a case at all (the decider judges the rest): case
    handlers run every command but the erasure; a regulator only designates a case major; an
    admin only erases a case's personal data once its retention ended (API.md)."""
    if erases:
        return role == Role.ADMIN
    return handles_complaints(role) or (designates_major and role == Role.REGULATOR)


def may_approve_redress(role: str) -> bool:
    """Whether the role may record a redress approval at all; the decider also asks that the
    approver stands at or above the case's institution and that their own limit covers it.
    Attribution, rectification and follow-up are run by every case handler."""
    return role in REDRESS_APPROVERS


def may_designate_major(role: str, cause: MajorCause) -> bool:
    if role == Role.REGULATOR:
        return True
    return handles_complaints(role) and cause in FLAGGABLE_BY_STAFF


def may_reveal(role: str, actor_id: str, handler_id: str | None) -> bool:
    """Whether the role may see a case's personal data in plaintext (DOMAIN.md "Personal data",
    Reveal), given the case's assigned handler. Only for a case the actor may see at all: that
    check (supervisors: the case is in their subtree) comes first, as for every case read.
    Regulators and supervisors may; staff only as the case's assigned handler; admins never (they
    read the access log instead)."""
    if role in (Role.REGULATOR, Role.SUPERVISOR):
        return True
    return role == Role.STAFF and handler_id is not None and handler_id == actor_id
