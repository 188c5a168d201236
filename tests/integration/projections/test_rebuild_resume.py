"""An interrupted rebuild resumes where it stopped, takes in what was written meanwhile, and
still equals the live projections; the old tables answer queries until the swap."""

import argparse
import asyncio
from datetime import date, timedelta

import asyncpg
import pytest

from complaintcore.cli.main import build_parser
from complaintcore.cli.projections import BarProgress, rebuild_command
from complaintcore.domain.commands import Outcome
from complaintcore.infra.database import create_pool
from complaintcore.infra.settings import Settings
from complaintcore.projections.rebuild import (
    TARGETS,
    RebuildAlreadyRunning,
    Rebuilder,
    RebuildSettings,
    SilentProgress,
    rebuild,
)
from complaintcore.projections.runner import ProjectionRunner, read_checkpoint
from projection_support import CaseDesk, table_rows

DAY = date(2026, 2, 2)
# One scan worker: the scan runs in this process, page by page, so a test can stop it at a page.
SMALL_BATCHES = RebuildSettings(
    page_events=7, flush_rows=3, catch_up_window=5, close_enough=2, scan_workers=1
)


class Interrupted(Exception):
    """Stands for Ctrl-C (the CLI turns it into a clean stop the same way)."""


class InterruptAt(SilentProgress):
    """Stops the rebuild at the n-th page of the scan, or when a phase begins."""

    def __init__(self, *, pages: int | None = None, phase: str | None = None) -> None:
        self.pages, self.phase_text = pages, phase

    def advance(self, events: int) -> None:
        if self.pages is not None:
            self.pages -= 1
            if self.pages == 0:
                raise Interrupted

    def phase(self, name: str, text: str) -> None:
        if self.phase_text and text.startswith(self.phase_text):
            raise Interrupted


async def some_cases(desk: CaseDesk, count: int, first_day: date) -> list[str]:
    cases = []
    for number in range(count):
        on = first_day + timedelta(days=number)
        case_id = await desk.receive(("BR-A", "BR-B", "SUB-A1")[number % 3], on)
        await desk.assign(case_id, on)
        if number % 2:
            await desk.extend(case_id, on + timedelta(days=3))
        if number % 3 == 0:
            await desk.decide(case_id, on + timedelta(days=number), outcome=Outcome.UPHELD)
        cases.append(case_id)
    return cases


async def index_definitions(pool: asyncpg.Pool) -> list[tuple[str, str, str]]:
    rows = await pool.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes"
        " WHERE tablename IN ('case_view', 'case_statistics') ORDER BY 1, 2"
    )
    return [tuple(row) for row in rows]


async def live_tables(pool: asyncpg.Pool) -> tuple[list[dict], list[dict]]:
    return await table_rows(pool, "case_view"), await table_rows(pool, "case_statistics")


