"""Bearer tokens: created once, shown once, stored only as their SHA-256.

A token is `cc_` followed by 32 random bytes in URL-safe base64 (`secrets.token_urlsafe(32)`), so
it carries 256 bits of entropy: an unsalted SHA-256 is enough to make a leaked `api_tokens` table
useless, and it lets a request find its token with one primary-key lookup.
"""

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from complaintcore.auth.principals import (
    ROLES,
    ROLES_WITH_INSTITUTION,
    ROLES_WITHOUT_INSTITUTION,
    Principal,
)
from complaintcore.domain.roles import CODE_MAX_LENGTH, has_institution, is_code
from complaintcore.infra import advisory_locks
from complaintcore.infra.aged_cache import AgedCache

TOKEN_PREFIX = "cc_"
SEEN_TOKEN_MAX_AGE_S = 10.0
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
    if has_institution(role) and not is_code(principal_id):
        raise InvalidTokenRequest(
            "invalid_principal_id",
            f"a {role}'s id is named in commands as a staff id: 1 to {CODE_MAX_LENGTH} letters,"
            " digits, '_', '.' and '-', starting with a letter or digit",
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    async with pool.acquire() as connection, connection.transaction():
        if institution is not None:
            exists = await connection.fetchval(
                "SELECT 1 FROM institutions WHERE code = $1", institution
            )
            if not exists:
                raise InvalidTokenRequest("unknown_institution", f"no institution {institution}")
        await _claim_principal_id(connection, principal_id, institution)
        await connection.execute(
            "INSERT INTO api_tokens (token_hash, principal_id, role, institution)"
            " VALUES ($1, $2, $3, $4)",
            hash_token(token),
            principal_id,
            role,
            institution,
        )
    return token


async def _claim_principal_id(
    connection: asyncpg.Connection, principal_id: str, institution: str | None
) -> None:
    """Refuse an id that any token, revoked or not, gives to another institution (or to none,
    for a regulator or admin): events and stored responses name the principal by its id, so one
    id must be one caller. Creations of tokens for the same id queue on a lock."""
    await connection.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        advisory_locks.PRINCIPAL_IDS,
        principal_id,
    )
    elsewhere = await connection.fetchval(
        "SELECT coalesce(institution, '(none)') FROM api_tokens"
        " WHERE principal_id = $1 AND institution IS DISTINCT FROM $2 LIMIT 1",
        principal_id,
        institution,
    )
    if elsewhere is not None:
        raise InvalidTokenRequest(
            "principal_id_taken",
            f"the principal id {principal_id!r} belongs to institution {elsewhere};"
            " a principal id is unique across institutions",
        )


def looks_like_a_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and len(token) <= _MAX_TOKEN_LENGTH


async def principal_for_token(
    pool: asyncpg.Pool, token: str, seen: "SeenTokens | None" = None
) -> Principal | None:
    """The principal of a token that exists and is not revoked; None otherwise. A token found
    is remembered in `seen`, when given."""
    if not looks_like_a_token(token):
        return None
    token_hash = hash_token(token)
    row = await pool.fetchrow(
        "SELECT principal_id, role, institution FROM api_tokens"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        token_hash,
    )
    if row is None:
        if seen is not None:  # revoked since it was seen: the gate must not let it by either
            seen.forget(token_hash)
        return None
    principal = Principal(id=row["principal_id"], role=row["role"], institution=row["institution"])
    if seen is not None:
        seen.remember(token_hash, principal)
    return principal


@dataclass(frozen=True)
class TokenCheck:
    """A principal taken from `SeenTokens`, to be confirmed by the database where its action
    runs: `sql(parameter)` is a scalar subquery giving what the token stands for now (NULL once
    revoked), with the token's hash as `parameter`; `confirms` compares its value."""

    token_hash: str
    principal: Principal

    @property
    def argument(self) -> str:
        return self.token_hash

    @staticmethod
    def sql(parameter: str) -> str:
        return (
            "SELECT ARRAY[principal_id, role, institution] FROM api_tokens"
            f" WHERE token_hash = {parameter} AND revoked_at IS NULL"
        )

    def confirms(self, current: list[str | None] | None) -> bool:
        principal = self.principal
        return current == [principal.id, principal.role, principal.institution]


