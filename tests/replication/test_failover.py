"""Failover (issue 16, item 3): `complaintcore serve` on a multi-host `DATABASE_URL`
(`target_session_attrs=read-write`) over a primary and a synchronous streaming standby. Under a
load of complaints received by several clients, the primary is killed with SIGKILL and the
standby promoted: every complaint answered 201 is on the promoted standby (a synchronous standby
loses no acknowledged commit), and the same service process, never restarted, takes commands
again within a bound, its pool and its projection runners reconnected to the new primary by
themselves."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from api_support import complaint
from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool
from complaintcore.infra.migrations import head_revision
from complaintcore.projections.runner import runner_backend_pid
from complaintcore.reference.institutions import InstitutionDirectory
from replication.cluster import Cluster, ClusterError, primary_and_standby
from testsupport import LiveService, live_service

pytestmark = pytest.mark.replication

CLIENTS = 4
LOAD_BEFORE_KILL_S = 2.0
LOAD_AFTER_RECOVERY_S = 2.0
RECOVERY_BOUND_S = 30.0
"""How long after the promotion the service may take to answer a command again."""
NO_PRIMARY_S = 1.0
"""How long after the primary fails the standby is promoted."""
HUNG_RECOVERY_BOUND_S = 20.0
"""The same for a primary that hangs: time for the service to give up on its connections."""
REQUEST_TIMEOUT_S = 20.0


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (the error's type in `error`)
    case_id: str | None = None
    error: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def acknowledged(self) -> list[str]:
        return [o.case_id for o in self.outcomes if o.status == 201 and o.case_id]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with primary_and_standby(tmp_path, synchronous=True) as built:
        yield built


def _migrate(database_url: str) -> None:
    """`complaintcore migrate` with the multi-host URL, as an operator runs it."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["DATABASE_URL"] = database_url
    done = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


async def _staff_token(database_url: str) -> str:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        directory = InstitutionDirectory(pool)
        await directory.put("HO", "总行", "head_office")
        await directory.put("BR-A", "上海分行", "branch", "HO")
        return await create_token(pool, "staff-a1", "staff", "BR-A")
    finally:
        await pool.close()


async def _client_loop(client: httpx.AsyncClient, load: Load) -> None:
    while not load.stop.is_set():
        started = time.monotonic()
        try:
            response = await client.post("/v1/complaints", json=complaint("BR-A"))
        except httpx.HTTPError as error:
            load.outcomes.append(Outcome(started, time.monotonic(), None, error=repr(error)))
            await asyncio.sleep(0.05)
            continue
        outcome = Outcome(started, time.monotonic(), response.status_code)
        if response.status_code == 201:
            outcome.case_id = response.json()["id"]
        else:
            outcome.error = response.text[:300]
            await asyncio.sleep(0.05)  # as a client honouring Retry-After would, but sooner
        load.outcomes.append(outcome)


