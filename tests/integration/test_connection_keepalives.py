"""Every connection of the service's asks PostgreSQL to probe it when silent, so that the session
of a host that died without closing it (powered off, cut off) ends with its locks within about a
minute, not the server's two hours (found by a review pass cutting a host off behind a network
namespace: no runner took over, a case and a month's receipts stayed locked)."""

from collections.abc import Iterator
from typing import Any

import pytest

from complaintcore.infra import database
from complaintcore.infra.settings import get_settings

_SHOWN = (
    "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_keepalives_interval'),"
    " current_setting('tcp_keepalives_count'), current_setting('tcp_user_timeout')"
)


_SOURCE = "SELECT source FROM pg_settings WHERE name = 'tcp_keepalives_idle'"


async def _asked_for(connection: Any, values: tuple[str, ...]) -> None:
    """Set for the session; read back as set over TCP (a Unix socket, the embedded server's,
    has no keepalives and reads 0 whatever is set)."""
    assert await connection.fetchval(_SOURCE) == "session"
    if await connection.fetchval("SELECT inet_server_addr() IS NOT NULL"):
        assert tuple(await connection.fetchrow(_SHOWN)) == values


@pytest.fixture(autouse=True)
def settings_read_anew() -> Iterator[None]:
    def forget() -> None:
        get_settings.cache_clear()
        database.keepalive_statement.cache_clear()

    forget()
    yield
    forget()


async def test_pooled_and_lone_connections_are_probed_when_silent(database_url: str) -> None:
    pool = await database.create_pool(database_url, min_size=1, max_size=1)
    lone = await database.connect(database_url)  # a runner's, holding its lock
    try:
        for connection in (pool, lone):
            await _asked_for(connection, ("30", "10", "3", "60000"))
    finally:
        await lone.close()
        await pool.close()


async def test_the_idle_time_is_a_setting_and_0_leaves_the_server_s_own(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPLAINTCORE_DATABASE_KEEPALIVE", "0")
    lone = await database.connect(database_url)
    try:
        assert await lone.fetchval(_SOURCE) != "session"  # the server's own, as configured
    finally:
        await lone.close()
    get_settings.cache_clear()
    database.keepalive_statement.cache_clear()
    monkeypatch.setenv("COMPLAINTCORE_DATABASE_KEEPALIVE", "120")
    lone = await database.connect(database_url)
    try:
        await _asked_for(lone, ("120", "10", "3", "150000"))
    finally:
        await lone.close()
