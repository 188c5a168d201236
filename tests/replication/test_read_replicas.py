"""Read replicas (issue 16, item 2): `complaintcore serve` over a primary with a hot standby in
`COMPLAINTCORE_READ_REPLICA_URLS`. Lag-tolerant reads (lists, deadlines, statistics, replay,
audit) go to the standby while it keeps up; a read carrying a command's `Consistency-Position`
is served only where that write is visible; a standby that lags beyond the setting or fails is
skipped (and shows so in /readyz and /metrics); the global feed stays on the primary, so a
transaction held open there still holds the feed back."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api_support import complaint
from complaintcore.auth.tokens import create_token
from complaintcore.events.model import EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.read_replicas import replica_name
from complaintcore.reference.institutions import InstitutionDirectory
from replication.cluster import Cluster, primary_and_standby
from testsupport import live_service, master_key_env

pytestmark = pytest.mark.replication

CHECK_S = "0.2"
FEED_DATABASE = "feed_on_primary"
BOUND_S = 20.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with primary_and_standby(tmp_path_factory.mktemp("cluster"), synchronous=False) as built:
        upgrade_to_head(built.primary_url)
        yield built


@pytest.fixture(scope="module")
def serve_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the module's `serve` runs: they share the database, so its master key."""
    return tmp_path_factory.mktemp("serve")


@pytest.fixture(scope="module")
def tokens(cluster: Cluster) -> dict[str, str]:
    return _tokens_on(cluster, cluster.primary_url)


def _tokens_on(cluster: Cluster, primary_url: str) -> dict[str, str]:
    async def make() -> dict[str, str]:
        pool = await create_pool(primary_url, min_size=1, max_size=2)
        try:
            directory = InstitutionDirectory(pool)
            await directory.put("HO", "总行", "head_office")
            await directory.put("BR-A", "上海分行", "branch", "HO")
            return {
                "staff": await create_token(pool, "staff-a1", "staff", "BR-A"),
                "regulator": await create_token(pool, "regulator-1", "regulator", None),
            }
        finally:
            await pool.close()

    made = asyncio.run(make())
    cluster.wait_replayed(cluster.primary_lsn())
    return made


def _serving(
    cluster: Cluster,
    tokens: dict[str, str],
    folder: Path,
    max_lag_s: str,
    database: str | None = None,
) -> Any:
    database = database or cluster.database
    return live_service(
        cluster.primary.url(database),
        tokens,
        folder,
        COMPLAINTCORE_READ_REPLICA_URLS=cluster.standby.url(database),
        COMPLAINTCORE_READ_REPLICA_CHECK=CHECK_S,
        COMPLAINTCORE_READ_REPLICA_MAX_LAG=max_lag_s,
    )


