"""`GET /v1/projections` tells "here" when the active runner is this `serve`'s child, known by
its sessions' `application_name` ("complaintcore runners <host>:<pid>", at most 63 bytes). Two pods
of one Kubernetes Deployment (names alike but for their last characters; `serve` is pid 1 in the
image) were cut to the same name, and every API pod said "here" for a runner running on one of
them (found by a review pass)."""

import asyncpg

from complaintcore.projections import statistics
from complaintcore.projections.runner import (
    RunnerProcess,
    lock_key,
    projection_lag,
    runner_process_name,
)

POD_A = "complaintcore-api-shanghai-production-7d9f8b6c4-x2k9z:1"
POD_B = "complaintcore-api-shanghai-production-7d9f8b6c4-q8w4m:1"


def test_two_serves_get_two_runner_process_names() -> None:
    assert runner_process_name(POD_A) != runner_process_name(POD_B)
    assert len(runner_process_name(POD_A).encode()) <= 63
    assert runner_process_name("host:42") == "complaintcore runners host:42"


async def test_a_runner_on_another_pod_is_elsewhere(database_url: str, pool: asyncpg.Pool) -> None:
    # the URL may carry a query string (the embedded database's socket folder)
    runner_b = await asyncpg.connect(
        database_url, server_settings={"application_name": runner_process_name(POD_B)}
    )
    try:
        assert await runner_b.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", *lock_key(statistics.NAME)
        )
        seen_from_a = await projection_lag(
            pool, statistics.NAME, RunnerProcess(runner_process_name(POD_A))
        )
    finally:
        await runner_b.close()
    assert seen_from_a["runner"] == "elsewhere"
