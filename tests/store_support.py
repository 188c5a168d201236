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
