"""Small helpers shared by the test folders (importable as `testsupport`: pytest puts `tests/`
on the path, see `pythonpath` in pyproject.toml)."""

import asyncio
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from api_support import complaint
from complaintcore.application.master_key import case_keys_of
from complaintcore.crypto.keys import FileKeyProvider, create_master_key_file
from complaintcore.domain.events import Event
from complaintcore.events.case_keys import CaseKeys
from complaintcore.events.codec import domain_events, stream_suite
from complaintcore.events.model import StoredEvent
from complaintcore.infra.embedded_db import with_database
from complaintcore.reference.institutions import InstitutionDirectory

# One template per test run, so runs sharing a server (a developer's and CI's, or parallel
# sessions) never drop each other's template mid-run.
TEMPLATE_DATABASE = f"complaintcore_test_template_{uuid.uuid4().hex[:8]}"


def examples(count: int) -> int:
    """`count` hypothesis examples, scaled by `TEST_EXAMPLES_SCALE` (default 1) for the property
    tests that run SQL: CI's second run, on the PostgreSQL 15 service, is there to run every
    statement on that server, not to explore the rules again (`.ci/run` gives it 0.2)."""
    scale = float(os.environ.get("TEST_EXAMPLES_SCALE", "1"))
    return max(1, round(count * scale))


# The next clone of each server's template, being made while the test in hand runs: a clone
# is a few hundred milliseconds of the server writing (WAL, fsync) that the test's own work
# hides. Tasks of the run's one event loop (pytest-asyncio's session loop).
_CLONES_AHEAD: dict[str, asyncio.Task[str]] = {}