@pytest.mark.parametrize(
    "interruption",
    [
        {"pages": 3},  # in the middle of the scan, some rows written
        {"phase": "building indexes"},  # scan done
        {"phase": "swapping"},  # caught up, not swapped
    ],
    ids=["scan", "index", "swap"],
)
async def test_an_interrupted_rebuild_resumes_and_still_equals_live(
    pool: asyncpg.Pool, database_url: str, interruption: dict
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    cases = await some_cases(desk, 12, DAY)
    runner = ProjectionRunner(database_url, desk.store)
    await runner.catch_up()

    for name in ("case_view", "statistics"):
        stop = InterruptAt(**interruption)
        with pytest.raises(Interrupted):
            await Rebuilder(database_url, [TARGETS[name]], stop, SMALL_BATCHES).run()
    progress = await pool.fetch(
        "SELECT r.name, r.events_total, sum(p.events_done) AS events_done"
        " FROM projection_rebuilds AS r JOIN projection_rebuild_partitions AS p USING (name)"
        " GROUP BY r.name, r.events_total ORDER BY r.name"
    )
    assert [row["name"] for row in progress] == ["case_view", "statistics"]
    if "pages" in interruption:
        assert all(0 < row["events_done"] < row["events_total"] for row in progress)
        assert await pool.fetchval("SELECT count(*) FROM case_view_rebuild") > 0

    # meanwhile the service goes on: new cases and new events on old ones
    before = await live_tables(pool)
    later = DAY + timedelta(days=40)
    await some_cases(desk, 4, later)
    await desk.decide(cases[1], later, outcome=Outcome.REJECTED, redress_fen=900)
    await desk.withdraw(cases[2], later)
    await runner.catch_up()
    live = await live_tables(pool)
    assert live != before and len(live[0]) == 16

    indexes = await index_definitions(pool)
    results = await rebuild(database_url, settings=SMALL_BATCHES)
    assert [(r.name, r.resumed) for r in results] == [("case_view", True), ("statistics", True)]
    assert await live_tables(pool) == live
    assert await index_definitions(pool) == indexes  # same names, same definitions
    assert await pool.fetchval("SELECT count(*) FROM projection_rebuilds") == 0
    assert await pool.fetchval("SELECT count(*) FROM projection_rebuild_partitions") == 0
    assert await pool.fetchval("SELECT to_regclass('case_view_rebuild')") is None


async def test_commands_and_the_runner_carry_on_across_a_swap(
    pool: asyncpg.Pool, database_url: str
) -> None:
    """Commands keep running while the rebuild scans, catches up and swaps; afterwards the
    runner carries on from the swapped table's checkpoint."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await some_cases(desk, 6, DAY)
    runner = ProjectionRunner(database_url, desk.store, poll_interval=0.01, standby_retry=0.05)
    runner_task = asyncio.create_task(runner.run())
    stop = asyncio.Event()

    async def keep_receiving() -> int:
        received = 0
        while not stop.is_set():
            case_id = await desk.receive("BR-B", DAY + timedelta(days=30))
            await desk.assign(case_id, DAY + timedelta(days=30))
            received += 1
        return received

    writer = asyncio.create_task(keep_receiving())
    try:
        await rebuild(database_url, settings=SMALL_BATCHES)
        await rebuild(database_url, ["statistics"], settings=SMALL_BATCHES)
    finally:
        stop.set()
        received = await writer
    try:
        await _wait_until_caught_up(pool)
    finally:
        runner_task.cancel()
        await asyncio.gather(runner_task, return_exceptions=True)
    assert received > 0
    assert await pool.fetchval("SELECT count(*) FROM case_view") == 6 + received
    assert await pool.fetchval("SELECT count(*) FROM case_statistics") == 6 + received
    live = await live_tables(pool)
    await rebuild(database_url)
    assert await live_tables(pool) == live


async def test_a_second_rebuild_of_the_same_projection_is_refused_while_one_runs(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    await some_cases(desk, 3, DAY)
    gate, release = asyncio.Event(), asyncio.Event()

    class Paused(SilentProgress):
        def scanning(self, name: str, total: int, done: int) -> None:
            gate.set()

        def advance(self, events: int) -> None:
            pass

    first = Rebuilder(database_url, [TARGETS["statistics"]], Paused(), RebuildSettings())

    async def hold() -> None:
        original = first._scan

        async def scan_after_release(connection: asyncpg.Connection, job: object) -> None:
            await release.wait()
            await original(connection, job)  # type: ignore[arg-type]

        first._scan = scan_after_release  # type: ignore[method-assign]
        await first.run()

    running = asyncio.create_task(hold())
    try:
        await asyncio.wait_for(_until_progress_row(pool), timeout=30)
        with pytest.raises(RebuildAlreadyRunning):
            await rebuild(database_url, ["statistics"])
    finally:
        release.set()
        await running
    assert await read_checkpoint(pool, "statistics") >= 0


def test_the_command_is_registered_with_the_cli() -> None:
    args = build_parser().parse_args(["projections", "rebuild", "statistics", "--batch", "50"])
    assert (args.handler, args.names, args.batch, args.restart) == (
        rebuild_command,
        ["statistics"],
        50,
        False,
    )
    assert build_parser().parse_args(["projections", "rebuild"]).names == []


def test_ctrl_c_stops_the_command_and_running_it_again_resumes(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_cases_in(database_url, 5))
    settings = Settings(database_url=database_url)
    args = argparse.Namespace(
        names=["statistics"], restart=False, batch=2, workers=1, read_from=None
    )
    pages = iter(range(3))

    def ctrl_c_on_the_second_page(self: BarProgress, events: int) -> None:
        if next(pages) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(BarProgress, "advance", ctrl_c_on_the_second_page)
    assert rebuild_command(args, settings) == 130
    assert "run the same command again to resume" in capsys.readouterr().err

    monkeypatch.undo()
    assert rebuild_command(args, settings) == 0
    printed = capsys.readouterr().out
    assert "statistics: rebuilt (resumed), at feed position " in printed
    assert " events replayed in " in printed
    unknown = argparse.Namespace(names=["nope"], restart=False, batch=2, workers=1, read_from=None)
    assert rebuild_command(unknown, settings) == 1
    assert "unknown projection" in capsys.readouterr().err


async def _cases_in(database_url: str, count: int) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        desk = CaseDesk(pool)
        await desk.plant_tree()
        await some_cases(desk, count, DAY)
    finally:
        await pool.close()


async def _until_progress_row(pool: asyncpg.Pool) -> None:
    while not await pool.fetchval("SELECT count(*) FROM projection_rebuilds"):
        await asyncio.sleep(0.02)


async def _wait_until_caught_up(pool: asyncpg.Pool) -> None:
    for _ in range(600):
        checkpoint = await read_checkpoint(pool, "statistics")
        if not await pool.fetchval("SELECT count(*) FROM events WHERE position > $1", checkpoint):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the runner did not catch up")
