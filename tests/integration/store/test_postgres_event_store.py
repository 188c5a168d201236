"""What only the PostgreSQL store can show: real concurrency, late commits, and immutability."""

import asyncio
import random
import uuid

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import ConcurrencyError, EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore
from testsupport import examples

DB_SETTINGS = settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def event(n: int = 0) -> NewEvent:
    return NewEvent("Happened", {"n": n}, metadata=EventMetadata(actor_id="u1"))


@DB_SETTINGS
@given(
    prefix=st.integers(min_value=0, max_value=3),
    batch_sizes=st.lists(st.integers(min_value=1, max_value=3), min_size=2, max_size=8),
    delays_ms=st.lists(st.integers(min_value=0, max_value=3), min_size=8, max_size=8),
)
async def test_racing_appends_at_one_expected_version_have_exactly_one_winner(
    pool: asyncpg.Pool, prefix: int, batch_sizes: list[int], delays_ms: list[int]
) -> None:
    store = PostgresEventStore(pool)
    stream = f"race-{uuid.uuid4().hex}"
    if prefix:
        await store.append(stream, [event() for _ in range(prefix)], expected_version=0)

    async def writer(index: int, size: int) -> int | None:
        await asyncio.sleep(delays_ms[index] / 1000)
        try:
            await store.append(stream, [event(index) for _ in range(size)], prefix)
        except ConcurrencyError:
            return None
        return index

    outcomes = await asyncio.gather(*(writer(i, size) for i, size in enumerate(batch_sizes)))
    winners = [index for index in outcomes if index is not None]
    assert len(winners) == 1
    events = await store.read_stream(stream)
    assert [e.version for e in events] == list(range(1, prefix + batch_sizes[winners[0]] + 1))
    assert verify_chain(events).intact


async def test_writers_that_retry_on_conflict_leave_versions_without_gaps(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)

    async def writer(index: int) -> None:
        for _ in range(5):
            while True:
                version = await store.stream_version("busy")
                try:
                    await store.append("busy", [event(index)], expected_version=version)
                    break
                except ConcurrencyError:
                    await asyncio.sleep(0)

    await asyncio.gather(*(writer(i) for i in range(10)))
    events = await store.read_stream("busy")
    assert [e.version for e in events] == list(range(1, 51))
    assert verify_chain(events).intact


async def test_the_feed_waits_for_a_transaction_that_commits_late(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    await store.append("before", [event(1)], expected_version=0)
    [seen] = await store.read_feed(after=0)

    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        held = await store.append("slow", [event(2)], expected_version=0, connection=slow)
        quick = await store.append("quick", [event(3)], expected_version=0)
        assert quick.positions[0] > held.positions[0]

        assert await store.read_feed(after=seen.position) == []
        await transaction.commit()

    after_commit = await store.read_feed(after=seen.position)
    assert [e.position for e in after_commit] == [held.positions[0], quick.positions[0]]


async def test_a_feed_follower_sees_every_event_despite_out_of_order_commits(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    rng = random.Random(20261122)
    written: list[int] = []
    done = asyncio.Event()

    async def writer(index: int) -> None:
        for n in range(10):
            async with pool.acquire() as connection, connection.transaction():
                result = await store.append(f"s{index}-{n}", [event(n)], 0, connection=connection)
                await asyncio.sleep(rng.random() / 200)  # commit late, out of position order
            written.extend(result.positions)

    async def follower() -> list[int]:
        seen: list[int] = []
        while True:
            finished = done.is_set()
            page = await store.read_feed(after=seen[-1] if seen else 0, limit=7)
            seen.extend(e.position for e in page)
            if finished and not page:
                return seen
            await asyncio.sleep(0.001)

    reading = asyncio.create_task(follower())
    await asyncio.gather(*(writer(i) for i in range(8)))
    done.set()
    seen = await reading
    assert seen == sorted(written)


async def test_an_idempotency_key_racing_itself_stores_one_append(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    results = await asyncio.gather(
        *(store.append("case", [event(1)], None, idempotency_key="same") for _ in range(8))
    )
    assert {r.positions for r in results} == {results[0].positions}
    assert sum(not r.duplicate for r in results) == 1
    assert await store.stream_version("case") == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET data = '{}'::jsonb",
        "DELETE FROM events",
        "TRUNCATE events",
    ],
)
async def test_the_database_refuses_to_rewrite_history(pool: asyncpg.Pool, statement: str) -> None:
    store = PostgresEventStore(pool)
    await store.append("case", [event(1), event(2)], expected_version=0)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute(statement)
    assert [e.data["n"] for e in await store.read_stream("case")] == [1, 2]


async def altered_behind_the_triggers_back(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
        await connection.execute(sql, *args)
        await connection.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE events SET data = '{\"n\": 999}'::jsonb WHERE stream_id = $1 AND version = 3",
        'UPDATE events SET metadata = \'{"actor_id": "x"}\'::jsonb'
        " WHERE stream_id = $1 AND version = 3",
        "UPDATE events SET recorded_at = recorded_at + interval '1 day'"
        " WHERE stream_id = $1 AND version = 3",
        "UPDATE events SET event_type = 'Other' WHERE stream_id = $1 AND version = 3",
        # a key this code never writes, and one it writes only when it has a value
        'UPDATE events SET metadata = metadata || \'{"approved_by": "ceo"}\'::jsonb'
        " WHERE stream_id = $1 AND version = 3",
        "UPDATE events SET metadata = metadata || '{\"causation_id\": null}'::jsonb"
        " WHERE stream_id = $1 AND version = 3",
        # the feed's order, which is not hashed, against the versions'
        "UPDATE events SET position = (SELECT position FROM events WHERE stream_id = $1"
        " AND version = 2) - 1000000 WHERE stream_id = $1 AND version = 3",
    ],
)
async def test_a_row_altered_behind_the_triggers_back_is_found_at_its_version(
    pool: asyncpg.Pool, sql: str
) -> None:
    store = PostgresEventStore(pool)
    await store.append("case", [event(n) for n in range(5)], expected_version=0)
    await altered_behind_the_triggers_back(pool, sql, "case")
    verdict = verify_chain(await store.read_stream("case"))
    assert not verdict.intact
    assert verdict.first_bad_version == 3


async def test_a_deleted_row_is_found_as_a_missing_version(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    await store.append("case", [event(n) for n in range(5)], expected_version=0)
    await altered_behind_the_triggers_back(
        pool, "DELETE FROM events WHERE stream_id = $1 AND version = 2", "case"
    )
    verdict = verify_chain(await store.read_stream("case"))
    assert (verdict.intact, verdict.first_bad_version) == (False, 2)
    assert verdict.reason == "version 2 is missing"
