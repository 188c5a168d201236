"""API.md: "The same key with the same body returns the first response again and stores nothing
new", also when the copy comes while the first is committing. A command's write frees the case's
lock before its commit, so a copy can read the case without the first's events, decide, and meet
them as it appends: with If-Match it was answered 412 (found by a review pass: 18 to 31 rounds
in 60). Commits are slowed here as a slow WAL flush would (`commit_delay`)."""

import asyncio
from collections.abc import Awaitable

import httpx

from api_support import app_client, complaint, days_ago, notice
from projection_support import tree_and_tokens

ROUNDS = 20
COMMIT_DELAY_US = 50_000


async def sent_after(delay_s: float, request: Awaitable[httpx.Response]) -> httpx.Response:
    await asyncio.sleep(delay_s)
    return await request


async def test_a_copy_sent_while_the_first_commits_gets_the_first_response(
    database_url: str,
) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    auth = {"Authorization": f"Bearer {tokens['staff']}"}
    joint = "&" if "?" in database_url else "?"
    slow_commits = f"{database_url}{joint}commit_delay={COMMIT_DELAY_US}&commit_siblings=0"
    body = {"subject": "progress", "notice": notice(days_ago(0))}
    async with app_client(slow_commits) as client:
        for round_number in range(ROUNDS):
            case = (await client.post("/v1/complaints", json=complaint(), headers=auth)).json()
            url = f"/v1/complaints/{case['id']}/notify"
            headers = {
                **auth,
                "Idempotency-Key": f"copy-{round_number}",
                "If-Match": f'"{case["version"]}"',
            }

            first, copy = await asyncio.gather(
                client.post(url, json=body, headers=headers),
                sent_after(round_number % 5 * 0.01, client.post(url, json=body, headers=headers)),
            )
            assert first.status_code == 200, first.text
            assert copy.status_code == 200, f"round {round_number}: {copy.text}"
            assert copy.json() == first.json()
            events = (await client.get(f"/v1/complaints/{case['id']}/events", headers=auth)).json()
            assert [event["type"] for event in events].count("ComplainantNotified") == 1
