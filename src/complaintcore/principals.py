"""Who is calling: a principal is what a bearer token stands for (API.md "Conventions", Auth)."""

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    STAFF = "staff"
    SUPERVISOR = "supervisor"
    REGULATOR = "regulator"
    ADMIN = "admin"


ROLES = frozenset(role.value for role in Role)

# Staff and supervisors work inside one institution's subtree; regulators read everything and
# belong to none; an admin may be tied to an institution or not, and sees everything either way.
ROLES_WITH_INSTITUTION = frozenset({Role.STAFF.value, Role.SUPERVISOR.value})
ROLES_WITHOUT_INSTITUTION = frozenset({Role.REGULATOR.value})
ROLES_SEEING_EVERYTHING = frozenset({Role.REGULATOR.value, Role.ADMIN.value})


@dataclass(frozen=True)
class Principal:
    id: str
    role: str
    institution: str | None
