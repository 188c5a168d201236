"""`complaintcore serve --workers 2` (issue 16, item 1): two API processes answer on one port,
and each projection's runner is active in exactly one of them (the others stand by)."""

import json
from pathlib import Path

import asyncpg

from complaintcore.projections.runner import lock_key
from testsupport import live_service

_RUNNER_LOCK_HOLDERS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def test_two_workers_answer_and_each_runner_is_active_once(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    with live_service(database_url, {}, tmp_path, ("--workers", "2")) as service:
        client = service.client()
        answers = [client.get("/readyz").status_code for _ in range(20)]
        projections = ("statistics", "alerts")
        holders = {
            name: await pool.fetchval(_RUNNER_LOCK_HOLDERS, *lock_key(name)) for name in projections
        }

    assert answers == [200] * 20
    assert holders == dict.fromkeys(projections, 1)
    events = [json.loads(line)["event"] for line in service.log_path.read_text().splitlines()]
    assert sum(event.startswith("Started server process") for event in events) == 2
