"""A token revoked (here, or by another process) stops getting past the request gate within
`SEEN_TOKEN_MAX_AGE_S`: a body it sends is then not read, whether or not it is well formed
(API.md: a bad token is 401)."""

import asyncpg

from api_support import asgi_client, complaint, started_app
from complaintcore.auth.tokens import SEEN_TOKEN_MAX_AGE_S, SeenTokens, revoke_token
from projection_support import tree_and_tokens
from testsupport import ManualClock

NOT_JSON = b"{not json"


async def test_a_revoked_token_is_401_at_the_gate_within_the_bound_even_for_a_bad_body(
    database_url: str, pool: asyncpg.Pool
) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    clock = ManualClock()
    async with started_app(database_url) as app, asgi_client(app) as client:
        app.state.seen_tokens = SeenTokens(clock=clock)
        auth = {"Authorization": f"Bearer {tokens['staff']}"}
        received = await client.post("/v1/complaints", json=complaint("BR-A"), headers=auth)
        assert received.status_code == 201, received.text

        await revoke_token(pool, tokens["staff"])  # as by `complaintcore tokens revoke`
        clock.now += SEEN_TOKEN_MAX_AGE_S
        bad_body = {**auth, "Content-Type": "application/json"}
        for path in ("/v1/complaints", f"/v1/complaints/{received.json()['id']}/assign"):
            refused = await client.post(path, content=NOT_JSON, headers=bad_body)
            assert refused.status_code == 401, (path, refused.text)


async def test_a_token_found_revoked_is_forgotten_at_once(
    database_url: str, pool: asyncpg.Pool
) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    async with started_app(database_url) as app, asgi_client(app) as client:
        auth = {"Authorization": f"Bearer {tokens['staff']}"}
        assert (await client.get("/v1/complaints", headers=auth)).status_code == 200
        await revoke_token(pool, tokens["staff"])

        assert (await client.get("/v1/complaints", headers=auth)).status_code == 401
        refused = await client.post(
            "/v1/complaints", content=NOT_JSON, headers={**auth, "Content-Type": "application/json"}
        )
        assert refused.status_code == 401, refused.text
