"""Concurrent single-event appends written together (group commit): each still stands alone."""

import asyncio

import asyncpg
import prometheus_client
import pytest

import store_support
from complaintcore.events import batching
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import ConcurrencyError
from complaintcore.events.store import PostgresEventStore
from store_support import event, remember_a_rolled_back_head


def new_stream() -> str:
    return store_support.new_stream("batch")


async def test_many_concurrent_appends_are_each_stored_once_in_their_chains(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    streams = [new_stream() for _ in range(40)]

    async def writer(stream: str) -> list[int]:
        positions = []
        for version in range(5):
            result = await store.append(stream, [event(version)], expected_version=version)
            assert (result.first_version, result.last_version) == (version + 1, version + 1)
            positions.extend(result.positions)
        return positions

    positions = [p for ps in await asyncio.gather(*(writer(s) for s in streams)) for p in ps]
    assert len(set(positions)) == len(positions) == 200
    for stream in streams:
        events = await store.read_stream(stream)
        assert [e.data["n"] for e in events] == [0, 1, 2, 3, 4]
        assert verify_chain(events).intact
    feed = await store.read_feed(after=0, limit=1000)
    assert sorted(e.position for e in feed) == sorted(positions)


async def test_a_batch_refused_for_one_stream_is_retried_append_by_append(
    pool: asyncpg.Pool,
) -> None:
    mine, theirs = PostgresEventStore(pool), PostgresEventStore(pool)
    contested = new_stream()
    await mine.append(contested, [event(1)], expected_version=0)
    await theirs.append(contested, [event(2)], expected_version=1)
    others = [new_stream() for _ in range(6)]

    outcomes = await asyncio.gather(
        mine.append(contested, [event(99)], expected_version=1),
        *(mine.append(stream, [event(1)], expected_version=0) for stream in others),
        return_exceptions=True,
    )
    refused, *stored = outcomes
    assert isinstance(refused, ConcurrencyError)
    assert refused.actual_version == 2
    assert all(result.last_version == 1 for result in stored)  # type: ignore[union-attr]
    assert [e.data["n"] for e in await mine.read_stream(contested)] == [1, 2]


async def test_a_row_chained_to_a_head_that_rolled_back_goes_the_slow_way(
    pool: asyncpg.Pool,
) -> None:
    mine, theirs = PostgresEventStore(pool), PostgresEventStore(pool)
    stream = new_stream()
    await remember_a_rolled_back_head(pool, mine, stream)
    await theirs.append(stream, [event(20)], expected_version=1)
    others = [new_stream() for _ in range(4)]

    results = await asyncio.gather(
        mine.append(stream, [event(3)], expected_version=2),
        *(mine.append(other, [event(1)], expected_version=0) for other in others),
    )
    assert results[0].last_version == 3
    events = await mine.read_stream(stream)
    assert [e.data["n"] for e in events] == [1, 20, 3]
    assert verify_chain(events).intact
    for other in others:
        assert await mine.stream_version(other) == 1


@pytest.mark.parametrize("racers", [2, 8])
async def test_appends_racing_for_one_new_stream_have_one_winner(
    pool: asyncpg.Pool, racers: int
) -> None:
    store = PostgresEventStore(pool)
    stream = new_stream()
    outcomes = await asyncio.gather(
        *(store.append(stream, [event(n)], expected_version=0) for n in range(racers)),
        return_exceptions=True,
    )
    assert sum(not isinstance(outcome, ConcurrencyError) for outcome in outcomes) == 1
    assert await store.stream_version(stream) == 1


async def test_a_caller_that_gives_up_waiting_leaves_the_others_unharmed(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    streams = [new_stream() for _ in range(10)]
    tasks = [
        asyncio.create_task(store.append(stream, [event(1)], expected_version=0))
        for stream in streams
    ]
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    for stream, result in zip(streams, results, strict=True):
        if result is results[3]:
            assert await store.stream_version(stream) in (0, 1)
        else:
            assert await store.stream_version(stream) == 1


async def test_an_append_arriving_as_the_last_writer_finishes_is_still_written(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With one writer allowed, the second append is queued in the moment between the writer's
    # last batch and its task's end: it must start a writer of its own, not wait for none.
    monkeypatch.setattr(batching, "MAX_BATCHES_IN_FLIGHT", 1)
    store = PostgresEventStore(pool)
    stream = new_stream()

    async def append_one_after_another() -> None:
        for version in range(3):
            result = await store.append(stream, [event(version)], expected_version=version)
            assert result.last_version == version + 1

    await asyncio.wait_for(append_one_after_another(), timeout=10)


def batches_written() -> tuple[float, float]:
    """How many group-commit batches this process has written, and how many appends they held."""
    registry = prometheus_client.REGISTRY
    name = "complaintcore_store_group_commit_batch_size"
    return (
        registry.get_sample_value(f"{name}_count") or 0.0,
        registry.get_sample_value(f"{name}_sum") or 0.0,
    )


@pytest.mark.parametrize(("in_flight", "batches"), [(4, 2), (2, 2), (1, 1)])
async def test_a_burst_is_written_in_two_halves_so_callers_prepare_while_the_other_half_is_written(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, in_flight: int, batches: int
) -> None:
    # Taken whole, a burst's callers all wake together and then all wait together: the process
    # and the database would each idle while the other works (lockstep). With one batch at a
    # time nothing could overlap, and the burst is one batch.
    monkeypatch.setattr(batching, "MAX_BATCHES_IN_FLIGHT", in_flight)
    store = PostgresEventStore(pool)
    streams = [new_stream() for _ in range(16)]
    count_before, appends_before = batches_written()

    await asyncio.gather(*(store.append(s, [event(1)], expected_version=0) for s in streams))

    count_after, appends_after = batches_written()
    assert (count_after - count_before, appends_after - appends_before) == (batches, 16)
    for stream in streams:
        assert await store.stream_version(stream) == 1
