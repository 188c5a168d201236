"""A command sent again with its `Idempotency-Key` is answered as the first time only if the
request would be let through now: a principal whose role changed since (a supervisor's id
re-issued as staff) gets the 403 its role gets, not the stored 200."""

import asyncpg

from api_support import app_client, complaint
from complaintcore.auth.tokens import create_token, revoke_token
from projection_support import tree_and_tokens

APPROVAL = {"up_to_fen": 500_000, "note": "损失核实无误"}


async def test_a_replay_after_the_principal_lost_the_role_is_refused_as_the_role_is(
    database_url: str, pool: asyncpg.Pool
) -> None:
    tokens = await tree_and_tokens(
        database_url,
        {"staff": ("staff-a1", "staff", "BR-A"), "supervisor": ("sup-a1", "supervisor", "BR-A")},
    )
    async with app_client(database_url) as client:
        received = await client.post(
            "/v1/complaints",
            json=complaint("BR-A"),
            headers={"Authorization": f"Bearer {tokens['staff']}"},
        )
        assert received.status_code == 201, received.text
        path = f"/v1/complaints/{received.json()['id']}/approve-redress"
        key = {"Idempotency-Key": "approval-1"}
        as_supervisor = {"Authorization": f"Bearer {tokens['supervisor']}", **key}
        first = await client.post(path, json=APPROVAL, headers=as_supervisor)
        assert first.status_code == 200, first.text

        await revoke_token(pool, tokens["supervisor"])
        demoted = await create_token(pool, "sup-a1", "staff", "BR-A")
        again = await client.post(
            path, json=APPROVAL, headers={"Authorization": f"Bearer {demoted}", **key}
        )

        assert again.status_code == 403, again.text
        assert again.json()["code"] == "forbidden"
