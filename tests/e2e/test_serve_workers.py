"""`complaintcore serve --workers 2` (issue 16, item 1): two API processes answer on one port,
and each projection's runner is active in exactly one of them (the others stand by)."""

import contextlib
import json
from pathlib import Path

import asyncpg
import psutil

from complaintcore.projections.runner import lock_key
from testsupport import live_service, serving

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


def test_the_request_workers_end_with_a_killed_serve(database_url: str, tmp_path: Path) -> None:
    """`serve --workers 2` killed with SIGKILL (which it cannot answer): its request workers
    end too, as its runner process does, and leave the port to the next `serve`."""
    with serving(database_url, tmp_path, ("--workers", "2")) as (serve, _):
        children = psutil.Process(serve.pid).children(recursive=True)
        try:
            assert len(children) >= 3  # two request workers and the runner process
            serve.kill()
            serve.wait(timeout=10)
            _, alive = psutil.wait_procs(children, timeout=20)
        finally:
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
    assert [child.pid for child in alive] == []
