"""The alert projection: clocks and alerts written by the one active runner, with its checkpoint.

Per batch, in the batch's transaction (projections/runner.py, `apply_batch`): `project` replaces
the batch's cases' rows of `alert_clocks`; `observe` inserts the case alerts of the batch's
events, then judges the batch's cases' running clocks as of today (a command that makes a clock
due soon or overdue, such as a paper complaint entered late, alerts at once). Per day, `sweep`
(the runner runs it once caught up with the feed, at start and whenever `key()` changes: a new
day, or a policy version that changes today's `due_soon_days`; in a transaction holding the
checkpoint row) judges every running clock that could be due soon
or overdue today: one range of the `alert_clocks_running` index. Each alert is inserted at most
once (`dedupe_key`), so a batch or a sweep applied again, or both judging the same clock,
announces nothing twice.

Today is injected (`today`, Asia/Shanghai in the API: `application.business_day`), and so is
each institution's `due_soon_days` in force on a day (`due_soon_days`: the application's
`PolicyStore.due_soon_days`), so this layer imports neither.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import asyncpg
import orjson

from complaintcore.domain.policy import DueSoonDays
from complaintcore.domain.state import ComplaintState
from complaintcore.events.model import StoredEvent
from complaintcore.projections.alerts import clocks
from complaintcore.projections.alerts.case_alerts import case_alerts
from complaintcore.projections.alerts.model import Alert
from complaintcore.projections.runner import FeedProjection

NAME = "alerts"
TABLE = "alerts"
CLOCKS = "alert_clocks"

Today = Callable[[], date]
DueSoonDaysOn = Callable[[date], Awaitable[DueSoonDays]]


async def default_due_soon_days(on: date) -> DueSoonDays:
    """DOMAIN.md's default for every institution (tests and tools without a policy store)."""
    return DueSoonDays()


_INSERT_ALERTS = f"""
INSERT INTO {TABLE} (event, case_id, institution, registration_no, occurred_at, data, dedupe_key)
SELECT u.event, u.case_id, u.institution, u.registration_no, coalesce(u.occurred_at, now()),
       u.data::jsonb, u.dedupe_key
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
            $7::text[])
     WITH ORDINALITY AS u(event, case_id, institution, registration_no, occurred_at, data,
                          dedupe_key, n)
WHERE NOT EXISTS (SELECT 1 FROM {TABLE} a WHERE a.dedupe_key = u.dedupe_key)
ORDER BY u.n
ON CONFLICT (dedupe_key) DO NOTHING
"""


async def insert_alerts(connection: asyncpg.Connection, alerts: Sequence[Alert]) -> None:
    """Insert `alerts` in their order, each whose key is not there yet (in the caller's
    transaction: the runner's, which moves its checkpoint with them)."""
    fresh: dict[str, Alert] = {}
    for alert in alerts:
        fresh.setdefault(alert.dedupe_key, alert)
    if not fresh:
        return
    rows = list(fresh.values())
    await connection.execute(
        _INSERT_ALERTS,
        [str(a.event) for a in rows],
        [a.case_id for a in rows],
        [a.institution for a in rows],
        [a.registration_no for a in rows],
        [a.occurred_at for a in rows],
        [orjson.dumps(a.data).decode() for a in rows],
        [a.dedupe_key for a in rows],
    )


_CLOCK_COLUMNS = ", ".join(clocks.COLUMNS)


async def write_clocks(connection: asyncpg.Connection, states: Sequence[ComplaintState]) -> None:
    """Replace the cases' `alert_clocks` rows by those of their folded `states`."""
    if not states:
        return
    await connection.execute(
        f"DELETE FROM {CLOCKS} WHERE case_id = ANY($1::text[])", [s.id for s in states]
    )
    records = [row.record() for state in states for row in clocks.clock_rows(state)]
    await connection.copy_records_to_table(CLOCKS, records=records, columns=clocks.COLUMNS)


async def clocks_due_by(connection: asyncpg.Connection, last_day: date) -> list[clocks.ClockRow]:
    """The running clocks due on or before `last_day`, by due date (the sweep's index range)."""
    rows = await connection.fetch(
        f"SELECT {_CLOCK_COLUMNS} FROM {CLOCKS} WHERE state = '{clocks.RUNNING}' AND due_on <= $1"
        " ORDER BY due_on, case_id, clock, action_id",
        last_day,
    )
    return [clocks.ClockRow(*row) for row in rows]


# The cases among them with events committed past the runner's checkpoint: the feed holds them
# back behind an append still in flight (a bulk import's COPY), or they committed since its read.
_MOVED_ON = """
SELECT DISTINCT stream_id FROM events
WHERE stream_id = ANY($1::text[])
  AND position > (SELECT position FROM projection_checkpoints WHERE name = $2)
"""


async def _as_they_stand(
    connection: asyncpg.Connection, rows: Sequence[clocks.ClockRow]
) -> list[clocks.ClockRow]:
    """The sweep's rows of the cases whose clocks are folded from their last committed event:
    a case decided on its due date but not applied yet would be swept overdue (found by a
    review pass). The others are judged as of today by the batch that applies their events."""
    if not rows:
        return []
    cases = sorted({row.case_id for row in rows})
    moved_on = {row["stream_id"] for row in await connection.fetch(_MOVED_ON, cases, NAME)}
    return [row for row in rows if row.case_id not in moved_on]


_STREAM_HEADS = (
    "SELECT stream_id, max(version) FROM events WHERE stream_id = ANY($1::text[]) GROUP BY 1"
)


async def _of_cases_as_they_stand(
    connection: asyncpg.Connection,
    states: Sequence[ComplaintState],
    rows: Sequence[clocks.ClockRow],
) -> list[clocks.ClockRow]:
    """The clock rows of the cases whose folded state is their latest: a batch judges clocks as
    of today, so a case it holds only part of (a runner catching up, its later events in a
    later batch) would be judged from its past, a receipt long since decided as overdue
    (DOMAIN.md: as of today, never from a replay). Such a case is judged by the batch that holds
    its last event, or by the day's sweep once the runner has caught up."""
    heads = dict(await connection.fetch(_STREAM_HEADS, [state.id for state in states]))
    behind = {state.id for state in states if state.version < heads.get(state.id, 0)}
    if not behind:
        return list(rows)
    return [row for row in rows if row.case_id not in behind]


@dataclass(frozen=True)
class SweepDay:
    """The sweep's key: today and the `due_soon_days` in force today. A version taking effect
    today that makes cases due soon is swept within a poll, not the next day."""

    today: date
    due_soon_days: DueSoonDays

    def __str__(self) -> str:
        return self.today.isoformat()


class AlertProjection:
    """The alerts' `FeedProjection` parts (`feed_projection()`), with today and the policies
    injected."""

    def __init__(self, today: Today, due_soon_days: DueSoonDaysOn = default_due_soon_days):
        self._today = today
        self._due_soon_days = due_soon_days
        self._case_alerts_after: int | None = None

    def feed_projection(self) -> FeedProjection:
        return FeedProjection(NAME, self.project, self.observe, self)

    async def project(
        self, connection: asyncpg.Connection, states: Sequence[ComplaintState]
    ) -> None:
        await write_clocks(connection, states)

    async def observe(
        self,
        connection: asyncpg.Connection,
        states: Sequence[ComplaintState],
        events: Sequence[StoredEvent],
    ) -> None:
        after = await self._after(connection)
        alerts = case_alerts(events, {state.id: state for state in states}, after)
        rows = [row for state in states for row in clocks.clock_rows(state)]
        if any(row.state == clocks.RUNNING for row in rows):
            rows = await _of_cases_as_they_stand(connection, states, rows)
            today = self._today()
            recorded: dict[str, datetime] = {e.stream_id: e.recorded_at for e in events}
            alerts += clocks.judge(rows, today, await self._due_soon_days(today), recorded)
        await insert_alerts(connection, alerts)

    # --- the day's sweep (runner.Sweep) -------------------------------------------------------

    async def key(self) -> SweepDay:
        today = self._today()
        return SweepDay(today, await self._due_soon_days(today))

    async def sweep(self, connection: asyncpg.Connection, key: object) -> None:
        assert isinstance(key, SweepDay)
        today, days = key.today, key.due_soon_days
        soonest = max([days.default, *days.by_institution.values()])
        rows = await _as_they_stand(
            connection, await clocks_due_by(connection, today + timedelta(days=soonest))
        )
        await insert_alerts(connection, clocks.judge(rows, today, days))
        await connection.execute(
            "UPDATE alert_runner SET swept_on = $2, swept_at = now() WHERE name = $1", NAME, today
        )

    async def _after(self, connection: asyncpg.Connection) -> int:
        if self._case_alerts_after is None:
            after = await connection.fetchval(
                "SELECT case_alerts_after FROM alert_runner WHERE name = $1", NAME
            )
            self._case_alerts_after = after or 0
        return self._case_alerts_after


def alerts_projection(
    today: Today, due_soon_days: DueSoonDaysOn = default_due_soon_days
) -> FeedProjection:
    """The alerts as a projection the runner keeps (`background_runners(also=...)`)."""
    return AlertProjection(today, due_soon_days).feed_projection()
