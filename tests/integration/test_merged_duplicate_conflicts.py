"""A duplicate merged into a case carries its conflicts there (Art. 17; DOMAIN.md "Assignment
and recusal": named respondent staff and anyone who recused "cannot be assigned"; a repeated
complaint is merged into the one it repeats: the same complaint). Found by a review pass: after
a duplicate naming staff-x7, and from which staff-r1 recused, was merged into another case,
both could be assigned that case."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api_support import app_client, complaint
from projection_support import tree_and_tokens


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(database_url) as client:
        yield client


@pytest.fixture
async def staff(database_url: str) -> dict[str, str]:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-sub1", "staff", "SUB-A1")})
    return {"Authorization": f"Bearer {tokens['staff']}"}


async def post(
    client: httpx.AsyncClient, staff: dict[str, str], path: str, body: Any
) -> httpx.Response:
    return await client.post(path, json=body, headers=staff)


async def received(client: httpx.AsyncClient, staff: dict[str, str], **fields: Any) -> str:
    created = await post(client, staff, "/v1/complaints", complaint("SUB-A1", 5, **fields))
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_the_staff_a_merged_duplicate_bars_cannot_be_assigned_its_case(
    client: httpx.AsyncClient, staff: dict[str, str]
) -> None:
    duplicate = await received(
        client, staff, respondent_staff=[{"staff_id": "staff-x7", "name": "王五"}]
    )
    survivor = await received(client, staff, respondent_staff=[])
    for command, body in (
        ("assign", {"handler_id": "staff-r1"}),
        ("recuse", {"handler_id": "staff-r1", "reason": "与投诉人系亲属"}),
        ("merge", {"into": survivor}),
    ):
        done = await post(client, staff, f"/v1/complaints/{duplicate}/{command}", body)
        assert done.status_code == 200, done.text
    before = await client.get(f"/v1/complaints/{survivor}/events", headers=staff)

    for barred in ("staff-x7", "staff-r1"):
        refused = await post(
            client, staff, f"/v1/complaints/{survivor}/assign", {"handler_id": barred}
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "handler_has_conflict"
    after = await client.get(f"/v1/complaints/{survivor}/events", headers=staff)
    assert len(after.json()) == len(before.json())
    anyone_else = await post(
        client, staff, f"/v1/complaints/{survivor}/assign", {"handler_id": "staff-sub1"}
    )
    assert anyone_else.status_code == 200, anyone_else.text