def _client(base_url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _wait_for(condition: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + BOUND_S
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"not within {BOUND_S:g} s: {what}")


def _replica_state(client: httpx.Client) -> dict[str, Any]:
    [replica] = client.get("/readyz").json()["replicas"]
    return replica


def _listed(client: httpx.Client, **headers: str) -> set[str]:
    response = client.get("/v1/complaints", params={"limit": 500}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def _receive(client: httpx.Client) -> tuple[str, str]:
    response = client.post("/v1/complaints", json=complaint("BR-A"))
    assert response.status_code == 201, response.text
    return response.json()["id"], response.headers["Consistency-Position"]


def test_reads_go_to_the_standby_and_a_client_reads_its_own_write(
    cluster: Cluster, tokens: dict[str, str], serve_dir: Path
) -> None:
    with (
        _serving(cluster, tokens, serve_dir, max_lag_s="3600") as service,
        _client(service.base_url, tokens["staff"]) as staff,
    ):
        first, _ = _receive(staff)
        cluster.wait_replayed(cluster.primary_lsn())
        _wait_for(lambda: _replica_state(staff)["state"] == "ok", "the standby in use")
        assert first in _listed(staff)

        cluster.pause_replay()
        try:
            second, position = _receive(staff)
            # the standby (within the lag allowed) answers: it has not replayed the second case
            listed = _listed(staff)
            assert first in listed and second not in listed
            deadlines = staff.get("/v1/deadlines", params={"limit": 500})
            assert second not in {item["id"] for item in deadlines.json()["items"]}
            # the client's own write: read where it is visible (the primary)
            assert second in _listed(staff, **{"Consistency-Position": position})
            own = staff.get(f"/v1/complaints/{second}/events")  # not on the standby: primary
            assert own.status_code == 200 and len(own.json()) == 1
            audit = staff.get(
                f"/v1/complaints/{second}/audit", headers={"Consistency-Position": position}
            )
            assert audit.status_code == 200 and audit.json()["chain"]["intact"] is True
            state = _wait_for(
                lambda: (r := _replica_state(staff))["lag_bytes"] and r, "a measured lag"
            )
            assert state["state"] == "ok" and state["lag_bytes"] > 0
            assert state["name"] == replica_name(cluster.standby_url)
        finally:
            cluster.resume_replay()
        _wait_for(lambda: second in _listed(staff), "the standby caught up")


def test_a_bad_consistency_position_is_refused(
    cluster: Cluster, tokens: dict[str, str], serve_dir: Path
) -> None:
    with (
        _serving(cluster, tokens, serve_dir, max_lag_s="5") as service,
        _client(service.base_url, tokens["staff"]) as staff,
    ):
        for bad in ("abc", "-1", "0", "1.5", "99999999999999999999"):
            response = staff.get("/v1/complaints", headers={"Consistency-Position": bad})
            assert response.status_code == 422, bad
            assert response.headers["content-type"].startswith("application/problem+json")


def test_a_standby_lagging_beyond_the_setting_is_skipped(
    cluster: Cluster, tokens: dict[str, str], serve_dir: Path
) -> None:
    with (
        _serving(cluster, tokens, serve_dir, max_lag_s="1") as service,
        _client(service.base_url, tokens["staff"]) as staff,
    ):
        _wait_for(lambda: _replica_state(staff)["state"] == "ok", "the standby in use")
        cluster.pause_replay()
        try:
            late, _ = _receive(staff)
            state = _wait_for(
                lambda: (r := _replica_state(staff))["state"] == "lagging" and r, "lagging"
            )
            assert state["lag_s"] > 1
            assert late in _listed(staff)  # the primary answers
            series = _metric_samples(service.base_url)
            name = replica_name(cluster.standby_url)
            assert series[("complaintcore_read_replica_serving", name)] == 0
            assert series[("complaintcore_read_replica_lag_seconds", name)] > 1
        finally:
            cluster.resume_replay()
        _wait_for(lambda: _replica_state(staff)["state"] == "ok", "back in use")
        series = _metric_samples(service.base_url)
        assert series[("complaintcore_read_replica_serving", replica_name(cluster.standby_url))]


def test_a_failed_standby_is_skipped_and_taken_back(
    cluster: Cluster, tokens: dict[str, str], serve_dir: Path
) -> None:
    with (
        _serving(cluster, tokens, serve_dir, max_lag_s="5") as service,
        _client(service.base_url, tokens["staff"]) as staff,
    ):
        _wait_for(lambda: _replica_state(staff)["state"] == "ok", "the standby in use")
        cluster.stop_standby()
        try:
            # whether a read meets the stopped standby or the check saw it first, it is answered
            after_stop, _ = _receive(staff)
            assert after_stop in _listed(staff)
            assert staff.get("/readyz").status_code == 200
            _wait_for(lambda: _replica_state(staff)["state"] == "down", "marked down")
            assert after_stop in _listed(staff)
        finally:
            cluster.start_standby()
        cluster.wait_replayed(cluster.primary_lsn())
        _wait_for(lambda: _replica_state(staff)["state"] == "ok", "taken back")
        assert after_stop in _listed(staff)


def test_the_feed_stays_on_the_primary_and_waits_for_a_late_commit(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Advisory-lock floors live on the primary only: the feed is read there, so with the
    standby behind it still shows the newest event, and a transaction held open on the primary
    still holds back the events after its position. (A database of its own: its probe events
    are no case's.)"""
    cluster.sql(cluster.primary, f'CREATE DATABASE "{FEED_DATABASE}"')
    upgrade_to_head(cluster.primary.url(FEED_DATABASE))
    tokens = _tokens_on(cluster, cluster.primary.url(FEED_DATABASE))
    with (
        _serving(cluster, tokens, tmp_path, "3600", FEED_DATABASE) as service,
        _client(service.base_url, tokens["staff"]) as staff,
        _client(service.base_url, tokens["regulator"]) as regulator,
    ):
        _wait_for(lambda: _replica_state(staff)["state"] == "ok", "the standby in use")
        head = regulator.get("/v1/events", params={"after": 0, "limit": 5000}).json()
        after = head["next_after"]
        cluster.pause_replay()
        try:
            newest, _ = _receive(staff)
            feed = regulator.get("/v1/events", params={"after": after}).json()["items"]
            assert [event["stream_id"] for event in feed] == [newest]
            primary_url = cluster.primary.url(FEED_DATABASE)
            asyncio.run(_held_open_holds_the_feed(primary_url, regulator, feed[-1]["position"]))
        finally:
            cluster.resume_replay()


async def _held_open_holds_the_feed(primary_url: str, regulator: httpx.Client, after: int) -> None:
    pool = await create_pool(primary_url, min_size=2, max_size=4)
    store = PostgresEventStore(pool)
    try:
        async with pool.acquire() as slow:
            transaction = slow.transaction()
            await transaction.start()
            held = await store.append("held-open", [_event()], expected_version=0, connection=slow)
            quick = await store.append("committed", [_event()], expected_version=0)
            assert quick.positions[0] > held.positions[0]
            feed = await asyncio.to_thread(_feed_after, regulator, after)
            assert feed == []
            await transaction.commit()
        feed = await asyncio.to_thread(_feed_after, regulator, after)
        assert feed == [held.positions[0], quick.positions[0]]
    finally:
        await pool.close()


def _feed_after(regulator: httpx.Client, after: int) -> list[int]:
    response = regulator.get("/v1/events", params={"after": after})
    assert response.status_code == 200, response.text
    return [event["position"] for event in response.json()["items"]]


def _event() -> NewEvent:
    return NewEvent("ReplicationProbe", {"n": 1}, metadata=EventMetadata(actor_id="u1"))


def _metric_samples(base_url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{base_url}/metrics", timeout=10).text
    samples: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if "replica" in sample.labels:
                samples[(sample.name, sample.labels["replica"])] = sample.value
    return samples


def _rebuild(cluster: Cluster, serve_dir: Path, read_from: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DATABASE_URL=cluster.primary_url, **master_key_env(serve_dir))
    return subprocess.run(
        [
            *(sys.executable, "-m", "complaintcore.cli", "projections", "rebuild", "case_view"),
            *("--restart", "--workers", "2", "--read-from", read_from),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_rebuild_reads_the_events_from_the_standby(
    cluster: Cluster, tokens: dict[str, str], serve_dir: Path
) -> None:
    with (
        _serving(cluster, tokens, serve_dir, max_lag_s="5") as service,
        _client(service.base_url, tokens["staff"]) as staff,
    ):
        for _ in range(3):
            _receive(staff)
        before = _listed(staff, **{"Consistency-Position": _receive(staff)[1]})
    done = _rebuild(cluster, serve_dir, cluster.standby_url)
    assert done.returncode == 0, done.stderr
    assert "case_view: rebuilt" in done.stdout
    rebuilt = cluster.sql(cluster.primary, "SELECT count(*) FROM case_view")
    assert int(rebuilt) == len(before)


def test_a_rebuild_refuses_to_read_from_a_server_that_is_no_standby(
    cluster: Cluster, tokens: dict[str, str], serve_dir: Path
) -> None:
    done = _rebuild(cluster, serve_dir, cluster.primary_url)
    assert done.returncode == 1
    assert "is not a standby" in done.stderr
