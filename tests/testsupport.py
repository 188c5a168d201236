"""Small helpers shared by the test folders (importable as `testsupport`: pytest puts `tests/`
on the path, see `pythonpath` in pyproject.toml)."""

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

from complaintcore.crypto.keys import create_master_key_file
from complaintcore.infra.embedded_db import with_database

# One template per test run, so runs sharing a server (a developer's and CI's, or parallel
# sessions) never drop each other's template mid-run.
TEMPLATE_DATABASE = f"complaintcore_test_template_{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def database_cloned_from_template(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template; dropped on the way out."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin_execute(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DATABASE}"')
    try:
        yield with_database(server_url, name)
    finally:
        await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
