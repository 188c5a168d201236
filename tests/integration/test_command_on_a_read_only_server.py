"""What a command answers when the pool's session is on a server that refuses writes (a standby
reached by mistake, a primary frozen with `default_transaction_read_only`): 503
`database_unavailable` with Retry-After, not a 500 (found by a review pass). Shown with the
database made read-only for new sessions once the app has started, the pool's connections
renewed."""

import asyncpg

from api_support import asgi_client, complaint, started_app
from projection_support import tree_and_tokens


async def test_a_command_on_a_read_only_server_is_503_not_500(database_url: str) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    async with started_app(database_url) as app, asgi_client(app) as client:
        admin = await asyncpg.connect(database_url)
        try:
            name = await admin.fetchval("SELECT current_database()")
            await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        finally:
            await admin.close()
        await app.state.pool.expire_connections()  # as after a reconnect to another host
        response = await client.post(
            "/v1/complaints",
            json=complaint("BR-A"),
            headers={"Authorization": f"Bearer {tokens['staff']}"},
        )
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json()["code"] == "database_unavailable"
    assert "retry-after" in response.headers
