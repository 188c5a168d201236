"""A command given up while it waits behind another command's commit (the statement timeout,
COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT) leaves no hold on its case: the case's lock is a session
lock, taken by that very statement, and it outlives the statement (found by a review pass: the
lock stayed on an idle pooled connection and every later command on the case waited for it
and was given up in turn, until one happened to get that connection)."""

import asyncio

import asyncpg
import pytest

from api_support import app_client, complaint, days_ago, notice
from complaintcore.api import app as app_module
from complaintcore.infra import advisory_locks
from projection_support import tree_and_tokens

TIMEOUT_S = 1.0
_HOLDERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND classid = $1 AND objid = hashtext($2)::oid AND granted
"""


async def test_a_command_timed_out_behind_a_slow_commit_leaves_the_case_usable(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "service_command_timeout", lambda: TIMEOUT_S)
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    headers = {"Authorization": f"Bearer {tokens['staff']}"}
    body = {"subject": "progress", "notice": notice(days_ago(0))}
    async with app_client(database_url) as client:
        created = await client.post("/v1/complaints", json=complaint(), headers=headers)
        case_id = created.json()["id"]
        # A predecessor whose write released the case lock, and whose commit hangs (a stalled
        # WAL flush, a synchronous standby gone): its case row stays locked meanwhile.
        holder = await asyncpg.connect(database_url)
        committing = await asyncpg.connect(database_url)
        try:
            await holder.execute(
                "SELECT pg_advisory_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
            )
            slow_commit = committing.transaction()
            await slow_commit.start()
            await committing.execute("SELECT FROM case_view WHERE case_id = $1 FOR UPDATE", case_id)

            async def predecessor_releases_its_lock() -> None:
                await asyncio.sleep(0.3)
                await holder.execute("SELECT pg_advisory_unlock_all()")

            queued, _ = await asyncio.gather(
                client.post(f"/v1/complaints/{case_id}/notify", json=body, headers=headers),
                predecessor_releases_its_lock(),
            )
            assert queued.status_code == 503, queued.text  # given up after TIMEOUT_S
            await slow_commit.rollback()
        finally:
            await committing.close()
            await holder.close()

        watcher = await asyncpg.connect(database_url)
        try:
            assert await watcher.fetchval(_HOLDERS, advisory_locks.CASE_COMMANDS, case_id) == 0
        finally:
            await watcher.close()
        later = await asyncio.gather(
            *(
                client.post(f"/v1/complaints/{case_id}/notify", json=body, headers=headers)
                for _ in range(4)
            )
        )
        assert [response.status_code for response in later] == [200] * 4