class SeenTokens:
    """The principals of tokens this process found valid lately, by token hash.

    Never proof on its own: a token can be revoked at any moment. A caller acting on a principal
    from here confirms it with `TokenCheck` in the same transaction as the action, and forgets
    the token when that fails. What only lets a request's body be read (the request gate) takes
    it as it is, so a token is taken from here for `max_age_s` after it was last found valid in
    the database: a token revoked by another process is asked about again within that.
    """

    def __init__(
        self,
        capacity: int = 10_000,
        max_age_s: float = SEEN_TOKEN_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._principals: AgedCache[str, Principal] = AgedCache(capacity, max_age_s, clock)

    def check_for(self, token: str) -> TokenCheck | None:
        """What to confirm for a token seen valid lately; None for one never seen, forgotten or
        not found valid for `max_age_s`."""
        if not looks_like_a_token(token):
            return None
        token_hash = hash_token(token)
        principal = self._principals.get(token_hash)
        return None if principal is None else TokenCheck(token_hash, principal)

    def remember(self, token_hash: str, principal: Principal) -> None:
        self._principals.put(token_hash, principal)

    def forget(self, token_hash: str) -> None:
        self._principals.forget(token_hash)


async def revoke_token(pool: asyncpg.Pool, token: str) -> bool:
    """Revoke a token; False when it is unknown or already revoked."""
    status = await pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    return status == "UPDATE 1"


FINGERPRINT_LENGTH = 12  # hex digits of the token's hash: names it, tells nothing of the token


@dataclass(frozen=True)
class TokenRecord:
    """A stored token as an operator sees it: never the token, only its hash's first digits."""

    fingerprint: str
    principal_id: str
    role: str
    institution: str | None
    created_at: datetime
    revoked_at: datetime | None


async def list_tokens(pool: asyncpg.Pool, include_revoked: bool = False) -> list[TokenRecord]:
    """The tokens, oldest first (the revoked ones too when asked)."""
    rows = await pool.fetch(
        f"SELECT left(token_hash, {FINGERPRINT_LENGTH}) AS fingerprint, principal_id, role,"
        " institution, created_at, revoked_at FROM api_tokens"
        " WHERE $1 OR revoked_at IS NULL ORDER BY created_at, token_hash",
        include_revoked,
    )
    return [TokenRecord(**dict(row)) for row in rows]


async def revoke_by_fingerprint(pool: asyncpg.Pool, fingerprint: str) -> TokenRecord:
    """Revoke the one token whose hash starts with `fingerprint` (as `list_tokens` shows it);
    `InvalidTokenRequest` when none or several match, or it is revoked already."""
    if not (6 <= len(fingerprint) <= 64) or any(c not in "0123456789abcdef" for c in fingerprint):
        raise InvalidTokenRequest(
            "invalid_fingerprint", "a fingerprint is 6 to 64 lower-case hex digits"
        )
    async with pool.acquire() as connection, connection.transaction():
        rows = await connection.fetch(
            "SELECT token_hash FROM api_tokens WHERE starts_with(token_hash, $1) FOR UPDATE",
            fingerprint,
        )
        if len(rows) != 1:
            found = "no token" if not rows else f"{len(rows)} tokens"
            raise InvalidTokenRequest("unknown_fingerprint", f"{found} match {fingerprint}")
        row = await connection.fetchrow(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = $1"
            " AND revoked_at IS NULL RETURNING"
            f" left(token_hash, {FINGERPRINT_LENGTH}) AS fingerprint, principal_id, role,"
            " institution, created_at, revoked_at",
            rows[0]["token_hash"],
        )
    if row is None:
        raise InvalidTokenRequest("already_revoked", f"the token {fingerprint} is revoked already")
    return TokenRecord(**dict(row))


async def revoke_principal(pool: asyncpg.Pool, principal_id: str) -> int:
    """Revoke every active token of `principal_id`; how many were."""
    status = await pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE principal_id = $1 AND revoked_at IS NULL",
        principal_id,
    )
    return int(status.split()[-1])


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
