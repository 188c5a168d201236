"""Bearer tokens: created once, shown once, stored only as their SHA-256.

A token is `cc_` followed by 32 random bytes in URL-safe base64 (`secrets.token_urlsafe(32)`), so
it carries 256 bits of entropy: an unsalted SHA-256 is enough to make a leaked `api_tokens` table
useless, and it lets a request find its token with one primary-key lookup.
"""

import hashlib
import secrets

import asyncpg

from complaintcore.principals import (
    ROLES,
    ROLES_WITH_INSTITUTION,
    ROLES_WITHOUT_INSTITUTION,
    Principal,
)

TOKEN_PREFIX = "cc_"
_TOKEN_BYTES = 32
# A real token is 46 characters; anything much longer is not worth hashing.
_MAX_TOKEN_LENGTH = 200
MAX_PRINCIPAL_ID_LENGTH = 128


class InvalidTokenRequest(ValueError):
    """A token that cannot be created as asked; `code` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    pool: asyncpg.Pool, principal_id: str, role: str, institution: str | None
) -> str:
    """Store a new token for the principal and return it; it cannot be shown again."""
    _check_principal_id(principal_id)
    _check_role_and_institution(role, institution)
    if institution is not None:
        exists = await pool.fetchval("SELECT 1 FROM institutions WHERE code = $1", institution)
        if not exists:
            raise InvalidTokenRequest("unknown_institution", f"no institution {institution}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    await pool.execute(
        "INSERT INTO api_tokens (token_hash, principal_id, role, institution)"
        " VALUES ($1, $2, $3, $4)",
        hash_token(token),
        principal_id,
        role,
        institution,
    )
    return token


async def principal_for_token(pool: asyncpg.Pool, token: str) -> Principal | None:
    """The principal of a token that exists and is not revoked; None otherwise."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    row = await pool.fetchrow(
        "SELECT principal_id, role, institution FROM api_tokens"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal(id=row["principal_id"], role=row["role"], institution=row["institution"])


async def revoke_token(pool: asyncpg.Pool, token: str) -> bool:
    """Revoke a token; False when it is unknown or already revoked."""
    status = await pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    return status == "UPDATE 1"


def _check_principal_id(principal_id: str) -> None:
    if (
        not principal_id
        or len(principal_id) > MAX_PRINCIPAL_ID_LENGTH
        or not principal_id.isprintable()
        or any(character.isspace() for character in principal_id)
    ):
        raise InvalidTokenRequest(
            "invalid_principal_id",
            f"the principal id must be 1 to {MAX_PRINCIPAL_ID_LENGTH} printable characters"
            " without spaces",
        )


def _check_role_and_institution(role: str, institution: str | None) -> None:
    if role not in ROLES:
        raise InvalidTokenRequest(
            "unknown_role", f"role {role!r} is not one of {', '.join(sorted(ROLES))}"
        )
    if role in ROLES_WITH_INSTITUTION and institution is None:
        raise InvalidTokenRequest("institution_required", f"a {role} belongs to an institution")
    if role in ROLES_WITHOUT_INSTITUTION and institution is not None:
        raise InvalidTokenRequest("institution_not_allowed", f"a {role} has no institution")
