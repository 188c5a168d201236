"""A runner's kept folds: each batch's cases exactly as `fold_streams` folds them, without reading
the streams of cases it folded before."""

from datetime import date
from typing import Any

import asyncpg

from complaintcore.events.model import StoredEvent
from complaintcore.projections.streams import KeptFolds, fold_streams
from projection_support import CaseDesk

DAY = date(2026, 3, 2)


class NoReads:
    """A connection that must not be used: every case of the batch was folded before."""

    async def fetch(self, *args: Any) -> list[asyncpg.Record]:
        raise AssertionError("a stream was read though its earlier events were kept")


async def feed_after(desk: CaseDesk, position: int) -> list[StoredEvent]:
    return await desk.store.read_feed(after=position, limit=10_000)


async def folded_whole(pool: asyncpg.Pool, events: list[StoredEvent]) -> list[Any]:
    async with pool.acquire() as connection:
        streams = sorted({event.stream_id for event in events})
        return await fold_streams(connection, streams, events[-1].position)


async def test_batch_after_batch_the_kept_states_are_the_streams_folded_whole(
    pool: asyncpg.Pool,
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    kept = KeptFolds()
    cases = [await desk.receive("BR-A", DAY) for _ in range(3)]
    first = await feed_after(desk, 0)
    async with pool.acquire() as connection:
        assert await kept.states_after(connection, first) == await folded_whole(pool, first)

    for case_id in cases[:2]:
        await desk.assign(case_id, DAY)
    await desk.decide(cases[0], DAY, redress_fen=700)
    second = await feed_after(desk, first[-1].position)
    states = await kept.states_after(NoReads(), second)  # type: ignore[arg-type]
    assert states == await folded_whole(pool, second)
    assert {state.id: state.version for state in states} == {cases[0]: 3, cases[1]: 2}


async def test_a_case_whose_earlier_events_were_not_kept_is_read_and_folded_whole(
    pool: asyncpg.Pool,
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    seen, unseen = await desk.receive("BR-A", DAY), await desk.receive("BR-A", DAY)
    kept = KeptFolds()
    receipts = await feed_after(desk, 0)
    async with pool.acquire() as connection:
        await kept.states_after(connection, [e for e in receipts if e.stream_id == seen])

    await desk.assign(seen, DAY)
    await desk.assign(unseen, DAY)
    assigned = await feed_after(desk, receipts[-1].position)
    async with pool.acquire() as connection:
        states = await kept.states_after(connection, assigned)
    assert states == await folded_whole(pool, assigned)
    assert {state.id for state in states} == {seen, unseen}


async def test_events_that_do_not_follow_the_kept_one_are_not_evolved_from_it(
    pool: asyncpg.Pool,
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", DAY)
    kept = KeptFolds()
    receipt = await feed_after(desk, 0)
    async with pool.acquire() as connection:
        await kept.states_after(connection, receipt)
    await desk.assign(case_id, DAY)
    await desk.decide(case_id, DAY, redress_fen=300)
    later = await feed_after(desk, receipt[-1].position)

    # the decision alone, its assignment skipped: a gap, so the stream is read again
    async with pool.acquire() as connection:
        states = await kept.states_after(connection, later[1:])
    assert states == await folded_whole(pool, later)
