"""Alembic environment: runs migrations over the async engine, one migrator at a time."""

import asyncio

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from complaintcore.infra import advisory_locks
from complaintcore.infra.database import connect_each_host, plain_url
from complaintcore.infra.migrations import DATABASE_URL_ATTRIBUTE

# Several processes starting at once (API workers, CI jobs) migrate in turn.
LOCK = {"namespace": advisory_locks.MIGRATIONS, "key": 0}


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, transaction_per_migration=True)
    connection.execute(text("SELECT pg_advisory_lock(:namespace, :key)"), LOCK)
    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:namespace, :key)"), LOCK)
        connection.commit()


async def run_online() -> None:
    url = plain_url(context.config.attributes[DATABASE_URL_ATTRIBUTE])
    # asyncpg connects from the URL as given (several hosts, each in turn, target_session_attrs):
    # SQLAlchemy only wraps the connection, its dialect named by an empty URL
    engine = create_async_engine(
        "postgresql+asyncpg://",
        poolclass=pool.NullPool,
        async_creator=lambda: connect_each_host(url),
    )
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
asyncio.run(run_online())
