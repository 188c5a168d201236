"""Who is calling: a principal is what a bearer token stands for (API.md "Conventions", Auth)."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import asyncpg


class Role(StrEnum):
    STAFF = "staff"
    SUPERVISOR = "supervisor"
    REGULATOR = "regulator"
    ADMIN = "admin"


ROLES = frozenset(role.value for role in Role)

# Staff and supervisors work inside one institution's subtree; regulators and admins act across
# all institutions and belong to none (an admin tied to one would read as scoped, and is not).
ROLES_WITH_INSTITUTION = frozenset({Role.STAFF.value, Role.SUPERVISOR.value})
ROLES_WITHOUT_INSTITUTION = frozenset({Role.REGULATOR.value, Role.ADMIN.value})
ROLES_SEEING_EVERYTHING = frozenset({Role.REGULATOR.value, Role.ADMIN.value})


@dataclass(frozen=True)
class Principal:
    id: str
    role: str
    institution: str | None


class _Visible(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def institution(self) -> str | None: ...


class _Tree(Protocol):
    async def is_within(
        self, ancestor: str, code: str, *, connection: asyncpg.Connection | None = None
    ) -> bool: ...


async def may_see(
    principal: _Visible,
    institution_code: str,
    tree: _Tree,
    *,
    connection: asyncpg.Connection | None = None,
) -> bool:
    """Whether the principal may see what belongs to `institution_code`.

    Regulators and admins see everything; staff and supervisors see their institution's subtree.
    Callers answer 404 (not 403) for what the principal cannot see, so existence does not leak.
    """
    if principal.role in ROLES_SEEING_EVERYTHING:
        return True
    if principal.institution is None:
        return False
    return await tree.is_within(principal.institution, institution_code, connection=connection)
