"""The bench's own PostgreSQL: `DATABASE_URL`'s server, or the embedded one under `.pgdata-bench/`
(git-ignored); on it a fresh, migrated database for every run."""

import asyncio
import atexit
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import asyncpg

from complaintcore.application.master_key import case_keys_of
from complaintcore.crypto.keys import FileKeyProvider, create_master_key_file
from complaintcore.events.case_keys import CaseKeys
from complaintcore.infra.database import plain_url
from complaintcore.infra.embedded_db import running_embedded_postgres, with_database
from complaintcore.infra.migrations import upgrade_to_head

BENCH_DATA_DIR = Path(__file__).resolve().parents[1] / ".pgdata-bench"
BENCH_DATABASE = "complaintcore_bench"


@contextmanager
def bench_server() -> Iterator[str]:
    """The URL of the server's maintenance database."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield plain_url(configured)
        return
    with running_embedded_postgres(BENCH_DATA_DIR) as url:
        yield url


@functools.cache
def bench_master_key_file() -> Path:
    """The master key file of this bench run (`COMPLAINTCORE_MASTER_KEY_FILE`, as `serve` needs
    one with `DATABASE_URL`): created once in a temporary folder, removed when the run ends.
    Every run's databases are fresh, so no key need outlive it; its suite is
    COMPLAINTCORE_CIPHER_SUITE's."""
    folder = Path(tempfile.mkdtemp(prefix="complaintcore-bench-key-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "master.key"
    create_master_key_file(path, os.environ.get("COMPLAINTCORE_CIPHER_SUITE", "aes-256-gcm"))
    return path


def bench_case_keys() -> CaseKeys:
    """Case keys under the run's master key, as `serve` makes them (for the bulk import)."""
    suite = os.environ.get("COMPLAINTCORE_CIPHER_SUITE", "aes-256-gcm")
    return case_keys_of(FileKeyProvider(bench_master_key_file()), suite)


def fresh_database(server_url: str, name: str = BENCH_DATABASE) -> str:
    """Drop and recreate `name`, migrate it, and return its URL."""

    async def recreate() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    asyncio.run(recreate())
    url = with_database(server_url, name)
    upgrade_to_head(url)
    return url


def server_settings(server_url: str) -> dict[str, str]:
    """What the machine description shows of the server: version and durability settings."""

    async def read() -> dict[str, str]:
        connection = await asyncpg.connect(server_url)
        try:
            rows = await connection.fetch(
                "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync',"
                " 'synchronous_commit', 'shared_buffers', 'max_connections')"
            )
        finally:
            await connection.close()
        return {row["name"]: row["setting"] for row in rows}

    return asyncio.run(read())


def libpq_parts(url: str) -> dict[str, str]:
    """Host (or socket folder), port, user, password and database of a URL, for libpq clients."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
    return {
        "host": host,
        "port": str(parsed.port or query.get("port", ["5432"])[0]),
        "user": parsed.username or "postgres",
        "password": parsed.password or "",
        "dbname": parsed.path.lstrip("/"),
    }
