"""The runners out of the request process (issue 17, item 2; README "The runner process").

- `complaintcore serve` (by default, `--runners separate`) supervises one `complaintcore runners`
  child: its projection runners hold the runner locks (no request worker does: the lock holders'
  sessions are the child's, named after the `serve`), alerts from real commands reach a receiver
  on loopback through its fan-out and dispatcher, and the statistics follow the feed;
  `GET /v1/projections` and `/v1/projections/webhooks` say "here".
- The child killed with SIGKILL is restarted, and the work resumes.
- `serve` stopped with SIGTERM stops its child first; `serve` killed with SIGKILL takes it along
  (the child gets SIGTERM from the kernel), so no runner lock outlives the deployment.
- `serve --runners in-process` keeps the old way: no child, the request worker runs them.
- `complaintcore runners` alone beside `serve --runners none` does the same work; stopped with
  SIGTERM it hands its locks back and exits 0.
- `COMPLAINTCORE_RUNNER_PROCESSES=2`: two children, one active runner a projection, both
  sending webhooks, both stopped with `serve`.

Every wait is bounded."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from api_support import TODAY, complaint
from complaintcore.auth.tokens import create_token
from complaintcore.cli.runner_supervisor import RUNNER_PARENT_VARIABLE
from complaintcore.infra import advisory_locks
from complaintcore.infra.database import create_pool
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import LiveService, free_port, live_service, master_key_env
from webhook_support import Receiver, serve_process, verify_signature, wait_for

ENV = {
    "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "COMPLAINTCORE_WEBHOOK_POLL": "0.05",
    "COMPLAINTCORE_PROJECTION_POLL": "0.05",
    "COMPLAINTCORE_PROJECTION_STANDBY": "0.2",
}
JOINT = {"complainants": 20, "representatives": ["王五", "赵六"]}

# every session holding a projection runner's lock, with its name
_RUNNER_LOCKS = """
SELECT l.objid::bigint AS key, l.pid, a.application_name
FROM pg_locks AS l LEFT JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
  AND l.classid = $1::bigint::oid
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def runner_locks(database_url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(_RUNNER_LOCKS, advisory_locks.PROJECTION_RUNNER)
    finally:
        await connection.close()


async def both_runners_held(database_url: str) -> list[asyncpg.Record] | None:
    locks = await runner_locks(database_url)
    return locks if len(locks) == 2 else None


def log_events(log_path: Path, event: str) -> list[dict[str, Any]]:
    found = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            found.append(record)
    return found


def spawned_pids(log_path: Path) -> list[int]:
    return [record["pid"] for record in log_events(log_path, "runner process spawned")]


def is_runner_process(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"runners" in command


def subscribe(service: LiveService, url: str) -> dict[str, Any]:
    with service.client("admin") as admin:
        created = admin.post(
            "/v1/webhooks", json={"url": url, "institution": "HO", "events": ["*"]}
        )
    assert created.status_code == 201, created.text
    return created.json()


def unsubscribe(service: LiveService, webhook: dict[str, Any]) -> None:
    with service.client("admin") as admin:
        assert admin.delete(f"/v1/webhooks/{webhook['id']}").status_code == 204


def receive_joint(service: LiveService) -> dict[str, Any]:
    body = complaint("BR-A", received_days_ago=0, channel="in_person", joint=JOINT)
    with service.client("staff_a") as staff:
        response = staff.post("/v1/complaints", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def delivered(receiver: Receiver, case_id: str, secret: str) -> None:
    """The case's `case.received` and `case.major` reach the receiver, signed (bounded)."""

    def events() -> set[str]:
        return {r.json["event"] for r in list(receiver.received) if r.json["case_id"] == case_id}

    await wait_for(lambda: {"case.received", "case.major"} <= events(), timeout_s=30)
    for received in list(receiver.received):
        assert verify_signature(secret, received)


async def statistics_received(service: LiveService) -> int:
    def read() -> int:
        with service.client("supervisor_ho") as supervisor:
            response = supervisor.get(
                "/v1/institutions/HO/statistics",
                params={"from": TODAY.isoformat(), "to": TODAY.isoformat()},
            )
        assert response.status_code == 200, response.text
        return response.json()["total"]["figures"]["received"]

    return await asyncio.to_thread(read)


async def settled(service: LiveService, runner: str, workers: str) -> None:
    """Both projections caught up and their runner where expected; the webhook workers too."""

    def check() -> bool:
        with service.client("regulator") as regulator:
            projections = regulator.get("/v1/projections").json()["projections"]
            webhooks = regulator.get("/v1/projections/webhooks").json()
        return (
            all(p["lag_events"] == 0 and p["runner"] == runner for p in projections)
            and webhooks["workers"] == workers
            and webhooks["fanout"]["lag_alerts"] == 0
        )

    await wait_for(lambda: asyncio.to_thread(check), timeout_s=30)


@pytest.fixture(scope="module")
def supervised(
    module_database_url: str, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    folder = tmp_path_factory.mktemp("runner-process")
    with live_service(module_database_url, tokens, folder, **ENV) as service:
        yield service


async def test_serve_runs_the_runners_in_a_child_process_and_no_request_worker_holds_a_lock(
    supervised: LiveService,
) -> None:
    locks = await wait_for(lambda: both_runners_held(supervised.database_url), timeout_s=30)
    # the last spawned: with pytest-xdist's work stealing, the test that kills the child may
    # have run first on this worker's serve
    child = spawned_pids(supervised.log_path)[-1]
    assert is_runner_process(child)
    # the holders are the child's sessions, named after the serve; the API's are not
    names = {lock["application_name"] for lock in locks}
    assert len(names) == 1 and next(iter(names)).startswith("complaintcore runners ")
    with Receiver() as receiver:
        webhook = subscribe(supervised, receiver.url)
        before = await statistics_received(supervised)
        case = receive_joint(supervised)
        await delivered(receiver, case["id"], webhook["secret"])
        unsubscribe(supervised, webhook)
    await wait_for(lambda: _equals(statistics_received(supervised), before + 1), timeout_s=30)
    await settled(supervised, runner="here", workers="here")
    started = log_events(supervised.log_path, "runner process started")
    assert started and started[-1]["pid"] == child


async def test_the_child_killed_is_restarted_and_the_work_resumes(
    supervised: LiveService,
) -> None:
    await wait_for(lambda: both_runners_held(supervised.database_url), timeout_s=30)
    first = spawned_pids(supervised.log_path)[-1]
    os.kill(first, signal.SIGKILL)
    restarted = await wait_for(
        lambda: [pid for pid in spawned_pids(supervised.log_path) if pid != first], timeout_s=30
    )
    assert is_runner_process(restarted[-1])
    assert log_events(supervised.log_path, "runner process exited; restarting")[-1]["code"] == (
        -signal.SIGKILL
    )
    await wait_for(lambda: both_runners_held(supervised.database_url), timeout_s=30)
    with Receiver() as receiver:
        webhook = subscribe(supervised, receiver.url)
        case = receive_joint(supervised)
        await delivered(receiver, case["id"], webhook["secret"])
        unsubscribe(supervised, webhook)
    await settled(supervised, runner="here", workers="here")


async def test_serve_stopped_with_sigterm_stops_its_runner_process(
    database_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "serve.log"
    with serve_process(database_url, tmp_path, log_path, **ENV) as (process, _):
        await wait_for(lambda: both_runners_held(database_url), timeout_s=30)
        [child] = spawned_pids(log_path)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
    assert code == 128 + signal.SIGTERM
    assert not is_runner_process(child)
    assert await runner_locks(database_url) == []
    [stopped] = [r for r in log_events(log_path, "runner process stopped") if "pid" in r]
    assert (stopped["pid"], stopped["code"]) == (child, 0)  # it stopped on its own, cleanly


async def test_serve_killed_takes_its_runner_process_along(
    database_url: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "serve.log"
    with serve_process(database_url, tmp_path, log_path, **ENV) as (process, _):
        await wait_for(lambda: both_runners_held(database_url), timeout_s=30)
        [child] = spawned_pids(log_path)
        process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(process.wait, 10)
        await wait_for(lambda: not is_runner_process(child), timeout_s=10)
    await wait_for(_no_runner_locks(database_url), timeout_s=10)


def _no_runner_locks(database_url: str) -> Any:
    async def check() -> bool:
        return await runner_locks(database_url) == []

    return check


async def test_serve_with_runners_in_process_runs_them_in_its_worker(
    database_url: str, tmp_path: Path
) -> None:
    tokens = await _tree_and_tokens(database_url)
    with live_service(
        database_url, tokens, tmp_path, ("--runners", "in-process"), **ENV
    ) as service:
        locks = await wait_for(lambda: both_runners_held(database_url), timeout_s=30)
        assert not any(
            (lock["application_name"] or "").startswith("complaintcore runners") for lock in locks
        )
        assert spawned_pids(service.log_path) == []
        await settled(service, runner="here", workers="here")


async def test_runners_alone_beside_serve_with_runners_none_do_the_work(
    database_url: str, tmp_path: Path
) -> None:
    tokens = await _tree_and_tokens(database_url)
    env = {**ENV, "COMPLAINTCORE_RUNNERS": "none"}
    with live_service(database_url, tokens, tmp_path, **env) as service:
        await asyncio.sleep(1.0)
        assert await runner_locks(database_url) == []  # nobody runs them yet
        assert spawned_pids(service.log_path) == []
        await settled(service, runner="none", workers="none")
        log_path = tmp_path / "runners.log"
        with _runners_alone(database_url, tmp_path, log_path) as runners:
            locks = await wait_for(lambda: both_runners_held(database_url), timeout_s=30)
            assert all(
                lock["application_name"].startswith("complaintcore runners ") for lock in locks
            )
            with Receiver() as receiver:
                webhook = subscribe(service, receiver.url)
                case = receive_joint(service)
                await delivered(receiver, case["id"], webhook["secret"])
            await settled(service, runner="elsewhere", workers="elsewhere")
            runners.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(runners.wait, 30) == 0
        assert await runner_locks(database_url) == []  # handed back at once
    assert log_events(log_path, "runner process stopped")


async def test_serve_with_two_runner_processes_runs_both_and_each_runner_once(
    database_url: str, tmp_path: Path
) -> None:
    """`COMPLAINTCORE_RUNNER_PROCESSES=2`: two children, each with its webhook workers; each
    projection's runner active in one of them only; the work done; both stop with `serve`."""
    tokens = await _tree_and_tokens(database_url)
    env = {**ENV, "COMPLAINTCORE_RUNNER_PROCESSES": "2"}
    with live_service(database_url, tokens, tmp_path, **env) as service:
        children = await wait_for(
            lambda: (pids := spawned_pids(service.log_path)) and len(pids) == 2 and pids,
            timeout_s=30,
        )
        assert len(set(children)) == 2 and all(is_runner_process(pid) for pid in children)
        started = await wait_for(
            lambda: (
                (found := log_events(service.log_path, "runner process started"))
                and len(found) == 2
                and found
            ),
            timeout_s=30,
        )
        assert {record["pid"] for record in started} == set(children)
        assert all(record["webhook_workers"] for record in started)
        locks = await wait_for(lambda: both_runners_held(database_url), timeout_s=30)
        assert len({lock["key"] for lock in locks}) == 2  # one holder a projection
        with Receiver() as receiver:
            webhook = subscribe(service, receiver.url)
            case = receive_joint(service)
            await delivered(receiver, case["id"], webhook["secret"])
        await settled(service, runner="here", workers="here")
    # `serve` stopped (SIGINT): both children stopped with it, cleanly, and their locks freed
    assert not any(is_runner_process(pid) for pid in children)
    stopped = [r for r in log_events(service.log_path, "runner process stopped") if "pid" in r]
    assert {(record["pid"], record["code"]) for record in stopped} == {(pid, 0) for pid in children}
    assert await runner_locks(database_url) == []


async def _equals(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def _tree_and_tokens(database_url: str) -> dict[str, str]:
    """HO → BR-A and the tokens the test uses, in its own database."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        directory = InstitutionDirectory(pool)
        await directory.put("HO", "总行", "head_office")
        await directory.put("BR-A", "上海分行", "branch", "HO")
        return {
            "admin": await create_token(pool, "admin-r", "admin", None),
            "staff_a": await create_token(pool, "staff-r", "staff", "BR-A"),
            "regulator": await create_token(pool, "reg-r", "regulator", None),
        }
    finally:
        await pool.close()


@contextmanager
def _runners_alone(
    database_url: str, key_dir: Path, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`complaintcore runners` in a process of its own, over `database_url`."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json", **ENV)
    env.update(master_key_env(key_dir))
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "complaintcore.cli", "runners"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_a_runner_child_whose_serve_died_while_it_started_does_not_run(tmp_path: Path) -> None:
    """`serve` killed while its child was still starting (before the child asked for the death
    signal): the child, told `serve`'s pid, finds another parent and stops at once, before it
    asks for the database, rather than run on as an orphan holding the runner lock."""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nobody",  # never asked
        "COMPLAINTCORE_DATABASE_WAIT": "30",
        "COMPLAINTCORE_LOG_FORMAT": "json",
        RUNNER_PARENT_VARIABLE: str(os.getpid() + 4_000_000),  # not this child's parent
        **master_key_env(tmp_path),
    }
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "runners", "--supervised"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert "serve is gone: the runner process does not start" in finished.stderr
    assert time.monotonic() - started < 20  # it never waited for the database
