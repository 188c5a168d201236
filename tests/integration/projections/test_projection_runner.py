"""The projection runner: exactly once across crashes, one active runner, takeover."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from complaintcore.domain.state import ComplaintState
from complaintcore.events.model import StoredEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.projections import statistics
from complaintcore.projections.alerts import alerts_projection
from complaintcore.projections.rebuild import rebuild
from complaintcore.projections.runner import (
    STATISTICS,
    FeedProjection,
    ProjectionRunner,
    SchemaNotThisRelease,
    lock_key,
    projection_lag,
    read_checkpoint,
    runner_backend_pid,
)
from complaintcore.projections.shared_feed import SharedFeed
from complaintcore.projections.statistics.queries import institution_statistics
from projection_support import CaseDesk, table_rows

DAY = date(2026, 3, 2)


class CrashBeforeCommit(Exception):
    pass


def crashing_after_writing(projection: FeedProjection) -> FeedProjection:
    """The statistics projection, dying after it wrote its rows and before the commit."""

    async def write_then_crash(
        connection: asyncpg.Connection, states: Sequence[ComplaintState]
    ) -> None:
        await projection.project(connection, states)
        assert await connection.fetchval("SELECT count(*) FROM case_statistics") > 0
        raise CrashBeforeCommit

    return FeedProjection(projection.name, write_then_crash)


async def three_cases(desk: CaseDesk) -> list[str]:
    await desk.plant_tree()
    cases = [await desk.receive("BR-A", DAY) for _ in range(3)]
    await desk.assign(cases[0], DAY)
    await desk.decide(cases[0], DAY, redress_fen=700)
    return cases


async def received_and_redress(pool: asyncpg.Pool) -> tuple[int, int]:
    answer, _ = await institution_statistics(pool, "HO", ["HO", "BR-A"], DAY, DAY, None, DAY)
    figures = answer["total"]["figures"]
    return figures["received"], figures["redress_total_fen"]


async def test_a_crash_before_the_commit_leaves_nothing_and_the_batch_is_applied_once(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await three_cases(desk)
    crashing = ProjectionRunner(database_url, desk.store, crashing_after_writing(STATISTICS))
    with pytest.raises(CrashBeforeCommit):
        await crashing.catch_up()
    assert await read_checkpoint(pool, statistics.NAME) == 0
    assert await table_rows(pool, "case_statistics") == []

    runner = ProjectionRunner(database_url, desk.store, batch_size=2)
    head = await runner.catch_up()
    assert await received_and_redress(pool) == (3, 700)
    # applying the same events again (as after a crash between two batches) counts nothing twice
    await pool.execute("UPDATE projection_checkpoints SET position = 0")
    assert await runner.catch_up() == head
    assert await received_and_redress(pool) == (3, 700)
    assert (await projection_lag(pool, statistics.NAME))["lag_events"] == 0


RUNNER_THAT_DIES_MID_BATCH = textwrap.dedent(
    """
    import asyncio, os, sys
    from pathlib import Path
    from complaintcore.infra.database import create_pool
    from complaintcore.events.store import PostgresEventStore
    from complaintcore.projections.runner import STATISTICS, FeedProjection, ProjectionRunner

    async def main(url, marker):
        async def write_and_hang(connection, states):
            await STATISTICS.project(connection, states)
            Path(marker).write_text("rows written, not committed")
            await asyncio.sleep(3600)

        pool = await create_pool(url, min_size=1, max_size=2)
        projection = FeedProjection(STATISTICS.name, write_and_hang)
        await ProjectionRunner(url, PostgresEventStore(pool), projection).catch_up()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_a_runner_killed_in_the_middle_of_a_batch_resumes_without_double_counting(
    pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    desk = CaseDesk(pool)
    await three_cases(desk)
    marker = tmp_path / "mid-batch"
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER_THAT_DIES_MID_BATCH, database_url, str(marker)],
        env=os.environ.copy(),
    )
    try:
        await _wait_for(marker.exists, process)
        assert await runner_backend_pid(pool, statistics.NAME) is not None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    await _wait_for_release(pool)
    assert await read_checkpoint(pool, statistics.NAME) == 0
    assert await table_rows(pool, "case_statistics") == []

    await ProjectionRunner(database_url, desk.store).catch_up()
    assert await received_and_redress(pool) == (3, 700)


