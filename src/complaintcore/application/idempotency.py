"""Replaying the first response of a command sent again with the same `Idempotency-Key`.

Keys are scoped to the caller: its principal id and its institution, so the same id at two
institutions never shares a stored response. A stored response is replayed only after the caller
passes the visibility rule a fresh request would meet (see `ComplaintService`). The stored response
is written in the command's own transaction, so it exists exactly when the command's events do.

A stored response is the case document of the time, its complainant masked: when the case's
personal data is erased, `erase_stored_responses` blanks those fields in every response stored
for it, in the erasure's transaction, so that none is kept or replayed (DOMAIN.md: erased
"everywhere", replay included).

**The request's fingerprint** (`request_hash`) is an HMAC of the method, the path and the body
under a key of the service's own (`service_keys`, purpose `request-fingerprint`, wrapped by the
master key like the blind index's): a receipt's body holds the complainant's name, identity
number and phone, and a reader of the database must not be able to confirm a guess of it.
Requests stored before 2026-12-07 hold an unkeyed SHA-256 of the same bytes, still recognised
(`IdempotentRequest.legacy_hash`); no new one is written so.

The erasure forgets the fingerprint too (a guess of the whole body could be confirmed against
a SHA-256 one, and the key may be read one day with the database): a
request sent again with the key is then refused (422) whatever its body, since whether it is
the first one can no longer be told. Replaying the stored answer instead would acknowledge a
new request that reuses an old key (a client's key counter wrapping round) with an old case's
answer, and store nothing.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from complaintcore.crypto.keyed_hash import KeyedHash
from complaintcore.crypto.keys import KeyProvider
from complaintcore.crypto.suites import suite_named
from complaintcore.events.service_keys import REQUEST_FINGERPRINT, service_key
from complaintcore.projections.case_view import ERASED_COMPLAINANT


async def load_fingerprint_key(
    connection: asyncpg.Connection, provider: KeyProvider, suite_name: str
) -> KeyedHash:
    """The key of the request fingerprints, unwrapped by `provider` (made for `suite_name` by the
    first process that needs it): once per process, on a connection outside any transaction."""
    recorded_suite, secret = await service_key(
        connection, provider, REQUEST_FINGERPRINT, suite_name
    )
    return KeyedHash(secret, suite_named(recorded_suite))


@dataclass(frozen=True)
class IdempotentRequest:
    principal_id: str
    institution: str | None
    key: str
    request_hash: str
    legacy_hash: str | None = None  # the unkeyed SHA-256 of requests stored before 2026-12-07

    @classmethod
    def of(
        cls,
        fingerprint_key: KeyedHash,
        principal_id: str,
        institution: str | None,
        key: str,
        method: str,
        path: str,
        body: Any,
    ) -> "IdempotentRequest":
        fingerprint = orjson.dumps([method, path, body], option=orjson.OPT_SORT_KEYS)
        return cls(
            principal_id,
            institution,
            key,
            fingerprint_key.mac(fingerprint).hex(),
            hashlib.sha256(fingerprint).hexdigest(),
        )

    @property
    def scope(self) -> str:
        """The institution column's value: '' for a principal of no institution."""
        return self.institution or ""


# The fingerprint of a request whose case's personal data was erased: not a hex digest.
ERASED_REQUEST_HASH = "erased".ljust(64, "-")


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: Any
    headers: dict[str, str]

    def answers(self, request: IdempotentRequest) -> bool:
        """The same request was sent (never once its case's personal data is erased)."""
        return self.request_hash in (request.request_hash, request.legacy_hash)

    @property
    def forgotten(self) -> bool:
        """Its case's personal data was erased, and the request's fingerprint with it."""
        return self.request_hash == ERASED_REQUEST_HASH


def stored_response_sql(first_parameter: int = 1) -> str:
    """A scalar subquery: the stored response (a jsonb object, `stored_response_of`) of the
    request whose principal, scope and key are parameters `$first_parameter` to the third."""
    p = [f"${first_parameter + i}" for i in range(3)]
    return (
        "(SELECT jsonb_build_object('request_hash', request_hash, 'status_code', status_code,"
        " 'body', response_body, 'headers', response_headers) FROM idempotent_requests"
        f" WHERE principal_id = {p[0]} AND institution = {p[1]} AND idempotency_key = {p[2]})"
    )


def lookup_values(request: IdempotentRequest) -> tuple[str, str, str]:
    """`stored_response_sql`'s parameters."""
    return request.principal_id, request.scope, request.key


def stored_response_of(found: dict[str, Any] | None) -> StoredResponse | None:
    if found is None:
        return None
    return StoredResponse(
        found["request_hash"], found["status_code"], found["body"], found["headers"]
    )


_FIND = f"SELECT {stored_response_sql()}"


async def find_response(
    connection: asyncpg.Connection | asyncpg.Pool, request: IdempotentRequest
) -> StoredResponse | None:
    return stored_response_of(await connection.fetchval(_FIND, *lookup_values(request)))


def save_sql(first_parameter: int, condition: str, headers_added: str) -> str:
    """Store a response whose values (`saved_values`) are the parameters from `$first_parameter`
    on, when `condition` (a WHERE clause) holds, its headers joined with the jsonb object
    `headers_added`: a part of a command's write statement (`case_command_store`), the one
    place a response is stored."""
    p = [f"${first_parameter + i}" for i in range(7)]
    headers = f"{p[6]}::jsonb || {headers_added}"
    return (
        "INSERT INTO idempotent_requests (principal_id, institution, idempotency_key,"
        " request_hash, status_code, response_body, response_headers)"
        f" SELECT {', '.join(p[:6])}, {headers} {condition}"
    )


def saved_values(
    request: IdempotentRequest, status_code: int, body: Any, headers: dict[str, str]
) -> tuple[Any, ...]:
    return (
        request.principal_id,
        request.scope,
        request.key,
        request.request_hash,
        status_code,
        body,
        headers,
    )


# Each response stored for the cases (the index of migration 0021): its request's fingerprint
# replaced, its complainant's personal fields set to null and the case marked erased, as the
# case document reads after erasure.
_ERASE_RESPONSES = """
UPDATE idempotent_requests
SET request_hash = $3,
    response_body = CASE
        WHEN jsonb_typeof(response_body->'complainant') = 'object'
        THEN response_body || jsonb_build_object(
            'personal_data', 'erased',
            'complainant', response_body->'complainant' || $2::jsonb)
        ELSE response_body
    END
WHERE response_body->>'id' = ANY($1::text[])
"""


async def erase_stored_responses(connection: asyncpg.Connection, case_ids: list[str]) -> None:
    """Forget the fingerprint of every request whose response is stored for these cases and
    blank the complainant's personal fields in the response: in the transaction that erases
    their personal data."""
    await connection.execute(_ERASE_RESPONSES, case_ids, ERASED_COMPLAINANT, ERASED_REQUEST_HASH)
