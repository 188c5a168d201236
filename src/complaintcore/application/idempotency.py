"""Replaying the first response of a command sent again with the same `Idempotency-Key`.

Keys are scoped to the caller: its principal id and its institution, so the same id at two
institutions never shares a stored response. A stored response is replayed only after the caller
passes the visibility rule a fresh request would meet (see `ComplaintService`). The stored response
is written in the command's own transaction, so it exists exactly when the command's events do.
"""

import hashlib
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True)
class IdempotentRequest:
    principal_id: str
    institution: str | None
    key: str
    request_hash: str

    @classmethod
    def of(
        cls,
        principal_id: str,
        institution: str | None,
        key: str,
        method: str,
        path: str,
        body: Any,
    ) -> "IdempotentRequest":
        fingerprint = orjson.dumps([method, path, body], option=orjson.OPT_SORT_KEYS)
        return cls(principal_id, institution, key, hashlib.sha256(fingerprint).hexdigest())

    @property
    def scope(self) -> str:
        """The institution column's value: '' for a principal of no institution."""
        return self.institution or ""


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    body: Any
    headers: dict[str, str]


async def find_response(
    connection: asyncpg.Connection | asyncpg.Pool, request: IdempotentRequest
) -> StoredResponse | None:
    row = await connection.fetchrow(
        "SELECT request_hash, status_code, response_body, response_headers"
        " FROM idempotent_requests"
        " WHERE principal_id = $1 AND institution = $2 AND idempotency_key = $3",
        request.principal_id,
        request.scope,
        request.key,
    )
    if row is None:
        return None
    return StoredResponse(
        row["request_hash"], row["status_code"], row["response_body"], row["response_headers"]
    )


async def save_response(
    connection: asyncpg.Connection,
    request: IdempotentRequest,
    status_code: int,
    body: Any,
    headers: dict[str, str],
) -> None:
    await connection.execute(
        "INSERT INTO idempotent_requests (principal_id, institution, idempotency_key,"
        " request_hash, status_code, response_body, response_headers)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        request.principal_id,
        request.scope,
        request.key,
        request.request_hash,
        status_code,
        body,
        headers,
    )
