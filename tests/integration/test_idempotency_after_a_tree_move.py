"""An `Idempotency-Key` reused with another request is refused as reused (422
`idempotency_key_reused`; API.md "Conventions") even when the case its first request was on has
since left the caller's subtree. Found by a review pass: once SUB-A1 was moved under BR-B, the
key reused on a BR-A case the caller sees answered 404 "No such complaint", and reused on a
receipt at BR-A called the caller's own institution unknown."""

from collections.abc import AsyncIterator

import httpx
import pytest

from api_support import app_client, complaint, days_ago, notice
from projection_support import tree_and_tokens

NOTE = {"subject": "progress", "notice": notice(days_ago(0))}


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    tokens = await tree_and_tokens(
        database_url,
        {"staff": ("staff-a1", "staff", "BR-A"), "admin": ("admin-1", "admin", None)},
    )
    async with app_client(database_url) as client:
        yield client, tokens


def auth(token: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    return headers | ({"Idempotency-Key": key} if key else {})


async def move_sub_a1_under_br_b(client: httpx.AsyncClient, admin: str) -> None:
    moved = await client.put(
        "/v1/institutions/SUB-A1",
        json={"name": "浦东支行", "kind": "sub_branch", "parent": "BR-B"},
        headers=auth(admin),
    )
    assert moved.status_code == 200, moved.text


async def received(client: httpx.AsyncClient, staff: str, institution: str) -> str:
    created = await client.post("/v1/complaints", json=complaint(institution), headers=auth(staff))
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_a_key_reused_on_a_visible_case_is_refused_as_reused(
    desk: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = desk
    staff = tokens["staff"]
    moved_away = await received(client, staff, "SUB-A1")
    visible = await received(client, staff, "BR-A")
    first = await client.post(
        f"/v1/complaints/{moved_away}/notify", json=NOTE, headers=auth(staff, "K-1")
    )
    assert first.status_code == 200, first.text
    await move_sub_a1_under_br_b(client, tokens["admin"])

    reused = await client.post(
        f"/v1/complaints/{visible}/notify", json=NOTE, headers=auth(staff, "K-1")
    )
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    again = await client.post(
        f"/v1/complaints/{moved_away}/notify", json=NOTE, headers=auth(staff, "K-1")
    )
    assert again.status_code == 404, again.text  # its own case, out of sight: not replayed


async def test_a_key_reused_on_a_receipt_is_refused_as_reused(
    desk: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, tokens = desk
    staff = tokens["staff"]
    first = await client.post(
        "/v1/complaints", json=complaint("SUB-A1"), headers=auth(staff, "R-1")
    )
    assert first.status_code == 201, first.text
    await move_sub_a1_under_br_b(client, tokens["admin"])

    reused = await client.post("/v1/complaints", json=complaint("BR-A"), headers=auth(staff, "R-1"))
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")


OLD_WITHDRAWAL = {"received_on": "2019-05-10", "reason": "已与网点协商一致"}


async def test_a_resent_request_does_not_tell_whether_an_out_of_sight_case_was_erased(
    database_url: str,
) -> None:
    """14e5fd0 says "whether that case was erased is told only to one who sees it". Two cases
    at SUB-A1, each withdrawn with a key; one is erased; SUB-A1 moves under BR-B. The BR-A
    staff sends each withdrawal again, byte for byte: the case not erased answers 404, the
    erased one 422 idempotency_key_reused, so the answer tells which of the two cases, now out
    of the caller's sight, was erased."""
    tokens = await tree_and_tokens(
        database_url,
        {"staff": ("staff-a1", "staff", "BR-A"), "admin": ("admin-1", "admin", None)},
    )
    staff = {"Authorization": f"Bearer {tokens['staff']}"}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    async with app_client(database_url) as client:
        cases = []
        for key in ("K-erased", "K-kept"):
            created = await client.post(
                "/v1/complaints",
                json=complaint("SUB-A1", 1, received_on="2019-05-06"),
                headers=staff,
            )
            assert created.status_code == 201, created.text
            case = created.json()["id"]
            withdrawn = await client.post(
                f"/v1/complaints/{case}/withdraw",
                json=OLD_WITHDRAWAL,
                headers={**staff, "Idempotency-Key": key},
            )
            assert withdrawn.status_code == 200, withdrawn.text
            cases.append((case, key))
        erased = await client.post(
            f"/v1/complaints/{cases[0][0]}/erase-personal-data",
            json={"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"},
            headers=admin,
        )
        assert erased.status_code == 200, erased.text
        moved = await client.put(
            "/v1/institutions/SUB-A1",
            json={"name": "浦东支行", "kind": "sub_branch", "parent": "BR-B"},
            headers=admin,
        )
        assert moved.status_code == 200, moved.text
        answers = []
        for case, key in cases:
            again = await client.post(
                f"/v1/complaints/{case}/withdraw",
                json=OLD_WITHDRAWAL,
                headers={**staff, "Idempotency-Key": key},
            )
            answers.append((again.status_code, again.json().get("code")))
    assert answers[0] == answers[1], answers
