"""Commands on a case taken the short way (`api/command_lane.py`): a token seen before is trusted
only as far as the command's own transaction confirms it, and every answer is the routes' answer."""

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api_support import asgi_client, complaint, days_ago, notice, started_app
from complaintcore.api.auth import authenticate
from complaintcore.api.command_lane import CommandLane
from complaintcore.auth.tokens import create_token, revoke_token
from complaintcore.reference.institutions import InstitutionDirectory

NOTE = {"subject": "progress", "notice": notice(days_ago(0)), "summary": "处理进展"}


@pytest.fixture
async def app(database_url: str, pool: asyncpg.Pool) -> AsyncIterator[FastAPI]:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    await directory.put("BR-B", "北京分行", "branch", "HO")
    async with started_app(database_url) as app:
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def lane(app: FastAPI) -> CommandLane:
    app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, CommandLane):
        layer = layer.app
    return layer


@pytest.fixture
def routed(lane: CommandLane) -> list[str]:
    """The paths of the requests the lane passed on to the routes (the others it answered)."""
    routes = lane.app
    paths: list[str] = []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await routes(scope, receive, send)

    lane.app = recording
    return paths


async def staff_token(pool: asyncpg.Pool, institution: str = "BR-A") -> str:
    return await create_token(pool, "staff-a1", "staff", institution)


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


async def new_case(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """A case received with `token`, which the app has then seen valid."""
    response = await client.post("/v1/complaints", json=complaint(), headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()


async def notify(
    client: httpx.AsyncClient, token: str, case: dict[str, Any], **headers: str
) -> httpx.Response:
    return await client.post(
        f"/v1/complaints/{case['id']}/notify", json=NOTE, headers=bearer(token, **headers)
    )


async def version_of(pool: asyncpg.Pool, case: dict[str, Any]) -> int:
    return await pool.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", case["id"])


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_revoked_after_it_was_seen_acts_no_more(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    token = await staff_token(pool)
    case = await new_case(client, token)
    assert (await notify(client, token, case)).status_code == 200

    await revoke_token(pool, token)

    assert_unauthorized(await notify(client, token, case))
    assert_unauthorized(await notify(client, token, case))
    assert await version_of(pool, case) == 2


async def test_a_revoked_token_gets_no_stored_answer_replayed(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    token = await staff_token(pool)
    case = await new_case(client, token)
    first = await notify(client, token, case, **{"Idempotency-Key": "note-1"})
    assert first.status_code == 200

    await revoke_token(pool, token)

    assert_unauthorized(await notify(client, token, case, **{"Idempotency-Key": "note-1"}))


async def test_a_token_changed_behind_the_apps_back_acts_as_what_it_stands_for_now(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    token = await staff_token(pool, "BR-A")
    case = await new_case(client, token)

    await pool.execute("UPDATE api_tokens SET institution = 'BR-B' WHERE principal_id = 'staff-a1'")

    response = await notify(client, token, case)
    assert response.status_code == 404, response.text
    assert await version_of(pool, case) == 1


async def test_a_command_the_lane_answers_is_answered_as_its_route_answers_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, lane: CommandLane, routed: list[str]
) -> None:
    """The same commands on two like cases, once with the lane shut (the routes answer, with
    tokens the app has not seen) and once through it (tokens it has seen)."""
    seen, unseen = await staff_token(pool), await staff_token(pool)
    routed_case, lane_case = await new_case(client, seen), await new_case(client, seen)
    commands: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("notify", NOTE, {}),
        ("resume", {"resumed_on": days_ago(0)}, {}),
        ("assign", {"handler_id": "staff-a2"}, {"If-Match": '"9"'}),
        ("assign", {"handler_id": "staff-a2"}, {"If-Match": '"2"'}),
    ]
    for command, body, headers in commands:
        lane.command_for = lambda scope: None  # type: ignore[method-assign]
        by_route = await client.post(
            f"/v1/complaints/{routed_case['id']}/{command}",
            json=body,
            headers=bearer(unseen, **headers),
        )
        del lane.command_for
        by_lane = await client.post(
            f"/v1/complaints/{lane_case['id']}/{command}",
            json=body,
            headers=bearer(seen, **headers),
        )
        assert routed[-1] == f"/v1/complaints/{routed_case['id']}/{command}"
        assert by_route.status_code == by_lane.status_code, (command, by_lane.text, by_route.text)
        assert comparable(by_lane) == comparable(by_route), command
        await revoke_token(pool, unseen)
        unseen = await staff_token(pool)


def comparable(response: httpx.Response) -> tuple[dict[str, str], Any]:
    """A response without what tells two cases apart (the commit position: only whether it
    is there)."""
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in ("content-length", "x-correlation-id", "consistency-position")
    }
    if "consistency-position" in response.headers:
        headers["consistency-position"] = "present"
    body = response.json()
    for name in ("id", "registration_no"):
        body.pop(name, None)
    return headers, body


@pytest.mark.parametrize(
    ("path_suffix", "body", "headers", "status"),
    [
        ("%0A/notify", NOTE, {}, 422),
        ("/notify/", NOTE, {}, 307),
        ("/notify", {**NOTE, "subject": "gossip"}, {}, 422),
        ("/notify", {**NOTE, "extra": 1}, {}, 422),
        ("/notify", NOTE, {"Idempotency-Key": "has space"}, 422),
        ("/notify", NOTE, {"Idempotency-Key": "k" * 201}, 422),
        ("/notify", NOTE, {"Content-Type": "text/plain"}, 422),
        ("/notify", NOTE, {"Authorization": "Bearer cc_never-issued"}, 401),
    ],
    ids=[
        "newline after the id",
        "trailing slash",
        "bad field",
        "unknown field",
        "bad key",
        "long key",
        "not json",
        "unknown token",
    ],
)
async def test_requests_the_lane_leaves_to_the_routes_store_nothing(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    routed: list[str],
    path_suffix: str,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
) -> None:
    token = await staff_token(pool)
    case = await new_case(client, token)
    routed.clear()
    response = await client.post(
        f"/v1/complaints/{case['id']}{path_suffix}",
        content=httpx.Request("POST", "/", json=body).content,
        headers={"Content-Type": "application/json", **bearer(token), **headers},
    )
    assert response.status_code == status, response.text
    assert len(routed) == (0 if status == 401 else 1)  # an unknown token: the gate's 401
    assert await version_of(pool, case) == 1


async def test_a_command_with_a_seen_token_is_the_lanes_to_answer(
    client: httpx.AsyncClient, pool: asyncpg.Pool, routed: list[str]
) -> None:
    token = await staff_token(pool)
    case = await new_case(client, token)
    routed.clear()
    for content_type in ("application/json", "application/json; charset=utf-8"):
        response = await client.post(
            f"/v1/complaints/{case['id']}/notify",
            content=httpx.Request("POST", "/", json=NOTE).content,
            headers=bearer(token, **{"Content-Type": content_type}),
        )
        assert response.status_code == 200, response.text
    assert routed == []
    assert await version_of(pool, case) == 3


async def test_with_dependencies_overridden_the_routes_answer(
    app: FastAPI, client: httpx.AsyncClient, pool: asyncpg.Pool, routed: list[str]
) -> None:
    """The lane does not apply `app.dependency_overrides`: while there are any, it steps aside."""
    token = await staff_token(pool)
    case = await new_case(client, token)
    routed.clear()
    app.dependency_overrides[authenticate] = authenticate
    response = await notify(client, token, case)
    assert response.status_code == 200, response.text
    assert routed == [f"/v1/complaints/{case['id']}/notify"]
