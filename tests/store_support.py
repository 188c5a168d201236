"""What the store tests append: numbered events on streams of their own."""

import uuid

import asyncpg

from complaintcore.events.model import EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore


def event(n: int = 0) -> NewEvent:
    return NewEvent("Happened", {"n": n}, metadata=EventMetadata(actor_id="u1"))


def new_stream(prefix: str = "stream") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


async def remember_a_rolled_back_head(
    pool: asyncpg.Pool, store: PostgresEventStore, stream: str
) -> None:
    """`store` appends version 1 of `stream`, then version 2 in a transaction rolled back: the
    head it remembers (version 2) was never committed."""
    await store.append(stream, [event(1)], expected_version=0)
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await store.append(stream, [event(2)], expected_version=1, connection=connection)
        await transaction.rollback()


APPEND_ONLY_TRIGGER = "events_refuse_update_delete"


async def behind_the_triggers_back(database_url: str, sql: str, case_id: str) -> None:
    """Run `sql` (its `$1` the case id) on `events` with the append-only trigger disabled, as
    only the database's owner can: a row changed behind the store's back."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(f"ALTER TABLE events DISABLE TRIGGER {APPEND_ONLY_TRIGGER}")
            await connection.execute(sql, case_id)
            await connection.execute(f"ALTER TABLE events ENABLE TRIGGER {APPEND_ONLY_TRIGGER}")
    finally:
        await connection.close()
