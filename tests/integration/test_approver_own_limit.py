"""An approval is judged by the approver's own limit (DOMAIN.md "Redress authority": "an
authenticated principal whose own limit covers the amount, at the case's institution or above"),
the one the policy in force at the approver's institution sets, not the one the case's node sets
for its own supervisors (found by a review pass: a sub-branch raising its supervisors' limit let
a branch supervisor approve beyond the branch's limit, and one lowering it stopped the branch
above from approving what the sub-branch's supervisors could not)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from api_support import app_client, complaint, days_ago
from complaintcore.application.business_day import shanghai_today
from projection_support import tree_and_tokens

BRANCH_SUPERVISOR_LIMIT = 5_000_000  # DOMAIN.md's default, in force at BR-A


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(database_url) as client:
        yield client


@pytest.fixture
async def tokens(database_url: str) -> dict[str, str]:
    return await tree_and_tokens(
        database_url,
        {
            "admin": ("adm-1", "admin", None),
            "sub_staff": ("staff-sub1", "staff", "SUB-A1"),
            "sub_supervisor": ("sup-sub1", "supervisor", "SUB-A1"),
            "branch_supervisor": ("sup-a1", "supervisor", "BR-A"),
        },
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sub_branch_supervisors_may(
    client: httpx.AsyncClient, tokens: dict[str, str], limit_fen: int
) -> None:
    """SUB-A1's policy sets its supervisors' limit from today (BR-A keeps the default): today as
    the service reads it now, not as the suite started (a run across Shanghai's midnight, 16:00
    UTC, was refused `effective_from_in_past`)."""
    today = shanghai_today().isoformat()
    policy = {"effective_from": today, "redress_limits_fen": {"supervisor": limit_fen}}
    put = await client.put(
        "/v1/institutions/SUB-A1/policy", json=policy, headers=auth(tokens["admin"])
    )
    assert put.status_code == 200, put.text


async def sub_branch_case(client: httpx.AsyncClient, tokens: dict[str, str]) -> str:
    body = complaint("SUB-A1", received_days_ago=3, respondent_staff=[])
    created = await client.post("/v1/complaints", json=body, headers=auth(tokens["sub_staff"]))
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def approve(
    client: httpx.AsyncClient, token: str, case_id: str, up_to_fen: int
) -> httpx.Response:
    body = {"up_to_fen": up_to_fen, "note": "核准", "approved_on": days_ago(0)}
    return await client.post(
        f"/v1/complaints/{case_id}/approve-redress", json=body, headers=auth(token)
    )


async def test_a_branch_supervisor_approves_no_more_than_the_branch_allows(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    await sub_branch_supervisors_may(client, tokens, 10_000_000)
    case_id = await sub_branch_case(client, tokens)

    beyond = await approve(client, tokens["branch_supervisor"], case_id, 8_000_000)
    assert beyond.status_code == 409, beyond.text
    assert beyond.json()["code"] == "approver_lacks_authority"
    # the sub-branch's own supervisor has the sub-branch's limit
    own = await approve(client, tokens["sub_supervisor"], case_id, 8_000_000)
    assert own.status_code == 200, own.text


async def test_the_branch_above_approves_what_the_sub_branch_may_not(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    await sub_branch_supervisors_may(client, tokens, 1_000_000)
    case_id = await sub_branch_case(client, tokens)

    local = await approve(client, tokens["sub_supervisor"], case_id, 3_000_000)
    assert local.status_code == 409, local.text
    assert local.json()["code"] == "approver_lacks_authority"
    above = await approve(client, tokens["branch_supervisor"], case_id, BRANCH_SUPERVISOR_LIMIT)
    assert above.status_code == 200, above.text
    assert above.json()["redress_approval"]["approver_id"] == "sup-a1"


async def test_a_fraction_a_double_rounds_to_whole_fen_is_refused_not_rounded(
    client: httpx.AsyncClient, tokens: dict[str, str], database_url: str
) -> None:
    """Found by a review pass: `99999.99999999999999` fen, which a double rounds to 100000.0,
    was recorded as 100,000 fen. Through the command lane (approve-redress) and a route of its
    own (the policy), each number is read as written; `1E5` is still an integer."""
    case_id = await sub_branch_case(client, tokens)
    sent = {
        f"/v1/complaints/{case_id}/approve-redress": (
            "POST",
            '{"up_to_fen": 99999.99999999999999, "note": "核准"}',
            "up_to_fen",
        ),
        "/v1/institutions/SUB-A1/policy": (
            "PUT",
            f'{{"effective_from": "{shanghai_today().isoformat()}",'
            ' "redress_limits_fen": {"supervisor": 1.00000000000000001}}',
            "redress_limits_fen.supervisor",
        ),
    }
    for path, (method, body, field) in sent.items():
        token = tokens["branch_supervisor" if method == "POST" else "admin"]
        response = await client.request(
            method,
            path,
            content=body.encode(),
            headers=auth(token) | {"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (path, response.text)
        assert [error["field"] for error in response.json()["errors"]] == [field]
    events = await client.get(f"/v1/complaints/{case_id}/events", headers=auth(tokens["sub_staff"]))
    assert [event["type"] for event in events.json()] == ["ComplaintReceived"]

    whole = await client.post(
        f"/v1/complaints/{case_id}/approve-redress",
        content=b'{"up_to_fen": 1E5, "note": "\xe6\xa0\xb8\xe5\x87\x86"}',
        headers=auth(tokens["branch_supervisor"]) | {"Content-Type": "application/json"},
    )
    assert whole.status_code == 200, whole.text
    assert whole.json()["redress_approval"]["up_to_fen"] == 100_000
