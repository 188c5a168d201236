"""Each batch of a rebuild's scan looks for erasures committed since the scan's position. Those
are read by the events' primary key whatever the table's statistics: on a store never analyzed
(just after a bulk import, before autovacuum's first pass) the lower bound alone was planned as
a sequential scan of every event, once per batch."""

import asyncpg

from complaintcore.domain.events import PersonalDataErased
from complaintcore.projections.rebuild import scan as scan_module

EVENTS = 20_000

_EVENT_SHAPED_ROWS = """
INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,
                    recorded_at, prev_hash, hash)
SELECT 'PLAN-' || n, 1, 'ComplaintReceived', 1, '{"note": "a row to fill pages"}', '{}',
       now(), repeat('0', 64), repeat('1', 64)
FROM generate_series(1, $1) AS n
"""


def _relations_scanned_in_sequence(plan: dict) -> list[str]:
    found, nodes = [], [plan]
    while nodes:
        node = nodes.pop()
        if node.get("Node Type") == "Seq Scan":
            found.append(node["Relation Name"])
        nodes.extend(node.get("Plans", []))
    return found


async def test_the_erasures_since_the_scan_are_read_by_the_index_on_a_store_never_analyzed(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        await connection.execute(_EVENT_SHAPED_ROWS, EVENTS)
        analyzed = await connection.fetchrow(
            "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables"
            " WHERE relname = 'events'"
        )
        assert analyzed["last_analyze"] is None and analyzed["last_autoanalyze"] is None
        head = await connection.fetchval("SELECT max(position) FROM events")
        statement = scan_module._FORGET_ERASED_SINCE.format(table="case_view")
        explained = await connection.fetchval(
            f"EXPLAIN (FORMAT JSON) {statement}",
            head - 10,
            PersonalDataErased.event_type,
            ["PLAN-1", "PLAN-2"],
        )
    plan = explained[0]["Plan"]  # the pool's connections read json
    assert "events" not in _relations_scanned_in_sequence(plan)
