"""A live service for end-to-end tests: `complaintcore serve` on a loopback port, over a real
PostgreSQL database of its own, with an institution tree and a token per role."""

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from api_support import app_client
from projection_support import tree_and_tokens
from testsupport import LiveService, database_cloned_from_template, live_service


@pytest.fixture(scope="module")
async def module_database_url(server_url: str, template_url: str) -> AsyncIterator[str]:
    async with database_cloned_from_template(server_url) as url:
        yield url


@pytest.fixture(scope="module")
async def tokens(module_database_url: str) -> dict[str, str]:
    return await tree_and_tokens(
        module_database_url,
        {
            "staff_a": ("staff-a1", "staff", "BR-A"),
            "staff_a2": ("staff-a2", "staff", "BR-A"),
            "staff_sub": ("staff-sub1", "staff", "SUB-A1"),
            "staff_b": ("staff-b1", "staff", "BR-B"),
            "supervisor_ho": ("sup-ho1", "supervisor", "HO"),
            "regulator": ("reg-1", "regulator", None),
            "admin": ("admin-1", "admin", None),
        },
    )


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
