"""Who decides a review (DOMAIN.md "Review", Art. 20): the superior the review went to, or an
institution above it; never the reviewed institution itself (found by a review pass: a sub-branch
decided, and changed, the review of its own decision)."""

from collections.abc import AsyncIterator

import httpx
import pytest

from api_support import app_client, complaint, days_ago, notice
from projection_support import tree_and_tokens


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(database_url) as client:
        yield client


@pytest.fixture
async def tokens(database_url: str) -> dict[str, str]:
    return await tree_and_tokens(
        database_url,
        {
            "sub_staff_1": ("staff-sub1", "staff", "SUB-A1"),
            "sub_staff_2": ("staff-sub2", "staff", "SUB-A1"),
            "branch_staff": ("staff-a1", "staff", "BR-A"),
            "head_office_staff": ("staff-ho1", "staff", "HO"),
        },
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def command(
    client: httpx.AsyncClient, token: str, case_id: str, name: str, body: dict
) -> httpx.Response:
    return await client.post(f"/v1/complaints/{case_id}/{name}", json=body, headers=auth(token))


async def decided_sub_branch_case(client: httpx.AsyncClient, tokens: dict[str, str]) -> str:
    """A SUB-A1 case decided by its own handler 5 days ago, the complainant's review requested
    (Art. 20: the review goes to SUB-A1's superior, BR-A)."""
    staff = tokens["sub_staff_1"]
    created = await client.post(
        "/v1/complaints",
        json=complaint("SUB-A1", received_days_ago=10, respondent_staff=[]),
        headers=auth(staff),
    )
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    assigned = await command(client, staff, case_id, "assign", {"handler_id": "staff-sub1"})
    assert assigned.status_code == 200, assigned.text
    decision = {
        "handler_id": "staff-sub1",
        "outcome": "rejected",
        "findings": "未发现违规",
        "basis": "章程",
        "redress_fen": 0,
        "remedies": ["review", "litigation"],
        "notice": notice(days_ago(5)),
    }
    decided = await command(client, staff, case_id, "decide", decision)
    assert decided.status_code == 200, decided.text
    appealed = await command(
        client, staff, case_id, "appeal", {"received_on": days_ago(3), "grounds": "不服"}
    )
    assert appealed.status_code == 200, appealed.text
    assert appealed.json()["review"]["reviewing_institution"] == "BR-A"
    return case_id


async def test_the_reviewed_sub_branch_cannot_decide_its_own_review(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """DOMAIN.md "Review" (Art. 20): the review goes to the deciding node's superior, and "the
    superior must decide". A principal of the very sub-branch whose decision is under review is
    not the superior and must not record the review decision (nor change the outcome and the
    redress: DOMAIN.md "Redress authority" counts a changed review decision as a decision)."""
    case_id = await decided_sub_branch_case(client, tokens)
    review = {
        "reviewer_id": "staff-sub2",  # neither the handler nor named in the complaint
        "outcome": "changed",
        "findings": "原处理有误",
        "new_outcome": "upheld",
        "new_redress_fen": 90_000,  # within the staff limit, so no approval is asked for
        "notice": notice(days_ago(0)),
    }

    response = await command(client, tokens["sub_staff_2"], case_id, "decide-review", review)

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "review_decided_below_superior"
    unchanged = await client.get(f"/v1/complaints/{case_id}", headers=auth(tokens["sub_staff_1"]))
    assert unchanged.json()["status"] == "under_review"


@pytest.mark.parametrize("decider", ["branch_staff", "head_office_staff"])
async def test_the_superior_or_one_above_it_decides_the_review(
    client: httpx.AsyncClient, tokens: dict[str, str], decider: str
) -> None:
    case_id = await decided_sub_branch_case(client, tokens)
    review = {
        "reviewer_id": "staff-a1",
        "outcome": "kept",
        "findings": "原处理无误",
        "notice": notice(days_ago(0)),
    }

    response = await command(client, tokens[decider], case_id, "decide-review", review)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "review_decided"
