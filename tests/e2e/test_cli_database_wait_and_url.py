"""Two command-line defects a reviewer found (issue 17, item 2):

- `serve` takes a `postgresql+asyncpg://` DATABASE_URL (the SQLAlchemy spelling, accepted by the
  pool and the migrations) all the way: the master key check at start-up connected with it as
  given and failed.
- `migrate` waits `COMPLAINTCORE_DATABASE_WAIT` for an unreachable database as `serve` does, then
  refuses in one line (no traceback); `runners` does the same."""

import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from complaintcore.projections import statistics
from complaintcore.projections.runner import runner_backend_pid
from testsupport import admin_execute, free_port, live_service, master_key_env, with_database
from webhook_support import wait_for


async def test_serve_takes_a_sqlalchemy_spelled_database_url(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    scheme, _, rest = database_url.partition("://")
    assert scheme == "postgresql"
    with live_service(f"postgresql+asyncpg://{rest}", {}, tmp_path) as service:
        assert service.client().get("/readyz").status_code == 200
        # its runner process too
        await wait_for(lambda: runner_backend_pid(pool, statistics.NAME), timeout_s=30)
    assert "Traceback" not in service.log_path.read_text()


def refusal_of(
    command: str, tmp_path: Path, wait_s: str, *args: str, url: str | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/complaintcore"  # nobody listens
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": url or closed,
        "COMPLAINTCORE_DATABASE_WAIT": wait_s,
        "COMPLAINTCORE_LOG_FORMAT": "json",
        **master_key_env(tmp_path),
    }
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", *command.split(), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return finished, time.monotonic() - started


def test_migrate_waits_for_the_database_then_refuses_in_one_line(tmp_path: Path) -> None:
    finished, took_s = refusal_of("migrate", tmp_path, "1.5")
    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the database is unreachable after 1.5 s: "), last
    assert "waiting for the database" in finished.stderr  # it waited, and said so
    assert took_s >= 1.0


def test_migrate_without_waiting_refuses_at_once(tmp_path: Path) -> None:
    finished, _ = refusal_of("migrate", tmp_path, "0")
    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the database is unreachable after 0 s: "), last


def test_runners_refuse_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    finished, _ = refusal_of("runners", tmp_path, "0.5")
    assert finished.returncode == 1
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the database is unreachable after 0.5 s: "), last


A_FILE = "file.json"  # an empty file where a command reads one: the database is met first
COMMANDS_ON_A_DATABASE = [
    ("tokens list",),
    ("tokens create", "--id", "a1", "--role", "admin"),
    ("institutions load", A_FILE),
    ("import", A_FILE),
    ("audit", "0b5e4c1e-54a4-4d7e-9c1e-6a51b1f0c2d3"),
    ("projections rebuild", "--workers", "1"),
    ("personal-data sweep", "--dry-run"),
    ("demo", "--cases", "1"),
]


@pytest.mark.parametrize("command", COMMANDS_ON_A_DATABASE, ids=lambda c: c[0])
def test_every_command_refuses_a_database_it_cannot_reach_in_one_line(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    (tmp_path / A_FILE).write_text('[{"code": "HO", "name": "总行", "kind": "head_office"}]')
    finished, _ = refusal_of(command[0], tmp_path, "0", *command[1:])
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the database "), last
    assert "ConnectionRefusedError" in last or "unreachable" in last, last


@pytest.mark.parametrize("command", ["migrate", "tokens list"])
def test_a_database_that_does_not_exist_is_named_in_one_line(
    command: str, server_url: str, tmp_path: Path
) -> None:
    missing = with_database(server_url, "no_such_database_here")
    finished, _ = refusal_of(command, tmp_path, "0", url=missing)
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the database cannot be used: "), last
    assert 'database "no_such_database_here" does not exist' in last


@pytest.fixture
async def no_writable_host(server_url: str, worker_id: str) -> AsyncIterator[str]:
    """A database whose every session is read-only, as a hot standby reports itself when asked
    by `target_session_attrs=read-write`: every host of a failover not yet promoted."""
    name = f"read_only_{worker_id}"
    await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin_execute(server_url, f'CREATE DATABASE "{name}"')
    await admin_execute(
        server_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'
    )
    url = with_database(server_url, name)  # the embedded server's names its socket in a query
    yield f"{url}{'&' if '?' in url else '?'}target_session_attrs=read-write"
    await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("command", ["migrate", "runners", "tokens list"])
def test_no_writable_host_is_waited_for_then_refused_in_one_line(
    no_writable_host: str, tmp_path: Path, command: str
) -> None:
    """Found by a review pass: every command ended in a traceback at once."""
    finished, took_s = refusal_of(command, tmp_path, "1.5", url=no_writable_host)
    assert finished.returncode == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the database "), last
    if command != "tokens list":  # the commands that wait for the database
        assert took_s >= 1.0 and "waiting for the database" in finished.stderr
