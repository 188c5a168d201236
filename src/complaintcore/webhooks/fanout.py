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
"""

from __future__ import annotations

import asyncpg

__all__ = ["FANOUT_NAME", "fan_out_once", "fanout_lag"]

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
