"""The fan-out: new `alerts` rows into `webhook_deliveries`, the outbox the dispatcher sends.

One batch is one transaction: lock the checkpoint row (`webhook_fanout`, `FOR UPDATE SKIP
LOCKED`: a second process finding it locked skips the round, so any number of API processes may
run the worker and one works at a time), read the alerts after it in id order, insert one
delivery per alert and matching active subscription, and move the checkpoint to the batch's last
alert. A crash before the commit leaves both as they were; `UNIQUE (subscription_id, alert_id)`
would absorb a batch applied twice anyway.

Reading `id > checkpoint` is safe because the alerts have a single writer that inserts in id
order (migration 0014's contract): no alert with a smaller id can commit after a larger one.

A subscription matches an alert when its institution is the alert's institution or one of its
ancestors, and it lists the alert's name or `*`. A subscription made after an alert was fanned
out does not get that alert; one deleted before does not either.

**The planner's statistics after a burst** (`DeliveryStatistics`). The dispatcher's claim is
planned from what PostgreSQL believes `webhook_deliveries` holds. Autovacuum refreshes that
belief once a tenth of the table has changed, but looks at a database only once a minute
(`autovacuum_naptime`), so a burst of thousands of deliveries into a table it believes nearly
empty (a new deployment, a day turn's alerts) was claimed with a plan made for a handful: each
candidate's check for an earlier open delivery of its case walked every open delivery, 1 to 5
seconds a claim with 16,000 due (the bench's deliveries fell to 2.7 a second). The fan-out, which
makes the deliveries, analyzes the table itself once it has made as many as autovacuum would
have waited for (a tenth of the rows believed, and 1,000 at least); `SKIP_LOCKED`, so it never
waits behind an autovacuum already at it.
"""

from __future__ import annotations

import asyncpg

__all__ = ["FANOUT_NAME", "DeliveryStatistics", "fan_out_once", "fanout_lag"]

FANOUT_NAME = "alerts"

_LOCK = "SELECT position FROM webhook_fanout WHERE name = $1 FOR UPDATE SKIP LOCKED"
_FAN_OUT = """
WITH RECURSIVE batch AS (
    SELECT id, event, case_id, institution, registration_no, occurred_at, data
    FROM alerts WHERE id > $1 ORDER BY id LIMIT $2
),
lineage (alert_id, code, depth) AS (
    SELECT id, institution, 0 FROM batch
    UNION ALL
    SELECT lineage.alert_id, up.parent, lineage.depth + 1
    FROM lineage JOIN institutions AS up ON up.code = lineage.code
    WHERE up.parent IS NOT NULL AND lineage.depth < 64
),
made AS (
    INSERT INTO webhook_deliveries (
        delivery_id, subscription_id, alert_id, event, case_id, institution, registration_no,
        occurred_at, data
    )
    SELECT gen_random_uuid(), s.id, a.id, a.event, a.case_id, a.institution, a.registration_no,
           a.occurred_at, coalesce(a.data, '{}'::jsonb)
    FROM batch AS a
    JOIN (SELECT DISTINCT alert_id, code FROM lineage) AS l ON l.alert_id = a.id
    JOIN webhook_subscriptions AS s
      ON s.institution = l.code AND s.deleted_at IS NULL
     AND (a.event = ANY(s.events) OR '*' = ANY(s.events))
    ORDER BY a.id, s.id
    ON CONFLICT (subscription_id, alert_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT max(id) FROM batch) AS last_id, (SELECT count(*) FROM batch) AS n_read,
       (SELECT count(*) FROM made) AS made
"""
_MOVE = "UPDATE webhook_fanout SET position = $2, updated_at = now() WHERE name = $1"
_LAG = """
SELECT f.position, coalesce((SELECT max(id) FROM alerts), 0) AS head,
       (SELECT count(*) FROM alerts WHERE id > f.position) AS lag_alerts,
       (SELECT min(occurred_at) FROM alerts WHERE id > f.position) AS oldest_waiting_at
FROM webhook_fanout AS f WHERE f.name = $1
"""


async def fan_out_once(connection: asyncpg.Connection, batch_size: int = 500) -> tuple[int, int]:
    """One batch: (alerts read, deliveries made); (0, 0) when there was nothing new or another
    process holds the checkpoint."""
    async with connection.transaction():
        position = await connection.fetchval(_LOCK, FANOUT_NAME)
        if position is None:
            return 0, 0
        row = await connection.fetchrow(_FAN_OUT, position, batch_size)
        last_id = row["last_id"]
        if last_id is None:
            return 0, 0
        await connection.execute(_MOVE, FANOUT_NAME, last_id)
        return row["n_read"], row["made"]


async def fanout_lag(executor: asyncpg.Connection | asyncpg.Pool) -> dict[str, object]:
    row = await executor.fetchrow(_LAG, FANOUT_NAME)
    return dict(row) if row else {}


_ROWS_BELIEVED = (
    "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'webhook_deliveries'::regclass"
)
_ANALYZE = "ANALYZE (SKIP_LOCKED) webhook_deliveries"


class DeliveryStatistics:
    """Analyzes `webhook_deliveries` after the fan-out has made enough deliveries since the last
    time: `fraction` of the rows the planner believes the table holds, and `at_least` (the
    module's note)."""

    def __init__(self, at_least: int = 1_000, fraction: float = 0.1) -> None:
        self._at_least = at_least
        self._fraction = fraction
        self._made = 0

    async def after_fan_out(self, connection: asyncpg.Connection, made: int) -> bool:
        """Count `made` new deliveries and analyze the table if they are enough (outside the
        fan-out's transaction); whether it did."""
        self._made += made
        if self._made < self._at_least:
            return False
        believed = await connection.fetchval(_ROWS_BELIEVED)
        if self._made < self._fraction * believed:
            return False
        await connection.execute(_ANALYZE)
        self._made = 0
        return True
