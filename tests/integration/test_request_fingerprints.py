"""A request stored for its `Idempotency-Key` is fingerprinted under a key of the service's own
(`application.idempotency`): its body held the complainant's name, identity number and phone,
and a reader of the database must not be able to confirm a guess of it. A request stored before
(an unkeyed SHA-256) is still recognised when it is sent again."""

import asyncpg
from fastapi.encoders import jsonable_encoder

from api_support import asgi_client, complaint, started_app
from complaintcore.application.idempotency import IdempotentRequest
from complaintcore.application.requests.complaints import ReceiveBody
from complaintcore.crypto.keyed_hash import KeyedHash
from projection_support import tree_and_tokens

KEY = "receipt-1"


def _fingerprints(key: KeyedHash, body: dict) -> IdempotentRequest:
    """What the service makes of the request (the body as the route's model reads it)."""
    encoded = jsonable_encoder(ReceiveBody.model_validate(body))
    return IdempotentRequest.of(key, "staff-a1", "BR-A", KEY, "POST", "/v1/complaints", encoded)


async def _stored_hash(database_url: str) -> str:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(
            "SELECT request_hash FROM idempotent_requests WHERE idempotency_key = $1", KEY
        )
    finally:
        await connection.close()


async def _unkeyed(database_url: str, legacy_hash: str) -> None:
    """The row as a service of before 2026-12-07 stored it."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE idempotent_requests SET request_hash = $1 WHERE idempotency_key = $2",
            legacy_hash,
            KEY,
        )
    finally:
        await connection.close()


async def test_the_fingerprint_is_keyed_and_one_stored_unkeyed_before_is_still_recognised(
    database_url: str,
) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    headers = {"Authorization": f"Bearer {tokens['staff']}", "Idempotency-Key": KEY}
    body = complaint("BR-A")
    async with started_app(database_url) as app, asgi_client(app) as client:
        first = await client.post("/v1/complaints", json=body, headers=headers)
        assert first.status_code == 201, first.text
        request = _fingerprints(app.state.fingerprint_key, body)

        stored = await _stored_hash(database_url)
        assert stored == request.request_hash
        assert request.legacy_hash is not None and stored != request.legacy_hash
        other_key = KeyedHash(b"k" * 32, app.state.fingerprint_key.suite)
        assert stored != _fingerprints(other_key, body).request_hash

        await _unkeyed(database_url, request.legacy_hash)
        again = await client.post("/v1/complaints", json=body, headers=headers)
        assert (again.status_code, again.json()) == (201, first.json())
        changed = await client.post(
            "/v1/complaints", json={**body, "claims": "另一诉求"}, headers=headers
        )
        assert changed.status_code == 422
        assert changed.json()["code"] == "idempotency_key_reused"
