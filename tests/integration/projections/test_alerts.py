"""The alert runner (projections/alerts/) over a real PostgreSQL: each case alert once; clock
alerts judged from the stored clocks as of an injected today, when a command makes them hold and
when the day turns, once per case and state; masked data only; one runner at a time; a restart
resumes from the checkpoint with nothing lost or doubled.

Cases are made through the command path (`CaseDesk`) on business dates in the past, and the
runner's today is set by each test, never the wall clock.
"""

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from complaintcore.application.retention_sweep import RetentionSweep, SweepOrder
from complaintcore.domain.policy import DueSoonDays
from complaintcore.domain.state import ComplaintState
from complaintcore.events.model import StoredEvent
from complaintcore.events.store import PostgresEventStore, take_position_floor
from complaintcore.projections.alerts import AlertProjection, alerts_projection
from complaintcore.projections.runner import (
    FeedProjection,
    ProjectionRunner,
    projection_lag,
    read_checkpoint,
)
from projection_support import CaseDesk, erase_as_admin
from testsupport import session_case_keys

D = date(2026, 3, 2)  # a Monday; received on D, a case is due on D + 15


def day(n: int) -> date:
    return D + timedelta(days=n)


class Today:
    """The runner's today, moved by the test."""

    def __init__(self, on: date) -> None:
        self.on = on

    def __call__(self) -> date:
        return self.on


async def run_alerts(
    database_url: str,
    desk: CaseDesk,
    today: date,
    due_soon_days: DueSoonDays | None = None,
    batch_size: int = 1000,
) -> int:
    """Apply the feed to the alerts (and sweep once) as of `today`; the checkpoint."""

    async def days(on: date) -> DueSoonDays:
        return due_soon_days or DueSoonDays()

    projection = alerts_projection(lambda: today, days)
    return await ProjectionRunner(
        database_url, desk.store, projection, batch_size=batch_size
    ).catch_up()


async def alerts(pool: asyncpg.Pool, case_id: str | None = None) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, event, case_id, institution, registration_no, occurred_at, data, dedupe_key"
        " FROM alerts WHERE $1::text IS NULL OR case_id = $1 ORDER BY id",
        case_id,
    )
    return [dict(row) for row in rows]


async def names(pool: asyncpg.Pool, case_id: str | None = None) -> list[str]:
    return [row["event"] for row in await alerts(pool, case_id)]


async def test_each_case_alert_is_emitted_once_in_the_order_of_its_events(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D)
    await desk.flag_major(case_id, day(1))
    await desk.assign(case_id, day(1))
    await desk.decide(case_id, day(5), redress_fen=700)
    await run_alerts(database_url, desk, day(6), batch_size=2)
    await desk.appeal(case_id, day(10))
    await run_alerts(database_url, desk, day(11))
    expected = ["case.received", "case.major", "case.decided", "review.requested"]
    assert await names(pool, case_id) == expected

    rows = {row["event"]: row for row in await alerts(pool, case_id)}
    received = rows["case.received"]
    registration_no = await pool.fetchval(
        "SELECT registration_no FROM case_view WHERE case_id = $1", case_id
    )
    assert (received["institution"], received["registration_no"]) == ("BR-A", registration_no)
    assert received["dedupe_key"] == f"case.received:{case_id}:1"
    assert received["data"] == {
        "version": 1,
        "received_on": "2026-03-02",
        "due_on": "2026-03-17",
        "channel": "phone",
        "business": "credit_card",
        "reason": "pricing_and_fees",
        "complainants": 1,
    }
    recorded_at = await pool.fetchval(
        "SELECT recorded_at FROM events WHERE stream_id = $1 AND version = 1", case_id
    )
    assert received["occurred_at"] == recorded_at
    assert rows["case.major"]["data"] == {
        "version": 2,
        "cause": "accident",
        "marked_on": "2026-03-03",
    }
    decided = rows["case.decided"]["data"]
    assert (decided["outcome"], decided["redress_fen"], decided["on_time"]) == ("upheld", 700, True)
    assert decided["decided_on"] == "2026-03-07" and decided["due_on"] == "2026-03-17"
    review = rows["review.requested"]["data"]
    assert (review["requested_on"], review["due_on"]) == ("2026-03-12", "2026-04-11")
    assert review["reviewing_institution"] == "HO"

    # the whole feed applied again (a checkpoint set back) announces nothing twice
    await pool.execute("UPDATE projection_checkpoints SET position = 0 WHERE name = 'alerts'")
    await run_alerts(database_url, desk, day(11))
    assert await names(pool, case_id) == expected


