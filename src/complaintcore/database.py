"""The asyncpg connection pool the service runs on.

The event store and the projections speak SQL to asyncpg directly: it is the fastest PostgreSQL
driver for Python and the store's hot path is a handful of fixed statements. SQLAlchemy carries the
Alembic migrations.
"""

from typing import Any

import asyncpg
import orjson


def _encode_json(value: Any) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(connection: asyncpg.Connection) -> None:
    for json_type in ("jsonb", "json"):
        await connection.set_type_codec(
            json_type, schema="pg_catalog", encoder=_encode_json, decoder=orjson.loads
        )


def plain_url(database_url: str) -> str:
    """asyncpg wants `postgresql://`; accept the SQLAlchemy spelling too."""
    scheme, _, rest = database_url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else database_url


async def create_pool(database_url: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        plain_url(database_url), min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool
