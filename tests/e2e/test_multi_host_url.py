"""A multi-host `DATABASE_URL` (issue 16, failover): libpq's form, several `host:port` and
`target_session_attrs=read-write`, taken by every part of the service: migrations (whose URL
SQLAlchemy's parser used to refuse), the CLI and the pool. The first host here is a closed
port on loopback, as a primary that has died; the second the test server."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest

from complaintcore.infra.database import create_pool
from complaintcore.infra.embedded_db import with_database
from complaintcore.infra.migrations import head_revision
from testsupport import admin_execute, free_port

DATABASE = "complaintcore_multi_host"


def multi_host(url: str) -> str:
    """`url` with a dead host before its own, asking for the read-write one: in the netloc for
    a TCP server, in the `host` and `port` parameters for the embedded one's socket folder."""
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    dead = f"127.0.0.1:{free_port()}"
    read_write = "target_session_attrs=read-write"
    if parts.hostname:
        hosts = f"{dead},{parts.hostname}:{parts.port or 5432}"
        query = "&".join(filter(None, [parts.query, read_write]))
        return f"{parts.scheme}://{user}@{hosts}{parts.path}?{query}"
    socket_folder = parse_qs(parts.query)["host"][0]
    host, port = dead.split(":")
    query = f"host={host},{socket_folder}&port={port},5432&{read_write}"
    return f"{parts.scheme}://{user}@{parts.path}?{query}"


@pytest.fixture
async def empty_database(server_url: str) -> AsyncIterator[str]:
    await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    await admin_execute(server_url, f'CREATE DATABASE "{DATABASE}"')
    yield with_database(server_url, DATABASE)
    await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


async def test_migrate_and_the_pool_take_a_multi_host_url(empty_database: str) -> None:
    url = multi_host(empty_database)
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["DATABASE_URL"] = url
    migrated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "complaintcore.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert migrated.returncode == 0, migrated.stderr
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        assert await pool.fetchval("SELECT version_num FROM alembic_version") == head_revision()
        assert not await pool.fetchval("SELECT pg_is_in_recovery()")
    finally:
        await pool.close()