async def test_an_erasure_is_announced_once_without_personal_data(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", date(2019, 3, 1))
    await desk.withdraw(case_id, date(2019, 3, 4))
    on = date(2026, 6, 1)
    order = SweepOrder(on=on, correlation_id="alerts-test", dry_run=False, batch_cases=10)
    async with pool.acquire() as connection:
        sweep = RetentionSweep(
            connection, PostgresEventStore(pool), session_case_keys(), order, today=lambda: on
        )
        assert (await sweep.run(None)).erased == 1
    await run_alerts(database_url, desk, on)
    await run_alerts(database_url, desk, on)
    assert await names(pool, case_id) == ["case.received", "personal_data.erased"]
    (erased,) = [row for row in await alerts(pool, case_id) if row["event"].startswith("personal")]
    assert erased["data"] == {
        "version": 3,
        "erased_on": "2026-06-01",
        "closed_on": "2019-03-04",
        "retention_years": 5,
    }


async def test_a_case_entered_late_and_already_overdue_alerts_at_once_as_of_today(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D)  # due D + 15, entered as of a later today
    await run_alerts(database_url, desk, day(20))
    assert await names(pool, case_id) == ["case.received", "case.overdue"]
    overdue = (await alerts(pool, case_id))[1]
    assert overdue["dedupe_key"] == f"case.overdue:{case_id}:2026-03-17"
    assert overdue["data"] == {
        "due_on": "2026-03-17",
        "days_left": -5,
        "due_soon_days": 3,
        "judged_on": "2026-03-22",
    }
    # the command that made it hold is when it occurred
    assert overdue["occurred_at"] == (await alerts(pool, case_id))[0]["occurred_at"]
    # judged again on later days and later commands: still once
    await desk.assign(case_id, day(21))
    await run_alerts(database_url, desk, day(21))
    await run_alerts(database_url, desk, day(30))
    assert await names(pool, case_id) == ["case.received", "case.overdue"]
    # a clock that stopped never alerts again
    await desk.withdraw(case_id, day(31))
    await run_alerts(database_url, desk, day(40))
    assert await names(pool, case_id) == ["case.received", "case.overdue"]


@pytest.mark.parametrize("batch_size", [1, 2, 1000])
async def test_a_runner_catching_up_judges_each_case_as_it_stands_not_as_it_stood(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk, batch_size: int
) -> None:
    """Decided on time long before the runner reads it: whichever batch holds the receipt
    alone, the case is not announced overdue as of today (DOMAIN.md: never from a replay); one
    still running is."""
    decided = await desk.receive("BR-A", D)  # due D + 15
    running = await desk.receive("BR-A", D)
    await desk.assign(decided, day(1))
    await desk.decide(decided, day(10))

    await run_alerts(database_url, desk, day(20), batch_size=batch_size)

    assert await names(pool, decided) == ["case.received", "case.decided"]
    assert await names(pool, running) == ["case.received", "case.overdue"]


async def test_due_soon_honours_each_institutions_days(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    in_a = await desk.receive("BR-A", D)
    in_b = await desk.receive("BR-B", D)
    in_sub = await desk.receive("SUB-A1", D)
    policy = DueSoonDays(3, {"BR-A": 5, "SUB-A1": 0})
    await run_alerts(database_url, desk, day(10), policy)  # 5 days left
    assert await names(pool, in_a) == ["case.received", "case.due_soon"]
    assert await names(pool, in_b) == ["case.received"]
    await run_alerts(database_url, desk, day(12), policy)  # 3 days left: the default's turn
    assert await names(pool, in_b) == ["case.received", "case.due_soon"]
    assert await names(pool, in_sub) == ["case.received"]
    await run_alerts(database_url, desk, day(15), policy)  # due today: 0 days left
    assert await names(pool, in_sub) == ["case.received", "case.due_soon"]
    soon = (await alerts(pool, in_a))[1]["data"]
    assert (soon["days_left"], soon["due_soon_days"]) == (5, 5)
    assert await names(pool, in_a) == ["case.received", "case.due_soon"]


async def test_new_facts_moving_the_due_date_alert_again_for_the_new_one(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D)
    await run_alerts(database_url, desk, day(13))
    assert await names(pool, case_id) == ["case.received", "case.due_soon"]
    await desk.supplement(case_id, day(14), new_facts=True)  # due day(14) + 15 = day(29)
    await run_alerts(database_url, desk, day(14))
    await run_alerts(database_url, desk, day(27))
    await run_alerts(database_url, desk, day(30))
    await run_alerts(database_url, desk, day(31))
    keys = [row["dedupe_key"] for row in await alerts(pool, case_id)]
    assert keys == [
        f"case.received:{case_id}:1",
        f"case.due_soon:{case_id}:2026-03-17",
        f"case.due_soon:{case_id}:2026-03-31",
        f"case.overdue:{case_id}:2026-03-31",
    ]


async def test_a_pause_holds_the_alerts_and_the_resumed_due_date_alerts(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D)
    await desk.pause(case_id, day(5))
    await run_alerts(database_url, desk, day(30))  # paused: neither due soon nor overdue
    assert await names(pool, case_id) == ["case.received"]
    await desk.resume(case_id, day(31))  # 26 paused days: due day(41)
    await run_alerts(database_url, desk, day(31))
    await run_alerts(database_url, desk, day(42))
    keys = [row["dedupe_key"] for row in await alerts(pool, case_id)]
    assert keys[1:] == [f"case.overdue:{case_id}:{day(41)}"]


async def test_rectification_actions_past_due_and_not_closed_alert_once_each(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D)
    await desk.assign(case_id, day(1))
    await desk.decide(case_id, day(5), head_office=False)
    await desk.attribute(case_id, day(6), due_on=(day(20), day(25), day(40)))
    await desk.rectify(case_id, day(18), "a-1")  # closed in time
    await run_alerts(database_url, desk, day(26))
    await run_alerts(database_url, desk, day(27))
    overdue = [row for row in await alerts(pool, case_id) if row["event"].startswith("rect")]
    assert [row["dedupe_key"] for row in overdue] == [
        f"rectification.overdue:{case_id}:a-2:{day(25)}"
    ]
    assert overdue[0]["data"] == {
        "action_id": "a-2",
        "due_on": str(day(25)),
        "days_left": -1,
        "judged_on": str(day(26)),
    }
    await desk.rectify(case_id, day(41), "a-3")  # closed late: overdue the day before
    await run_alerts(database_url, desk, day(41))
    assert [row["event"] for row in await alerts(pool, case_id)].count(
        "rectification.overdue"
    ) == 1  # day(41) judged the case as of its done day: closed


async def test_the_review_clock_alerts_due_soon_and_overdue_once(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D)
    await desk.assign(case_id, day(1))
    await desk.decide(case_id, day(5))
    await desk.appeal(case_id, day(10))  # review due day(40)
    await run_alerts(database_url, desk, day(20))
    await run_alerts(database_url, desk, day(38))
    await run_alerts(database_url, desk, day(39))
    await run_alerts(database_url, desk, day(41))
    assert await names(pool, case_id) == [
        "case.received",
        "case.decided",
        "review.requested",
        "review.due_soon",
        "review.overdue",
    ]
    keys = [row["dedupe_key"] for row in await alerts(pool, case_id)]
    assert keys[-1] == f"review.overdue:{case_id}:{day(40)}"
    await desk.decide_review(case_id, day(42))
    await run_alerts(database_url, desk, day(50))
    assert len(await alerts(pool, case_id)) == 5


async def test_a_day_turn_emits_the_newly_due_ones_exactly_once(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    early = await desk.receive("BR-A", D)  # due day(15)
    late = await desk.receive("BR-B", day(3))  # due day(18)
    today = Today(day(5))
    projection = alerts_projection(today)
    runner = ProjectionRunner(database_url, desk.store, projection, poll_interval=0.02)
    task = asyncio.create_task(runner.run())
    try:
        await _until(lambda: _count(pool, "case.received"), 2)
        today.on = day(12)  # early: 3 days left
        await _until(lambda: _count(pool, "case.due_soon"), 1)
        today.on = day(16)  # early overdue, late due soon
        await _until(lambda: _count(pool, "case.overdue"), 1)
        await _until(lambda: _count(pool, "case.due_soon"), 2)
        await asyncio.sleep(0.2)  # polls on the same day add nothing
        today.on = day(17)
        await asyncio.sleep(0.2)
        assert await pool.fetchval("SELECT swept_on FROM alert_runner") == day(17)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await names(pool, early) == ["case.received", "case.due_soon", "case.overdue"]
    assert await names(pool, late) == ["case.received", "case.due_soon"]
    sweep_moments = await pool.fetch(
        "SELECT occurred_at FROM alerts WHERE event <> 'case.received' ORDER BY id"
    )
    receipts = await pool.fetchval(
        "SELECT max(recorded_at) FROM events WHERE event_type = 'ComplaintReceived'"
    )
    assert all(row["occurred_at"] > receipts for row in sweep_moments)


async def test_runners_at_once_never_emit_twice_and_a_standby_takes_over(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    store = desk.store
    today = Today(day(20))
    runners = [
        ProjectionRunner(
            database_url, store, alerts_projection(today), poll_interval=0.02, standby_retry=0.05
        )
        for _ in range(3)
    ]
    tasks = [asyncio.create_task(runner.run()) for runner in runners]
    try:
        cases = [await desk.receive("BR-A", D) for _ in range(4)]
        await _until(lambda: _count(pool, "case.overdue"), 4)
        (active,) = [r for r in runners if r.role == "active"]
        assert (await projection_lag(pool, "alerts", active))["runner"] == "here"
        tasks[runners.index(active)].cancel()
        await asyncio.gather(tasks[runners.index(active)], return_exceptions=True)
        cases += [await desk.receive("BR-B", D) for _ in range(4)]
        today.on = day(21)  # the next active one sweeps at start and on the new day
        await _until(lambda: _count(pool, "case.overdue"), 8)
        # a catch-up racing the active runner waits for the lock, then finds nothing to add
        racing = ProjectionRunner(database_url, store, alerts_projection(today), standby_retry=0.05)
        before = await _all_keys(pool)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await racing.catch_up()
        assert await _all_keys(pool) == before
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert Counter(await names(pool)) == {"case.received": 8, "case.overdue": 8}
    ids = [row["id"] for row in await alerts(pool)]
    for case_id in cases:
        assert await names(pool, case_id) == ["case.received", "case.overdue"]
    assert ids == sorted(ids)


async def test_the_alerts_hold_no_personal_data(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    case_id = await desk.receive("BR-A", D, staff=("s-9",))
    await desk.flag_major(case_id, day(1))
    await desk.assign(case_id, day(1))
    await desk.decide(case_id, day(5))
    await desk.appeal(case_id, day(10))
    await desk.attribute(case_id, day(11), due_on=(day(12),))
    await run_alerts(database_url, desk, day(60))
    assert len(await alerts(pool)) >= 6
    # every column but the machine's own (the id, and the timestamp, whose microseconds are
    # random digits), with the case's random UUID taken out: "138" turned up in either by chance
    text = await pool.fetchval(
        "SELECT string_agg((t.event, t.case_id, t.institution, t.registration_no, t.data,"
        " t.dedupe_key)::text, ' ') FROM alerts t"
    )
    text = text.replace(case_id, "<case id>")
    for personal in (
        "张三",
        "张",
        "11010519491231002X",
        "1101",
        "002X",
        "13800138000",
        "138",
        "李四",
        "退还年费",
        "未经同意扣收年费",
        "核实情况",
        "依据和理由",
        "安全事故",
        "不服",
        "修订流程",
        "owner-1",
        "sms-",
    ):
        assert personal not in text, personal


class CrashBeforeCommit(Exception):
    pass


def crashing(projection: FeedProjection) -> FeedProjection:
    """The alerts, dying after they inserted a batch's alerts and before the commit."""

    async def observe_then_crash(
        connection: asyncpg.Connection,
        states: Sequence[ComplaintState],
        events: Sequence[StoredEvent],
    ) -> None:
        assert projection.observe is not None
        await projection.observe(connection, states, events)
        assert await connection.fetchval("SELECT count(*) FROM alerts") > 0
        raise CrashBeforeCommit

    return FeedProjection(projection.name, projection.project, observe_then_crash)


async def test_a_restart_resumes_from_the_checkpoint_with_nothing_lost_or_doubled(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    first = [await desk.receive("BR-A", D) for _ in range(3)]
    today = Today(day(20))
    with pytest.raises(CrashBeforeCommit):
        await ProjectionRunner(
            database_url, desk.store, crashing(alerts_projection(today))
        ).catch_up()
    assert await read_checkpoint(pool, "alerts") == 0
    assert await alerts(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM alert_clocks") == 0

    head = await ProjectionRunner(
        database_url, desk.store, alerts_projection(today), batch_size=2
    ).catch_up()
    assert await read_checkpoint(pool, "alerts") == head
    second = [await desk.receive("BR-B", D) for _ in range(2)]
    await desk.assign(first[0], day(20))
    # a new process: a fresh projection, from the checkpoint
    await ProjectionRunner(database_url, desk.store, alerts_projection(today)).catch_up()
    assert Counter(await names(pool)) == {"case.received": 5, "case.overdue": 5}
    for case_id in first + second:
        assert await names(pool, case_id) == ["case.received", "case.overdue"]


async def test_alerts_are_append_only(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    await desk.receive("BR-A", D)
    await run_alerts(database_url, desk, D)
    for statement in ("UPDATE alerts SET event = 'x'", "DELETE FROM alerts", "TRUNCATE alerts"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(statement)


async def test_history_before_the_alerts_raises_no_case_alerts_but_its_clocks_are_judged(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    old = await desk.receive("BR-A", D)
    await pool.execute(
        "UPDATE alert_runner SET case_alerts_after = (SELECT max(position) FROM events)"
    )
    new = await desk.receive("BR-A", D)
    await run_alerts(database_url, desk, day(20))
    assert await names(pool, old) == ["case.overdue"]
    assert await names(pool, new) == ["case.received", "case.overdue"]


async def test_the_sweep_reads_the_running_clocks_in_one_index_range(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    await desk.receive("BR-A", D)
    await run_alerts(database_url, desk, D)
    async with pool.acquire() as connection:
        await connection.execute("SET enable_seqscan = off")
        plan = await connection.fetchval(
            "EXPLAIN SELECT * FROM alert_clocks WHERE state = 'running' AND due_on <= $1", D
        )
    assert "alert_clocks_running" in plan
    assert (await AlertProjection(lambda: D).key()).today == D


async def _count(pool: asyncpg.Pool, event: str) -> int:
    return await pool.fetchval("SELECT count(*) FROM alerts WHERE event = $1", event)


async def _all_keys(pool: asyncpg.Pool) -> list[str]:
    return [
        row["dedupe_key"] for row in await pool.fetch("SELECT dedupe_key FROM alerts ORDER BY id")
    ]


async def _until(count: Any, expected: int) -> None:
    for _ in range(400):
        if await count() == expected:
            return
        await asyncio.sleep(0.025)
    pytest.fail(f"never reached {expected}: {await count()}")


async def test_an_erased_case_raises_no_rectification_alert(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    """An erased case takes no command more, `rectify` included: an overdue action of its would
    be an alert nobody can act on (found by a review pass)."""
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.assign(case_id, date(2019, 3, 5))
    await desk.decide(case_id, date(2019, 3, 6))  # closed 30 days after the notice
    await desk.attribute(case_id, date(2026, 5, 30), due_on=(date(2026, 6, 3),))
    await erase_as_admin(desk, case_id)
    await run_alerts(database_url, desk, date(2026, 6, 5))
    assert "rectification.overdue" not in await names(pool, case_id)
    assert "personal_data.erased" in await names(pool, case_id)


async def test_a_case_decided_on_its_due_date_is_not_swept_overdue_behind_an_append_in_flight(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    """The day's sweep judged `alert_clocks` as last folded, though the case had a decision
    committed that the feed still held back behind an append in flight (a bulk import's COPY):
    a case decided on its due date was announced overdue (found by a review pass)."""
    case_id = await desk.receive("BR-A", D)  # due day(15)
    await desk.assign(case_id, day(1))
    await run_alerts(database_url, desk, day(14))  # due soon: 1 day left
    assert await names(pool, case_id) == ["case.received", "case.due_soon"]

    in_flight = await asyncpg.connect(database_url)
    try:
        transaction = in_flight.transaction()
        await transaction.start()
        await take_position_floor(in_flight)
        await desk.decide(case_id, day(15))  # decided and notified on the due date: met
        await run_alerts(database_url, desk, day(16))  # the day turns, the append still running
        await transaction.rollback()
    finally:
        await in_flight.close()
    await run_alerts(database_url, desk, day(16))
    assert await names(pool, case_id) == ["case.received", "case.due_soon", "case.decided"]
