"""Shared fixtures: a real PostgreSQL for every test that needs one.

With `DATABASE_URL` set, tests create their databases on that server; without it they start the
embedded PostgreSQL under `.pgdata-test/` (stopped again when the run ends). Each test gets its own
database, cloned from a template migrated once per run, so tests never see each other's events.
"""

import asyncio
import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, time, tzinfo
from pathlib import Path

import asyncpg
import pytest

from api_support import TODAY
from complaintcore.application import business_day
from complaintcore.crypto.keys import create_master_key_file
from complaintcore.infra.database import create_pool, plain_url
from complaintcore.infra.embedded_db import running_embedded_postgres, with_database
from complaintcore.infra.migrations import upgrade_to_head
from testsupport import (
    TEMPLATE_DATABASE,
    admin_execute,
    database_cloned_from_template,
    drop_the_clone_made_ahead,
)

TEMPLATE = TEMPLATE_DATABASE


def _give_the_run_a_master_key() -> None:
    """Every service a test builds in-process seals personal data, as production does: one key
    for the run, found through the same setting (`testsupport.session_case_keys`)."""
    if os.environ.get("COMPLAINTCORE_MASTER_KEY_FILE"):
        return
    folder = Path(tempfile.mkdtemp(prefix="complaintcore-test-key-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    create_master_key_file(folder / "master.key")
    os.environ["COMPLAINTCORE_MASTER_KEY_FILE"] = str(folder / "master.key")


_give_the_run_a_master_key()
EMBEDDED_TEST_DATA = Path(__file__).resolve().parents[1] / ".pgdata-test"


class _TheRunsDay:
    """`business_day.datetime` for the run: its clock reads noon of the day the run started."""

    @staticmethod
    def now(tz: tzinfo) -> datetime:
        return datetime.combine(TODAY, time(12), tzinfo=tz)


@pytest.fixture(autouse=True)
def _one_business_day_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests date their requests by `TODAY`, taken once as the run starts; a run crossing
    Shanghai's midnight (16:00 UTC) would otherwise see services in this process read the next
    day and refuse, say, a policy effective `TODAY` as in the past. Processes a test starts read
    the real clock."""
    monkeypatch.setattr(business_day, "datetime", _TheRunsDay)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield plain_url(configured)
        return
    with running_embedded_postgres(EMBEDDED_TEST_DATA) as url:
        yield url


@pytest.fixture(scope="session")
async def template_url(server_url: str) -> AsyncIterator[str]:
    await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    await admin_execute(server_url, f'CREATE DATABASE "{TEMPLATE}"')
    url = with_database(server_url, TEMPLATE)
    await asyncio.to_thread(upgrade_to_head, url)
    yield url
    await drop_the_clone_made_ahead(server_url)
    await admin_execute(server_url, f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


@pytest.fixture
async def database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    async with database_cloned_from_template(server_url) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await create_pool(database_url, min_size=1, max_size=20)
    yield created
    await created.close()
