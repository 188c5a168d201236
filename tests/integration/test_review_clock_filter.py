"""`GET /v1/complaints?review_clock=` finds the cases under review by their review's own clock
(DOMAIN.md "Review": decided within 30 days of the request). Found by review passes: a review
past its deadline was counted in the statistics' `overdue_now` but found by no list filter, the
`clock` filter reading the handling clock only (met or missed once decided)."""

import httpx

from api_support import app_client, complaint, days_ago, decision
from projection_support import tree_and_tokens


async def under_review(
    client: httpx.AsyncClient, headers: dict[str, str], decided: int, appealed: int
) -> str:
    """A BR-A case decided `decided` days ago, its review requested `appealed` days ago."""
    body = complaint(received_days_ago=decided + 5, respondent_staff=[])
    case_id = (await client.post("/v1/complaints", json=body, headers=headers)).json()["id"]
    for command, command_body in (
        ("assign", {"handler_id": "staff-a1"}),
        ("decide", decision(days_ago(decided))),
        ("appeal", {"received_on": days_ago(appealed), "grounds": "不服"}),
    ):
        done = await client.post(
            f"/v1/complaints/{case_id}/{command}", json=command_body, headers=headers
        )
        assert done.status_code == 200, done.text
    return case_id


async def test_cases_under_review_are_found_by_their_reviews_clock(database_url: str) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    headers = {"Authorization": f"Bearer {tokens['staff']}"}
    async with app_client(database_url) as client:
        overdue = await under_review(client, headers, decided=70, appealed=65)  # due 35 days ago
        due_soon = await under_review(client, headers, decided=35, appealed=28)  # due in 2 days
        on_track = await under_review(client, headers, decided=10, appealed=5)  # due in 25 days
        await client.post("/v1/complaints", json=complaint(), headers=headers)  # not reviewed

        async def found(**params: str) -> list[str]:
            listed = await client.get("/v1/complaints", params=params, headers=headers)
            assert listed.status_code == 200, listed.text
            return [item["id"] for item in listed.json()["items"]]

        assert await found(review_clock="overdue") == [overdue]
        assert await found(review_clock="due_soon") == [due_soon]
        assert await found(review_clock="on_track") == [on_track]
        assert await found(clock="overdue") == []  # their handling clocks were met
        document = (await client.get(f"/v1/complaints/{overdue}", headers=headers)).json()
        assert document["review"]["due_on"] == days_ago(35)
        refused = await client.get(
            "/v1/complaints", params={"review_clock": "met"}, headers=headers
        )
        assert refused.status_code == 422
