"""`PostgresEventStore.append_streams`: many new streams in one COPY, with the guarantees of
`append` (the chain, the refusal of a stream that exists, the feed that never skips a late commit).
"""

import asyncio

import asyncpg
import pytest

from complaintcore.events.bulk import NewStream
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import ConcurrencyError, InvalidEventData
from complaintcore.events.store import PostgresEventStore
from store_support import event, new_stream

WAIT = 10  # seconds before a test that should not hang gives up


def streams_of(*sizes: int, key: str | None = None) -> list[NewStream]:
    return [NewStream(new_stream("bulk"), [event(n) for n in range(size)], key) for size in sizes]


async def event_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM events")


async def test_every_new_stream_is_an_intact_chain_from_version_one(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    streams = streams_of(1, 3, 5)
    async with pool.acquire() as connection:
        written = await store.append_streams(connection, streams)

    assert written == 9
    for stream in streams:
        events = await store.read_stream(stream.stream_id)
        assert [e.version for e in events] == list(range(1, len(stream.events) + 1))
        assert [e.data for e in events] == [e.data for e in stream.events]
        assert events[0].prev_hash == "0" * 64
        verdict = verify_chain(events)
        assert verdict.intact and verdict.events_checked == len(stream.events)


async def test_an_append_continues_a_bulk_written_chain(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    [stream] = streams_of(2)
    async with pool.acquire() as connection:
        await store.append_streams(connection, [stream])

    result = await store.append(stream.stream_id, [event(9)], expected_version=2)

    assert result.first_version == 3
    assert verify_chain(await store.read_stream(stream.stream_id)).intact


async def test_the_idempotency_key_is_stored_as_append_stores_it(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    [stream] = streams_of(3, key="import:LEGACY-1")
    async with pool.acquire() as connection:
        await store.append_streams(connection, [stream])
    stored = await store.read_stream(stream.stream_id)

    again = await store.append(
        stream.stream_id, stream.events, 0, idempotency_key="import:LEGACY-1"
    )

    assert {e.metadata.idempotency_key for e in stored} == {"import:LEGACY-1"}
    assert again.duplicate and again.positions == tuple(e.position for e in stored)
    assert await store.stream_version(stream.stream_id) == 3


async def test_positions_follow_the_order_given_and_the_feed_holds_them_all(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    await store.append("before", [event()], expected_version=0)
    streams = streams_of(2, 1, 3)
    async with pool.acquire() as connection:
        await store.append_streams(connection, streams)

    feed = await store.read_feed(after=0)

    assert [(e.stream_id, e.version) for e in feed] == [("before", 1)] + [
        (stream.stream_id, version)
        for stream in streams
        for version in range(1, len(stream.events) + 1)
    ]
    positions = [e.position for e in feed]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


async def test_a_stream_that_exists_refuses_the_whole_call(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    [first] = streams_of(2)
    async with pool.acquire() as connection:
        await store.append_streams(connection, [first])
    before = await event_count(pool)

    [fresh] = streams_of(1)
    async with pool.acquire() as connection:
        with pytest.raises(ConcurrencyError) as raised:
            await store.append_streams(connection, [fresh, first])

    assert (raised.value.stream_id, raised.value.expected_version) == (first.stream_id, 0)
    assert raised.value.actual_version is None
    assert await event_count(pool) == before
    assert await store.stream_version(fresh.stream_id) == 0


async def test_a_stream_written_by_append_is_refused_too(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    await store.append("case-1", [event()], expected_version=0)

    async with pool.acquire() as connection:
        with pytest.raises(ConcurrencyError) as raised:
            await store.append_streams(connection, [NewStream("case-1", [event(1)])])

    assert raised.value.stream_id == "case-1"
    assert await store.stream_version("case-1") == 1


async def test_in_the_callers_transaction_a_refusal_leaves_it_to_be_rolled_back(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    [existing] = streams_of(1)
    async with pool.acquire() as connection:
        await store.append_streams(connection, [existing])
    [fresh] = streams_of(1)

    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await store.append("alongside", [event()], expected_version=0, connection=connection)
        with pytest.raises(ConcurrencyError):
            await store.append_streams(connection, [fresh, existing])
        with pytest.raises(asyncpg.InFailedSQLTransactionError):
            await connection.execute("SELECT 1")
        await transaction.rollback()

    assert await store.existing_streams([fresh.stream_id, "alongside"]) == set()


async def test_the_callers_transaction_decides_whether_the_streams_are_kept(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    [dropped, kept] = streams_of(2, 2)
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await store.append_streams(connection, [dropped])
        await transaction.rollback()
        async with connection.transaction():
            await store.append_streams(connection, [kept])

    assert await store.existing_streams([dropped.stream_id, kept.stream_id]) == {kept.stream_id}


async def test_two_calls_racing_for_one_stream_store_it_once(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    [contested, other] = streams_of(2, 1)
    async with pool.acquire() as first, pool.acquire() as second:
        transaction = first.transaction()
        await transaction.start()
        await store.append_streams(first, [contested])
        racing = asyncio.create_task(store.append_streams(second, [other, contested]))
        await asyncio.sleep(0.2)
        assert not racing.done()  # the unique key waits for the first transaction's end
        await transaction.commit()
        with pytest.raises(ConcurrencyError) as raised:
            await asyncio.wait_for(racing, WAIT)

    assert raised.value.stream_id == contested.stream_id
    assert await store.stream_version(contested.stream_id) == 2
    assert await store.stream_version(other.stream_id) == 0


async def test_the_feed_waits_for_a_bulk_transaction_that_commits_late(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    await store.append("before", [event()], expected_version=0)
    [seen] = await store.read_feed(after=0)
    streams = streams_of(2, 2)

    async with pool.acquire() as slow:
        transaction = slow.transaction()
        await transaction.start()
        await store.append_streams(slow, streams)
        quick = await store.append("quick", [event()], expected_version=0)

        assert await store.read_feed(after=seen.position) == []  # quick is beyond the floor
        await transaction.commit()

    after_commit = await store.read_feed(after=seen.position)
    assert [e.stream_id for e in after_commit] == [
        *(s.stream_id for s in streams for _ in s.events),
        "quick",
    ]
    assert after_commit[-1].position == quick.positions[0]
    assert [e.position for e in after_commit] == sorted(e.position for e in after_commit)


async def test_without_a_transaction_the_call_commits_in_one_of_its_own(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    streams = streams_of(3, 1)
    async with pool.acquire() as connection:
        assert not connection.is_in_transaction()
        await store.append_streams(connection, streams)
        assert not connection.is_in_transaction()

    locks = await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    assert locks == 0  # the floor was released with the commit
    assert len(await store.read_feed(after=0)) == 4


@pytest.mark.parametrize(
    ("streams", "refusal"),
    [
        ([NewStream("a", [event()]), NewStream("a", [event()])], ValueError),
        ([NewStream("a", [event()]), NewStream("b", [])], ValueError),
        ([NewStream("a", [event()]), NewStream("b", [event(), event(1.5)])], InvalidEventData),
    ],
    ids=["given-twice", "no-events", "unstorable"],
)
async def test_a_call_that_cannot_be_stored_whole_stores_nothing(
    pool: asyncpg.Pool, streams: list[NewStream], refusal: type[Exception]
) -> None:
    store = PostgresEventStore(pool)
    async with pool.acquire() as connection:
        with pytest.raises(refusal):
            await store.append_streams(connection, streams)
    assert await event_count(pool) == 0


async def test_an_unstorable_payload_is_refused_naming_its_stream(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    async with pool.acquire() as connection:
        with pytest.raises(InvalidEventData, match=r"stream 'b': data\.n: floating-point"):
            await store.append_streams(connection, [NewStream("b", [event(1.5)])])


async def test_no_streams_write_nothing(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    async with pool.acquire() as connection:
        assert await store.append_streams(connection, []) == 0
    assert await event_count(pool) == 0


async def test_existing_streams_are_those_with_events(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool)
    [bulk] = streams_of(2)
    async with pool.acquire() as connection:
        await store.append_streams(connection, [bulk])
        await store.append("appended", [event()], expected_version=0)

        found = await store.existing_streams(
            [bulk.stream_id, "appended", "nobody"], connection=connection
        )

    assert found == {bulk.stream_id, "appended"}
    assert await store.existing_streams([]) == set()
