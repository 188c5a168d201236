"""Who is calling: a principal is what a bearer token stands for (API.md "Conventions", Auth)."""

from dataclasses import dataclass
from typing import Protocol

import asyncpg

from complaintcore.domain.roles import (
    ROLES,
    ROLES_WITH_INSTITUTION,
    ROLES_WITHOUT_INSTITUTION,
    Role,
    sees_everything,
)

__all__ = [
    "ROLES",
    "ROLES_WITHOUT_INSTITUTION",
    "ROLES_WITH_INSTITUTION",
    "Principal",
    "Role",
    "may_see",
]


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
    if sees_everything(principal.role):
        return True
    if principal.institution is None:
        return False
    return await tree.is_within(principal.institution, institution_code, connection=connection)
