"""Appends on a remembered stream head: one statement, checked by the database, never trusted.

Each `PostgresEventStore` remembers the heads it saw; these tests make that memory wrong in every
way it can be (another store or process wrote the stream, a remembered append rolled back) and
check the store still appends exactly when the expected version is the stream's.
"""

import asyncio

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import store_support
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import ConcurrencyError
from complaintcore.events.store import PostgresEventStore
from store_support import event, remember_a_rolled_back_head
from testsupport import examples

DB_SETTINGS = settings(
    max_examples=examples(20),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def new_stream() -> str:
    return store_support.new_stream("heads")


async def test_an_append_after_another_store_wrote_the_stream_is_refused_then_applies(
    pool: asyncpg.Pool,
) -> None:
    mine, theirs = PostgresEventStore(pool), PostgresEventStore(pool)
    stream = new_stream()
    await mine.append(stream, [event(1), event(2)], expected_version=0)
    await theirs.append(stream, [event(3)], expected_version=2)

    with pytest.raises(ConcurrencyError) as refused:
        await mine.append(stream, [event(4)], expected_version=2)
    assert refused.value.actual_version == 3

    result = await mine.append(stream, [event(4)], expected_version=3)
    assert (result.first_version, result.last_version) == (4, 4)
    events = await mine.read_stream(stream)
    assert [e.data["n"] for e in events] == [1, 2, 3, 4]
    assert verify_chain(events).intact


async def test_a_remembered_head_that_rolled_back_is_not_chained_to(pool: asyncpg.Pool) -> None:
    mine, theirs = PostgresEventStore(pool), PostgresEventStore(pool)
    stream = new_stream()
    await remember_a_rolled_back_head(pool, mine, stream)
    # version 2 exists again, with another hash than the one `mine` remembers
    await theirs.append(stream, [event(20)], expected_version=1)

    await mine.append(stream, [event(3)], expected_version=2)
    events = await mine.read_stream(stream)
    assert [e.data["n"] for e in events] == [1, 20, 3]
    assert verify_chain(events).intact


async def test_a_remembered_head_that_never_committed_is_not_appended_after(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    stream = new_stream()
    await store.append(stream, [event(1)], expected_version=0)
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        await store.append(stream, [event(2)], expected_version=1, connection=connection)
        await transaction.rollback()

    with pytest.raises(ConcurrencyError) as refused:
        await store.append(stream, [event(3)], expected_version=2)
    assert refused.value.actual_version == 1
    await store.append(stream, [event(2)], expected_version=1)
    assert verify_chain(await store.read_stream(stream)).intact


async def test_a_stale_remembered_head_draws_no_position(pool: asyncpg.Pool) -> None:
    mine, theirs = PostgresEventStore(pool), PostgresEventStore(pool)
    stream = new_stream()
    await remember_a_rolled_back_head(pool, mine, stream)
    before = await theirs.append(stream, [event(2)], expected_version=1)

    after = await mine.append(stream, [event(3)], expected_version=2)
    assert after.positions == (before.positions[0] + 1,)


async def test_a_new_stream_that_exists_is_refused_with_its_version(pool: asyncpg.Pool) -> None:
    mine, theirs = PostgresEventStore(pool), PostgresEventStore(pool)
    stream = new_stream()
    await theirs.append(stream, [event(1), event(2)], expected_version=0)
    with pytest.raises(ConcurrencyError) as refused:
        await mine.append(stream, [event(9)], expected_version=0)
    assert refused.value.actual_version == 2


async def test_a_store_remembers_only_so_many_heads(pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pool, heads_remembered=2)
    streams = [new_stream() for _ in range(4)]
    for stream in streams:
        await store.append(stream, [event(1)], expected_version=0)
    for stream in streams:
        await store.append(stream, [event(2)], expected_version=1)
    for stream in streams:
        assert verify_chain(await store.read_stream(stream)).intact


@DB_SETTINGS
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=2), st.integers(min_value=1, max_value=3)),
        min_size=1,
        max_size=12,
    ),
    racing=st.booleans(),
)
async def test_stores_appending_at_the_version_they_last_saw_never_break_the_chain(
    pool: asyncpg.Pool, steps: list[tuple[int, int]], racing: bool
) -> None:
    """Three stores (three processes) each append at the version it last saw itself: one that
    is behind is refused with the stream's version, and the stream stays one intact chain."""
    stores = [PostgresEventStore(pool) for _ in range(3)]
    seen = [0, 0, 0]
    stream = new_stream()

    async def step(index: int, size: int) -> bool:
        expected = seen[index]
        try:
            result = await stores[index].append(
                stream, [event(index) for _ in range(size)], expected_version=expected
            )
        except ConcurrencyError as refused:
            assert refused.actual_version is not None
            assert refused.actual_version > expected
            seen[index] = max(seen[index], refused.actual_version)
            return False
        assert result.first_version == expected + 1
        seen[index] = max(seen[index], result.last_version)
        return True

    if racing:
        outcomes = await asyncio.gather(*(step(index, size) for index, size in steps))
    else:
        outcomes = [await step(index, size) for index, size in steps]

    events = await stores[0].read_stream(stream)
    applied = sum(size for (_, size), ok in zip(steps, outcomes, strict=True) if ok)
    assert [e.version for e in events] == list(range(1, applied + 1))
    assert verify_chain(events).intact