async def test_one_runner_works_at_a_time_and_a_standby_takes_over(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await three_cases(desk)
    store = PostgresEventStore(pool)
    runners = [
        ProjectionRunner(database_url, store, poll_interval=0.05, standby_retry=0.05)
        for _ in range(3)
    ]
    tasks = [asyncio.create_task(runner.run()) for runner in runners]
    try:
        await _wait_until(lambda: any(r.role == "active" for r in runners))
        await _wait_until(lambda: sum(r.role == "standby" for r in runners) == 2)
        (active,) = [r for r in runners if r.role == "active"]
        holder = await runner_backend_pid(pool, statistics.NAME)
        assert holder == active.backend_pid
        # the lock is the two-int kind (objsubid 2), which the event store's feed never mistakes
        # for one of its position floors (objsubid 1)
        locks = await pool.fetch(
            "SELECT objsubid FROM pg_locks WHERE locktype = 'advisory' AND pid = $1", holder
        )
        assert [row["objsubid"] for row in locks] == [2]
        await _wait_until_caught_up(pool)
        assert (await projection_lag(pool, statistics.NAME, active))["runner"] == "here"

        tasks[runners.index(active)].cancel()
        await asyncio.gather(tasks[runners.index(active)], return_exceptions=True)
        await _wait_until(lambda: any(r.role == "active" for r in runners if r is not active))
        await desk.receive("BR-A", DAY)
        await _wait_until_caught_up(pool)
        assert await received_and_redress(pool) == (4, 700)
        assert sum(r.role == "active" for r in runners) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_runner_writes_nothing_once_a_newer_release_migrated_the_schema(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """A rolling upgrade: the new release migrated (and may have emptied a projection for its
    own runner to write again) while an old process still runs. Its runner must not write."""
    desk = CaseDesk(pool)
    await three_cases(desk)
    await pool.execute("UPDATE alembic_version SET version_num = '9999'")

    with pytest.raises(SchemaNotThisRelease, match="schema is at 9999"):
        await ProjectionRunner(database_url, PostgresEventStore(pool)).catch_up()

    assert await read_checkpoint(pool, statistics.NAME) == 0
    assert await pool.fetchval("SELECT count(*) FROM case_statistics") == 0


async def test_the_lock_key_is_a_stable_pair_of_non_negative_ints() -> None:
    namespace, key = lock_key("statistics")
    assert lock_key("statistics") == (namespace, key)
    assert 0 <= key < 2**31 and lock_key("case_view")[1] != key


async def _wait_until_caught_up(pool: asyncpg.Pool) -> None:
    async def caught_up() -> bool:
        return (await projection_lag(pool, statistics.NAME))["lag_events"] == 0

    for _ in range(600):
        if await caught_up():
            return
        await asyncio.sleep(0.05)
    pytest.fail("the runner did not catch up")


async def _wait_until(condition: object) -> None:
    for _ in range(600):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    pytest.fail("condition never held")


async def _wait_for(condition: object, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not condition():  # type: ignore[operator]
        if process.poll() is not None:
            pytest.fail(f"the runner process exited with {process.returncode}")
        if time.monotonic() > deadline:
            pytest.fail("the runner never reached the middle of its batch")
        await asyncio.sleep(0.05)


async def _wait_for_release(pool: asyncpg.Pool) -> None:
    for _ in range(600):
        if await runner_backend_pid(pool, statistics.NAME) is None:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the killed runner's session kept its lock")


class CountingStore(PostgresEventStore):
    """The store, noting the position of every event its feed reads fetch."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.fetched: list[int] = []

    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        events = await super().read_feed(after=after, limit=limit)
        self.fetched += [event.position for event in events]
        return events


async def test_runners_sharing_the_feed_fetch_each_event_once_and_project_it_all(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    cases = await three_cases(desk)
    cases += [await desk.receive("BR-B", DAY) for _ in range(4)]
    store = CountingStore(pool)
    feed = SharedFeed(store, fresh_for=60)
    runners = [
        ProjectionRunner(database_url, feed, STATISTICS),
        ProjectionRunner(database_url, feed, alerts_projection(lambda: DAY)),
    ]
    await asyncio.gather(*(runner.catch_up() for runner in runners))

    positions = [row["position"] for row in await pool.fetch("SELECT position FROM events")]
    assert sorted(store.fetched) == sorted(positions)
    for runner in runners:
        assert await read_checkpoint(pool, runner.name) == max(positions)
    assert await received_and_redress(pool) == (3, 700)
    received = await pool.fetchval("SELECT count(*) FROM alerts WHERE event = 'case.received'")
    assert received == len(cases)
    facts = await table_rows(pool, statistics.TABLE)
    await rebuild(database_url, ["statistics"])
    assert await table_rows(pool, statistics.TABLE) == facts


async def test_the_figures_and_their_checkpoint_come_from_one_snapshot(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """A statistics answer names the feed position its figures are as of: read in the figures'
    own snapshot, a batch the runner commits meanwhile is in both or in neither."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await desk.receive("BR-A", DAY)
    runner = ProjectionRunner(database_url, desk.store, STATISTICS)
    first_position = await runner.catch_up()
    await desk.receive("BR-A", DAY)

    async with pool.acquire() as reader, reader.transaction(isolation="repeatable_read"):
        await reader.fetchval("SELECT 1")  # the snapshot is taken here
        await runner.catch_up()  # commits the second case's batch after it
        in_snapshot, checkpoint = await institution_statistics(
            reader, "HO", ["HO", "BR-A"], DAY, DAY, None, DAY
        )

    assert checkpoint == first_position
    assert in_snapshot["total"]["figures"]["received"] == 1
    now, checkpoint_now = await institution_statistics(
        pool, "HO", ["HO", "BR-A"], DAY, DAY, None, DAY
    )
    assert (now["total"]["figures"]["received"], checkpoint_now) == (
        2,
        await read_checkpoint(pool, statistics.NAME),
    )
    assert checkpoint_now > first_position