async def _wait_until(
    condition: Callable[[], Awaitable[bool]],
    timeout_s: float,
    what: str,
    explain: Callable[[], str] = str,
) -> float:
    """Seconds until the async `condition()` held; fails the test after `timeout_s`, with
    what `explain()` says."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if await condition():
                return time.monotonic() - started
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"not within {timeout_s:g} s: {what}\n{explain()}")


def _explained(service: LiveService, load: Load) -> Callable[[], str]:
    """What the clients got and the end of the service's log, for a failure's message."""

    def explain() -> str:
        statuses = Counter(o.status for o in load.outcomes)
        errors = Counter(o.error[:120] for o in load.outcomes if o.error)
        log = service.log_path.read_text(errors="replace").splitlines()
        log_tail = "\n".join(line[:400] for line in log[-25:])
        return (
            f"outcomes by status: {dict(statuses)}\nerrors: {errors.most_common(5)}\n"
            f"--- serve log (last 25 lines) ---\n{log_tail}"
        )

    return explain


async def _statistics_caught_up_on(database_url: str) -> bool:
    connection = await asyncpg.connect(database_url, timeout=5)
    try:
        holder = await runner_backend_pid(connection, "statistics")
        behind = await connection.fetchval(
            "SELECT count(*) FROM events WHERE position >"
            " (SELECT position FROM projection_checkpoints WHERE name = 'statistics')"
        )
        return holder is not None and behind == 0
    finally:
        await connection.close()


def _kill_whole_server(cluster: Cluster) -> None:
    cluster.kill_primary()


def _kill_postmaster(cluster: Cluster) -> None:
    cluster.kill_primary(postmaster_only=True)


def _freeze(cluster: Cluster) -> None:
    cluster.freeze(cluster.primary)


@pytest.mark.parametrize(
    "fail_primary",
    [_kill_whole_server, _kill_postmaster],
    ids=["whole-server-killed", "postmaster-killed"],
)
async def test_a_killed_primary_loses_no_acknowledged_command_and_the_service_carries_on(
    cluster: Cluster, tmp_path: Path, fail_primary: Callable[[Cluster], None]
) -> None:
    """`whole-server-killed`: SIGKILL to the postmaster and its backends at once, as a host
    that dies; `postmaster-killed`: to the postmaster alone, its backends ending as they notice
    (a commit waiting for the standby's confirmation ends unconfirmed)."""
    await _fail_over(cluster, tmp_path, fail_primary)


async def test_a_hung_primary_is_left_for_the_promoted_standby(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The primary hangs instead of dying (SIGSTOP: its connections stay open, nothing
    answers, as behind a partition or on a paused machine) and the standby is promoted: the
    service must give up on the hung connections and find the new primary by itself."""
    await _fail_over(cluster, tmp_path, _freeze, recovery_bound_s=HUNG_RECOVERY_BOUND_S, hangs=True)


async def _fail_over(
    cluster: Cluster,
    tmp_path: Path,
    fail_primary: Callable[[Cluster], None],
    *,
    recovery_bound_s: float = RECOVERY_BOUND_S,
    hangs: bool = False,
) -> None:
    """Receive complaints from `CLIENTS` clients through `serve` on the multi-host URL; after
    `LOAD_BEFORE_KILL_S`, `fail_primary`, wait `NO_PRIMARY_S` and promote the standby; then
    check the outcome. `hangs`: the failed primary leaves commands hanging rather than refused,
    so none need be answered while there is no primary."""
    await asyncio.to_thread(_migrate, cluster.multi_host_url)
    token = await _staff_token(cluster.primary_url)
    serve_dir = tmp_path / "serve"
    serve_dir.mkdir()
    with live_service(
        cluster.multi_host_url,
        {"staff": token},
        serve_dir,
        COMPLAINTCORE_PROJECTION_POLL="0.1",
        COMPLAINTCORE_PROJECTION_STANDBY="0.5",
        # a hung primary is given up after these (each host its own connect timeout)
        COMPLAINTCORE_DATABASE_CONNECT_TIMEOUT="2",
        COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT="3",
    ) as service:
        load = Load()
        explain = _explained(service, load)
        async with service.async_client("staff") as client:
            client.timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
            clients = [asyncio.create_task(_client_loop(client, load)) for _ in range(CLIENTS)]
            try:
                await asyncio.sleep(LOAD_BEFORE_KILL_S)
                failed_at = time.monotonic()
                await asyncio.to_thread(fail_primary, cluster)
                gone_at = time.monotonic()
                # no primary for a while, as before a failover manager promotes (the standby
                # up but read-only: the pool must refuse it)
                await asyncio.sleep(NO_PRIMARY_S)
                promoting_at = time.monotonic()
                await asyncio.to_thread(cluster.promote_standby)
                promoted_at = time.monotonic()
                await _wait_until(
                    lambda: _answered_after(load, promoted_at),
                    recovery_bound_s,
                    "a complaint received (201) after the promotion",
                    explain,
                )
                await asyncio.sleep(LOAD_AFTER_RECOVERY_S)
            finally:
                # fence the old primary, as a failover manager must: a hung one is killed, so
                # no connection to it outlives the test
                await asyncio.to_thread(_fence, cluster)
                load.stop.set()
                await asyncio.gather(*clients, return_exceptions=True)

            # the same process, not restarted, takes a command on a case from before the
            # failure and reads it back
            before = [o for o in load.outcomes if o.status == 201 and o.ended < failed_at]
            assert before, "no complaint was received before the primary failed"
            old_case = before[0].case_id
            assigned = await client.post(
                f"/v1/complaints/{old_case}/assign", json={"handler_id": "staff-a1"}
            )
            assert assigned.status_code == 200, assigned.text
            events = await client.get(f"/v1/complaints/{old_case}/events")
            assert events.status_code == 200, events.text
            assert [e["type"] for e in events.json()] == ["ComplaintReceived", "HandlerAssigned"]
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text

        await _check_outcomes(cluster, service, load, failed_at)
        # with no primary, commands were refused as the outage they are
        without_primary = [
            o for o in load.outcomes if gone_at <= o.started and o.ended <= promoting_at
        ]
        assert without_primary or hangs, "no command was answered while there was no primary"
        assert {o.status for o in without_primary} <= {503}
        # the projection runners found the new primary by themselves too
        await _wait_until(
            lambda: _statistics_caught_up_on(cluster.standby_url),
            RECOVERY_BOUND_S,
            "the statistics runner active on the new primary and caught up",
            explain,
        )
    first_201 = min(o.ended for o in load.outcomes if o.status == 201 and o.started >= promoted_at)
    print(
        f"\nfailover: {len(load.acknowledged())} complaints acknowledged,"
        f" {sum(o.status != 201 for o in load.outcomes)} refused or failed;"
        f" {promoted_at - failed_at:.2f} s from the failure to the promotion"
        f" ({len(without_primary)} answered 503 meanwhile),"
        f" a 201 again {first_201 - promoted_at:.2f} s after it"
    )


def _fence(cluster: Cluster) -> None:
    with contextlib.suppress(ClusterError):  # dead already
        cluster.kill_primary()


async def _answered_after(load: Load, promoted_at: float) -> bool:
    return any(o.status == 201 and o.started >= promoted_at for o in load.outcomes)


async def _check_outcomes(
    cluster: Cluster, service: LiveService, load: Load, failed_at: float
) -> None:
    # the failure came mid-load: requests were in flight when it landed
    assert any(o.started < failed_at < o.ended for o in load.outcomes), "nothing in flight"
    # a refusal during the outage is the outage's: 503 `database_unavailable`, never a 500 or
    # a request left hanging
    unexpected = [o for o in load.outcomes if o.status not in (201, 503)]
    assert not unexpected, unexpected[:5]
    acknowledged = load.acknowledged()
    assert len(set(acknowledged)) == len(acknowledged)
    # every complaint answered 201 is on the promoted standby, with the schema of the primary
    connection = await asyncpg.connect(cluster.standby_url, timeout=10)
    try:
        assert not await connection.fetchval("SELECT pg_is_in_recovery()")
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == (
            head_revision()
        )
        found = await connection.fetch(
            "SELECT stream_id FROM events WHERE version = 1 AND stream_id = ANY($1::text[])",
            acknowledged,
        )
    finally:
        await connection.close()
    missing = set(acknowledged) - {row["stream_id"] for row in found}
    assert not missing, f"{len(missing)} acknowledged complaints lost: {sorted(missing)[:5]}"
    # one server process all along: the service was never restarted
    assert service.log_path.read_text().count("Started server process") == 1
