"""A live service for end-to-end tests: `complaintcore serve` on a loopback port, over a real
PostgreSQL database of its own, with an institution tree and a token per role."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from api_support import app_client
from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import LiveService, database_cloned_from_template, live_service

TREE = [
    ("HO", "总行", "head_office", None),
    ("BR-A", "上海分行", "branch", "HO"),
    ("BR-B", "北京分行", "branch", "HO"),
    ("SUB-A1", "浦东支行", "sub_branch", "BR-A"),
]


@pytest.fixture(scope="module")
async def module_database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    async with database_cloned_from_template(server_url, "complaintcore_e2e") as url:
        yield url


@pytest.fixture(scope="module")
async def tokens(module_database_url: str) -> dict[str, str]:
    pool = await create_pool(module_database_url, min_size=1, max_size=2)
    try:
        directory = InstitutionDirectory(pool)
        for code, name, kind, parent in TREE:
            await directory.put(code, name, kind, parent)
        return {
            "staff_a": await create_token(pool, "staff-a1", "staff", "BR-A"),
            "staff_a2": await create_token(pool, "staff-a2", "staff", "BR-A"),
            "staff_sub": await create_token(pool, "staff-sub1", "staff", "SUB-A1"),
            "staff_b": await create_token(pool, "staff-b1", "staff", "BR-B"),
            "supervisor_ho": await create_token(pool, "sup-ho1", "supervisor", "HO"),
            "regulator": await create_token(pool, "reg-1", "regulator", None),
            "admin": await create_token(pool, "admin-1", "admin", None),
        }
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def live(
    module_database_url: str, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    with live_service(module_database_url, tokens, tmp_path_factory.mktemp("live")) as service:
        yield service


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app over the test's own database, called in process (no socket)."""
    async with app_client(database_url) as client:
        yield client
