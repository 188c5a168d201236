"""Racing requests over real HTTP (TARGETS.md "Reliability", concurrency): receipts for one
institution and month get gapless serials, one of many racing decides wins, and racing commands
without `If-Match` never lose an update."""

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx

from api_support import complaint, days_ago, decision, notice, ok, receive
from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool
from testsupport import LiveService

RACING_RECEIPTS = 50
RACING_DECIDES = 20
RACING_NOTIFIES = 10


async def fresh_institution(live: LiveService) -> tuple[str, str]:
    """A new sub-branch under BR-A and a staff token for it, so no other test's receipts count."""
    code = f"RACE-{uuid.uuid4().hex[:8].upper()}"
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as admin:
        response = await admin.put(
            f"/v1/institutions/{code}",
            json={"name": "竞速支行", "kind": "sub_branch", "parent": "BR-A"},
            headers={"Authorization": f"Bearer {live.tokens['admin']}"},
        )
    assert response.status_code in (200, 201), response.text
    pool = await create_pool(live.database_url, min_size=1, max_size=1)
    try:
        token = await create_token(pool, f"staff-{code.lower()}", "staff", code)
    finally:
        await pool.close()
    return code, token


def client_with(live: LiveService, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        limits=httpx.Limits(max_connections=100),
    )


def serial_of(registration_no: str, institution: str) -> int:
    month = days_ago(0).replace("-", "")[:6]
    prefix, _, serial = registration_no.rpartition("-")
    assert prefix == f"{institution}-{month}", registration_no
    return int(serial)


def with_bad_check_digit(institution: str) -> dict[str, Any]:
    """Passes the schema, refused by the domain inside the receipt's transaction (serial taken)."""
    body = complaint(institution, received_days_ago=0)
    body["complainant"]["id_number"] = "110105194912310021"
    return body


def with_unknown_channel(institution: str) -> dict[str, Any]:
    """Refused by the schema before any transaction starts."""
    return complaint(institution, received_days_ago=0, channel="pigeon")


async def test_racing_receipts_get_serials_one_to_fifty(live: LiveService) -> None:
    institution, token = await fresh_institution(live)
    async with client_with(live, token) as staff:
        responses = await asyncio.gather(
            *(
                staff.post("/v1/complaints", json=complaint(institution, received_days_ago=0))
                for _ in range(RACING_RECEIPTS)
            )
        )
    assert [r.status_code for r in responses] == [201] * RACING_RECEIPTS, [
        r.text for r in responses if r.status_code != 201
    ]
    numbers = [r.json()["registration_no"] for r in responses]
    assert len(set(numbers)) == RACING_RECEIPTS
    serials = sorted(serial_of(number, institution) for number in numbers)
    assert serials == list(range(1, RACING_RECEIPTS + 1))


async def test_refused_receipts_in_a_burst_leave_no_gap(live: LiveService) -> None:
    institution, token = await fresh_institution(live)
    valid = complaint(institution, received_days_ago=0)
    bodies = [valid] * 15 + [with_bad_check_digit(institution)] * 3
    bodies += [with_unknown_channel(institution)] * 3 + [valid] * 15
    bodies += [with_bad_check_digit(institution)] * 2
    async with client_with(live, token) as staff:
        responses = await asyncio.gather(
            *(staff.post("/v1/complaints", json=body) for body in bodies)
        )
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {201: 30, 422: 8}, [r.text for r in responses if r.status_code >= 500]
        serials = sorted(
            serial_of(r.json()["registration_no"], institution)
            for r in responses
            if r.status_code == 201
        )
        assert serials == list(range(1, 31))
        after = await staff.post("/v1/complaints", json=valid)
    assert after.status_code == 201, after.text
    assert serial_of(after.json()["registration_no"], institution) == 31


def assigned_case(live: LiveService) -> dict:
    staff = live.client("staff_a")
    case = receive(staff, received_days_ago=2)
    return ok(staff.post(f"/v1/complaints/{case['id']}/assign", json={"handler_id": "staff-a1"}))


async def test_racing_decides_exactly_one_wins(live: LiveService) -> None:
    case = assigned_case(live)
    path = f"/v1/complaints/{case['id']}/decide"
    pinned = {"If-Match": f'"{case["version"]}"'}
    async with live.async_client("staff_a") as staff:
        responses = await asyncio.gather(
            *(
                staff.post(path, json=decision(days_ago(0)), headers=pinned if i % 2 else {})
                for i in range(RACING_DECIDES)
            )
        )
        events = (await staff.get(f"/v1/complaints/{case['id']}/events")).json()
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    for index, response in enumerate(responses):
        if response.status_code == 200:
            continue
        assert response.headers["content-type"].startswith("application/problem+json")
        if index % 2:
            assert (response.status_code, response.json()["code"]) == (412, "precondition_failed")
        else:
            assert (response.status_code, response.json()["code"]) == (409, "case_already_decided")
    assert [e["type"] for e in events].count("ComplaintDecided") == 1
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    assert winners[0].json()["version"] == len(events)


async def test_racing_commands_without_if_match_lose_no_update(live: LiveService) -> None:
    case = assigned_case(live)
    base = f"/v1/complaints/{case['id']}"
    commands = [
        ("notify", {"subject": "progress", "notice": notice(days_ago(0))})
    ] * RACING_NOTIFIES
    commands += [
        ("flag-major", {"cause": "disaster", "detail": "台风"}),
        (
            "supplement",
            {"received_on": days_ago(0), "new_facts_and_reasons": False, "summary": "补"},
        ),
    ]
    async with live.async_client("staff_a") as staff:
        responses = await asyncio.gather(
            *(staff.post(f"{base}/{command}", json=body) for command, body in commands)
        )
        assert [r.status_code for r in responses] == [200] * len(commands), [
            r.text for r in responses if r.status_code != 200
        ]
        events = (await staff.get(f"{base}/events")).json()
        current = await staff.get(base)
    first_new = case["version"] + 1
    expected_versions = list(range(first_new, first_new + len(commands)))
    assert sorted(r.json()["version"] for r in responses) == expected_versions
    assert sorted(r.headers["etag"] for r in responses) == sorted(
        f'"{v}"' for v in expected_versions
    )
    assert [e["version"] for e in events] == list(range(1, expected_versions[-1] + 1))
    types = Counter(e["type"] for e in events)
    assert types["ComplainantNotified"] == RACING_NOTIFIES
    assert types["MarkedMajor"] == 1
    assert types["ComplaintSupplemented"] == 1
    assert current.json()["version"] == expected_versions[-1]
    assert current.json()["major"] is True
