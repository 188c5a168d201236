"""Fixtures of the integration tests beyond tests/conftest.py's database."""

import asyncpg
import pytest

from projection_support import CaseDesk


@pytest.fixture
async def desk(pool: asyncpg.Pool) -> CaseDesk:
    """A complaint desk over the test's database, its institution tree planted."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    return desk
