"""Who may call what (API.md "Conventions", Auth).

Every `/v1` route depends on `authenticate` (usually through `CurrentPrincipal` or `require_role`).
A missing or bad token is 401, a role that may not act is 403, and a resource outside a staff
member's or supervisor's institution subtree is answered as if it did not exist (404, see
`can_see`), so a bank's branch cannot probe another branch's cases.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from complaintcore.api.problems import Problem
from complaintcore.auth.principals import ROLES, Principal, may_see
from complaintcore.auth.tokens import principal_for_token
from complaintcore.domain.roles import ADMINISTRATORS, FEED_READERS
from complaintcore.reference.institutions import InstitutionDirectory

__all__ = [
    "AdminPrincipal",
    "CurrentPrincipal",
    "FeedReader",
    "Principal",
    "authenticate",
    "bearer_token_of",
    "can_see",
    "forbidden",
    "missing_token",
    "require_role",
    "unauthorized",
    "unknown_token",
]

bearer_token = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token printed by `complaintcore tokens create`, sent as "
    "`Authorization: Bearer <token>`.",
)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def unknown_token() -> Problem:
    return unauthorized("The bearer token is unknown or revoked.")


def forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


def missing_token() -> Problem:
    return unauthorized("Send a bearer token: `Authorization: Bearer <token>`.")


def bearer_token_of(authorization: str | None) -> str:
    """The token of `Authorization: Bearer <token>`, parsed as `HTTPBearer` does (its
    `get_authorization_scheme_param`); "" for anything else. For the middlewares that look at a
    request before its route does."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    return credentials if scheme.lower() == "bearer" and credentials else ""


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_token)],
) -> Principal:
    """The principal of the request's bearer token; 401 when there is none or it is bad."""
    if credentials is None:
        raise missing_token()
    principal = await principal_for_token(
        request.app.state.pool, credentials.credentials, request.app.state.seen_tokens
    )
    if principal is None:
        raise unknown_token()
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the current principal when its role is one of `roles`, else 403."""
    unknown = set(roles) - ROLES
    if not roles or unknown:
        raise ValueError(f"require_role needs known roles, got {roles!r}")
    allowed = frozenset(roles)

    async def principal_with_role(principal: CurrentPrincipal) -> Principal:
        return check_role(principal, allowed)

    return principal_with_role


def check_role(principal: Principal, allowed: frozenset[str]) -> Principal:
    """`principal` when its role is among `allowed`, else 403: for a route that first finds
    whether the caller sees the resource (404 outside their subtree, API.md), then the role."""
    if principal.role not in allowed:
        raise forbidden(f"This needs the role {' or '.join(sorted(allowed))}.")
    return principal


AdminPrincipal = Annotated[Principal, Depends(require_role(*ADMINISTRATORS))]
FeedReader = Annotated[Principal, Depends(require_role(*FEED_READERS))]


async def can_see(
    principal: Principal, institution_code: str, directory: InstitutionDirectory
) -> bool:
    """`principals.may_see`, for routes: a 404 for what the principal cannot see."""
    return await may_see(principal, institution_code, directory)