async def _clone_of_template(server_url: str) -> str:
    name = f"complaintcore_test_{uuid.uuid4().hex[:12]}"
    await admin_execute(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
    return name


@asynccontextmanager
async def database_cloned_from_template(server_url: str) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template; dropped on the way out."""
    ahead = _CLONES_AHEAD.pop(server_url, None)
    if ahead is not None and ahead.get_loop() is asyncio.get_running_loop():
        name = await ahead
    else:
        name = await _clone_of_template(server_url)
    _CLONES_AHEAD[server_url] = asyncio.create_task(_clone_of_template(server_url))
    try:
        yield with_database(server_url, name)
    finally:
        await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def drop_the_clone_made_ahead(server_url: str) -> None:
    """At the end of the run, before the template goes."""
    ahead = _CLONES_AHEAD.pop(server_url, None)
    if ahead is not None and ahead.get_loop() is asyncio.get_running_loop():
        name = await ahead
        await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def session_master_key_file() -> Path:
    """The master key every in-process service of this test run seals under (conftest sets
    COMPLAINTCORE_MASTER_KEY_FILE to it, so the app, the rebuild and the CLI find it too)."""
    return Path(os.environ["COMPLAINTCORE_MASTER_KEY_FILE"])


def session_case_keys(suite: str = "aes-256-gcm") -> CaseKeys:
    """Case keys under the run's master key, new keys for `suite`, as a service makes them."""
    return case_keys_of(FileKeyProvider(session_master_key_file()), suite)


async def opened_events(pool: asyncpg.Pool, stored: Sequence[StoredEvent]) -> list[Event]:
    """The domain events of a stored stream, its sealed fields opened with the run's key."""
    suite = stream_suite(stored)
    if suite is None:
        return domain_events(stored)
    async with pool.acquire() as connection:
        cipher = await session_case_keys().cipher_for(connection, stored[0].stream_id, suite)
    return domain_events(stored, cipher)


async def admin_execute(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def master_key_env(directory: Path, suite: str = "aes-256-gcm") -> dict[str, str]:
    """The environment that gives `complaintcore serve` a master key (which it needs when
    DATABASE_URL is set): `directory/master.key`, created on the first call, reused after."""
    path = directory / "master.key"
    if not path.exists():
        create_master_key_file(path, suite)
    return {"COMPLAINTCORE_MASTER_KEY_FILE": str(path)}


# Ports for the servers tests start: a block of its own for each pytest worker, below Linux's
# ephemeral range (32768 on), handed out in turn. Asking the kernel for any free port could give
# two servers of one test the same port (it happened), or give another worker's server, or an
# outgoing connection, the port between the probe and the server's bind.
FIRST_TEST_PORT = 20_000
PORTS_PER_WORKER = 1_000
WORKER_BLOCKS = 12  # 20000-31999; with more workers than that, blocks are shared
_ports_handed_out = itertools.count()


class ManualClock:
    """A monotonic clock the test moves by hand (`clock.now += seconds`), for code that takes a
    `clock` callable."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A loopback port nothing listens on, not handed out before by this process's last
    thousand calls, in this pytest worker's block."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    block = FIRST_TEST_PORT + PORTS_PER_WORKER * (int(worker or 0) % WORKER_BLOCKS)
    for _ in range(PORTS_PER_WORKER):
        port = block + next(_ports_handed_out) % PORTS_PER_WORKER
        if _bindable(port):
            return port
    raise RuntimeError(f"no free port in {block}-{block + PORTS_PER_WORKER - 1}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class LiveService:
    base_url: str
    database_url: str
    tokens: dict[str, str]
    log_path: Path

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def async_client(self, who: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        limits = httpx.Limits(max_connections=100)
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60, limits=limits)


SERVE_READY_TIMEOUT_S = 60


@contextmanager
def live_service(
    database_url: str,
    tokens: dict[str, str],
    log_dir: Path,
    serve_args: tuple[str, ...] = (),
    **extra_env: str,
) -> Iterator[LiveService]:
    """`complaintcore serve` on a free loopback port over `database_url` (with a master key,
    `serve_args` and `extra_env`), its output in `log_dir/serve.log`; stopped with SIGINT on
    the way out."""
    with serving(database_url, log_dir, serve_args, **extra_env) as (_, base_url):
        yield LiveService(base_url, database_url, tokens, log_dir / "serve.log")


@contextmanager
def serving(
    database_url: str, log_dir: Path, serve_args: tuple[str, ...] = (), **extra_env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`live_service`'s `serve` process, ready, and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json", **extra_env)
    env.update(master_key_env(log_dir))
    # appended to: the processes of `serve --workers N` write to it at once, each line whole
    with (log_dir / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(port), *serve_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(process, base_url)
            yield process, base_url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until_ready(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + SERVE_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail("serve was not ready in time")


WITHDRAWN_FROM = date(2019, 1, 2)


def withdrawn_case_line(number: int) -> bytes:
    """A line of `complaintcore import`: case OLD-<number> of branch BR-A (under HO), received
    from 2 January 2019 on (a day later each case, over 300 days) and withdrawn 3 days later."""
    received = WITHDRAWN_FROM + timedelta(days=number % 300)
    withdrawn = received + timedelta(days=3)
    return orjson.dumps(
        complaint(
            "BR-A",
            received_on=received.isoformat(),
            external_id=f"OLD-{number:05d}",
            actor={"id": "staff-a1", "role": "staff", "institution": "BR-A"},
            at=received.isoformat(),
            actions=[
                {
                    "command": "withdraw",
                    "at": withdrawn.isoformat(),
                    "received_on": withdrawn.isoformat(),
                    "reason": "已协商",
                }
            ],
        )
    )


async def withdrawn_cases_file(pool: asyncpg.Pool, path: Path, count: int) -> Path:
    """`path` holding `count` lines of `withdrawn_case_line`, their branch BR-A (under HO) put in
    the institution directory first."""
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    path.write_bytes(b"\n".join(withdrawn_case_line(n) for n in range(count)) + b"\n")
    return path


async def withdrawn_cases_imported(
    pool: asyncpg.Pool, database_url: str, folder: Path, count: int, timeout_s: float
) -> None:
    """`count` lines of `withdrawn_case_line` imported by `complaintcore import`, as an operator
    runs it (the file written to `folder`)."""
    source = await withdrawn_cases_file(pool, folder / "cases.jsonl", count)
    imported = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "import", str(source)],
        env=command_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert imported.returncode == 0, imported.stderr


def command_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `complaintcore` command run on `database_url`, logging JSON."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "COMPLAINTCORE_LOG_FORMAT": "json",
        **extra,
    }


async def stopped_once(
    pool: asyncpg.Pool,
    process: subprocess.Popen[str],
    committed: str,
    stop: Callable[[], None],
    timeout_s: float,
    *,
    hold: str | None = None,
) -> str:
    """Poll `committed` (a query true once the command has committed what is awaited), then
    `stop` the command; its stderr, to its end.

    `hold`: a LOCK statement that holds back the command's next commit. Each poll takes it
    first and `stop` is called while it is held, so a command that outruns a poll starved on a
    loaded machine is still stopped before it can commit past the point awaited."""
    deadline = time.monotonic() + timeout_s
    async with pool.acquire() as connection:
        while True:
            async with connection.transaction():
                if hold is not None:
                    await connection.execute(hold)
                if await connection.fetchval(committed):
                    stop()
                    break
            assert process.poll() is None, "it ended before it was stopped"
            assert time.monotonic() < deadline, "nothing committed in time"
            await asyncio.sleep(0.01)
    _, stderr = process.communicate(timeout=timeout_s)
    return stderr


async def until_waiting_on_locks(pool: asyncpg.Pool, locktype: str, count: int) -> None:
    """Return once `count` lock requests of `locktype` (`advisory`, `relation`) wait, within
    10 s."""
    for _ in range(500):
        waiting = await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = $1 AND NOT granted", locktype
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} {locktype} lock requests came to wait")
