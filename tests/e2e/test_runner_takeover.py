"""Two API processes on one database: exactly one projection runner is active; when its process
is killed (SIGKILL), the other takes over and the statistics carry on without counting anything
twice."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from api_support import TODAY, complaint
from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool
from complaintcore.projections import statistics
from complaintcore.projections.runner import lock_key
from complaintcore.reference.institutions import InstitutionDirectory
from projection_support import scratch_database
from testsupport import free_port, master_key_env

COMPLAINT = complaint("BR-A", received_days_ago=0)


@pytest.fixture
async def database(server_url: str, template_url: str) -> AsyncIterator[tuple[str, str, str]]:
    """A database with HO → BR-A, a supervisor's token and a regulator's (who reads the lag)."""
    async with scratch_database(server_url) as database_url:
        pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            directory = InstitutionDirectory(pool)
            await directory.put("HO", "总行", "head_office")
            await directory.put("BR-A", "上海分行", "branch", "HO")
            token = await create_token(pool, "sup-1", "supervisor", "HO")
            regulator = await create_token(pool, "reg-1", "regulator", None)
        finally:
            await pool.close()
        yield database_url, token, regulator


@contextmanager
def serving(database_url: str, log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DATABASE_URL=database_url,
        COMPLAINTCORE_LOG_FORMAT="json",
        COMPLAINTCORE_PROJECTION_POLL="0.05",
        COMPLAINTCORE_PROJECTION_STANDBY="0.2",
    )
    env.update(master_key_env(log_path.parent))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process, f"http://127.0.0.1:{port}"
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


async def test_one_runner_across_two_processes_and_a_takeover_when_it_dies(
    database: tuple[str, str, str], tmp_path: Path
) -> None:
    database_url, token, regulator = database
    headers = {"Authorization": f"Bearer {token}"}
    lag_reader = {"Authorization": f"Bearer {regulator}"}
    with ExitStack() as stack:
        first = stack.enter_context(serving(database_url, tmp_path / "first.log"))
        second = stack.enter_context(serving(database_url, tmp_path / "second.log"))
        processes = {first[1]: first[0], second[1]: second[0]}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:
            for base_url, process in processes.items():
                await _ready(client, base_url, process)
            await _receive(client, first[1], 3)
            await _receive(client, second[1], 2)

            where = await _settled(client, list(processes), lag_reader)
            assert sorted(where.values()) == ["elsewhere", "here"]
            assert await _runner_lock_holders(database_url) == 1
            active = next(url for url, runner in where.items() if runner == "here")
            standby = next(url for url in processes if url != active)

            processes[active].send_signal(signal.SIGKILL)
            processes[active].wait(timeout=10)
            await _receive(client, standby, 4)
            assert (await _settled(client, [standby], lag_reader))[standby] == "here"
            assert await _runner_lock_holders(database_url) == 1

            response = await client.get(
                f"{standby}/v1/institutions/HO/statistics",
                params={"from": TODAY.isoformat(), "to": TODAY.isoformat()},
            )
            assert response.status_code == 200, response.text
            assert response.json()["total"]["figures"]["received"] == 9


async def _ready(
    client: httpx.AsyncClient, base_url: str, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}")
        try:
            if (await client.get(f"{base_url}/readyz", timeout=2)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    pytest.fail("serve was not ready in time")


async def _receive(client: httpx.AsyncClient, base_url: str, count: int) -> None:
    for _ in range(count):
        response = await client.post(f"{base_url}/v1/complaints", json=COMPLAINT)
        assert response.status_code == 201, response.text


async def _settled(
    client: httpx.AsyncClient, base_urls: list[str], headers: dict[str, str]
) -> dict[str, str]:
    """Each process's view of the runner, once the feed is fully applied and a runner holds
    the lock (a standby may need a moment to take over)."""
    for _ in range(600):
        seen = {}
        for base_url in base_urls:
            response = await client.get(f"{base_url}/v1/projections", headers=headers)
            statuses = response.json()["projections"]
            seen[base_url] = next(s for s in statuses if s["name"] == "statistics")
        if all(s["lag_events"] == 0 and s["runner"] != "none" for s in seen.values()):
            return {url: status["runner"] for url, status in seen.items()}
        await asyncio.sleep(0.1)
    pytest.fail(f"the projection never settled: {seen}")


async def _runner_lock_holders(database_url: str) -> int:
    """Sessions holding the statistics runner's lock, straight from pg_locks."""
    connection = await asyncpg.connect(database_url)
    try:
        namespace, key = lock_key(statistics.NAME)
        return await connection.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2"
            " AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            namespace,
            key,
        )
    finally:
        await connection.close()
