"""A duplicate merged into a case carries its conflicts there (Art. 17; DOMAIN.md "Assignment
and recusal": named respondent staff and anyone who recused "cannot be assigned"; a repeated
complaint is merged into the one it repeats: the same complaint). Found by a review pass: after
a duplicate naming staff-x7, and from which staff-r1 recused, was merged into another case,
both could be assigned that case."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog.testing

from api_support import app_client, complaint, days_ago, notice
from projection_support import tree_and_tokens
from store_support import behind_the_triggers_back


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


async def do(
    client: httpx.AsyncClient, staff: dict[str, str], case: str, command: str, body: Any
) -> httpx.Response:
    return await post(client, staff, f"/v1/complaints/{case}/{command}", body)


# Found by a review pass of the change that carried a duplicate's conflicts: a chain of merges,
# a handler barred by a duplicate merged in after the assignment, a duplicate altered behind the
# trigger (a bar silently lost, or the healthy case blamed with nothing naming the damaged one).
X7 = [{"staff_id": "staff-x7", "name": "王五"}]


async def test_a_chain_of_merges_carries_the_first_duplicates_conflicts_to_the_last_case(
    client: httpx.AsyncClient, staff: dict[str, str]
) -> None:
    """A (naming staff-x7) merged into B, then B merged into C: A, B and C are one complaint,
    so staff-x7 cannot be assigned C (the commit's own rule, applied once more)."""
    a = await received(client, staff, respondent_staff=X7)
    b = await received(client, staff, respondent_staff=[])
    c = await received(client, staff, respondent_staff=[])
    assert (await do(client, staff, a, "merge", {"into": b})).status_code == 200
    # one step: staff-x7 is barred on B
    on_b = await do(client, staff, b, "assign", {"handler_id": "staff-x7"})
    assert on_b.status_code == 409, on_b.text
    assert (await do(client, staff, b, "merge", {"into": c})).status_code == 200
    on_c = await do(client, staff, c, "assign", {"handler_id": "staff-x7"})
    assert on_c.status_code == 409, on_c.text
    assert on_c.json()["code"] == "handler_has_conflict"


DECISION = {
    "outcome": "partially_upheld",
    "findings": "未提示",
    "basis": "章程",
    "redress_fen": 0,
    "remedies": ["review", "litigation"],
}


async def test_a_handler_a_merged_duplicate_bars_cannot_go_on_to_decide_the_case(
    client: httpx.AsyncClient, staff: dict[str, str]
) -> None:
    """C is assigned to staff-x7; then a duplicate naming staff-x7 is merged into C. staff-x7
    "can never handle the case" (DOMAIN.md), yet the merge is taken and staff-x7 decides C."""
    c = await received(client, staff, respondent_staff=[])
    assert (await do(client, staff, c, "assign", {"handler_id": "staff-x7"})).status_code == 200
    dup = await received(client, staff, respondent_staff=X7)
    merged = await do(client, staff, dup, "merge", {"into": c})
    decided = await do(
        client,
        staff,
        c,
        "decide",
        {**DECISION, "handler_id": "staff-x7", "notice": notice(days_ago(0))},
    )
    # the merge is taken (it joins the same complaint); staff-x7 can no longer decide C
    assert merged.status_code == 200, merged.text
    assert (decided.status_code, decided.json()["code"]) == (409, "handler_has_conflict")


async def _duplicate_with_a_recusal(client, staff) -> tuple[str, str]:
    """A duplicate (receipt v1, assignment v2, recusal of staff-r1 v3, merge v4) merged into
    a survivor; returns (duplicate, survivor)."""
    dup = await received(client, staff, respondent_staff=[])
    survivor = await received(client, staff, respondent_staff=[])
    for command, body in (
        ("assign", {"handler_id": "staff-r1"}),
        ("recuse", {"handler_id": "staff-r1", "reason": "与投诉人系亲属"}),
        ("merge", {"into": survivor}),
    ):
        done = await do(client, staff, dup, command, body)
        assert done.status_code == 200, done.text
    return dup, survivor


async def test_a_duplicate_whose_recusal_was_deleted_no_longer_bars_silently(
    client: httpx.AsyncClient, staff: dict[str, str], database_url: str
) -> None:
    """The duplicate's recusal row deleted behind the trigger: the duplicate itself is refused
    as damaged (409 case_stream_damaged), but its survivor takes staff-r1 without a word: the
    fold of the duplicates never checks that their versions run on."""
    dup, survivor = await _duplicate_with_a_recusal(client, staff)
    await behind_the_triggers_back(
        database_url, "DELETE FROM events WHERE stream_id = $1 AND version = 3", dup
    )
    async with app_client(database_url) as fresh:  # nothing kept of either case
        read = await fresh.get(f"/v1/complaints/{dup}", headers=staff)
        assert (read.status_code, read.json()["code"]) == (409, "case_stream_damaged")
        assigned = await fresh.post(
            f"/v1/complaints/{survivor}/assign", json={"handler_id": "staff-r1"}, headers=staff
        )
    assert assigned.status_code == 409, assigned.text


async def test_a_damaged_duplicate_is_not_passed_off_as_the_survivors_damage(
    client: httpx.AsyncClient, staff: dict[str, str], database_url: str
) -> None:
    """The duplicate's assignment altered to an unknown event type: the survivor's commands
    naming a handler are refused 409 case_stream_damaged, though the survivor's own audit is
    intact; the operator's log names the duplicate to look at (not the answer: the duplicate may
    be outside the caller's subtree)."""
    dup, survivor = await _duplicate_with_a_recusal(client, staff)
    await behind_the_triggers_back(
        database_url,
        "UPDATE events SET event_type = 'HandlerBribed' WHERE stream_id = $1 AND version = 2",
        dup,
    )
    tokens = await tree_and_tokens(database_url, {"regulator": ("reg-1", "regulator", None)})
    regulator = {"Authorization": f"Bearer {tokens['regulator']}"}
    async with app_client(database_url) as fresh:
        with structlog.testing.capture_logs() as logs:
            assigned = await fresh.post(
                f"/v1/complaints/{survivor}/assign", json={"handler_id": "staff-q9"}, headers=staff
            )
        audit = await fresh.get(f"/v1/complaints/{survivor}/audit", headers=regulator)
    assert audit.status_code == 200, audit.text
    assert audit.json()["chain"]["intact"] is True
    assert (assigned.status_code, assigned.json()["code"]) == (409, "case_stream_damaged")
    named = [entry for entry in logs if entry.get("duplicate") == dup]
    assert [entry["case_id"] for entry in named] == [survivor], logs
