"""complaintcore's own figures, each measured the way TARGETS.md words it."""

import asyncio
import random
import time
import uuid
from datetime import timedelta

import asyncpg
import httpx
import orjson

from bench import histories
from bench.baselines import METADATA, PAYLOAD, WORKERS
from bench.measure import Throughput, run_workers
from bench.service import load
from complaintcore.application.bulk_import import (
    ActorBody,
    BulkImporter,
    ImportReport,
    case_id_for,
    load_reference_data,
    numbered_lines,
)
from complaintcore.application.business_day import shanghai_today
from complaintcore.database import create_pool
from complaintcore.events.model import EventMetadata, NewEvent
from complaintcore.events.store import _TAKE_POSITION_FLOOR as TAKE_POSITION_FLOOR
from complaintcore.events.store import PostgresEventStore
from complaintcore.institutions import InstitutionDirectory
from complaintcore.tokens import create_token

HTTP_CLIENTS = 32
LONG_CASE = "BENCH-LONG-30"


async def store_append(url: str, seconds: float) -> Throughput:
    """16 tasks, each appending single events with an expected version through the store."""
    pool = await create_pool(url, min_size=WORKERS, max_size=WORKERS)
    store = PostgresEventStore(pool)
    metadata = EventMetadata(**METADATA)
    run = uuid.uuid4().hex[:8]
    try:

        async def append(worker: int, n: int) -> None:
            event = NewEvent("ComplaintDecided", PAYLOAD, metadata=metadata)
            await store.append(f"store-{run}-{worker}-{n // 5}", [event], expected_version=n % 5)

        return await run_workers(WORKERS, seconds, append)
    finally:
        await pool.close()


async def seed_reference_data(url: str) -> str:
    """The institution tree, and a head-office supervisor's token (sees every case)."""
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        directory = InstitutionDirectory(pool)
        for node in histories.institution_tree():
            await directory.put(node["code"], node["name"], node["kind"], node["parent"])
        return await create_token(pool, "bench-supervisor", "supervisor", "HO")
    finally:
        await pool.close()


async def bulk_import(url: str, lines: list[bytes]) -> tuple[Throughput, ImportReport]:
    """Import `lines` (made beforehand) through `BulkImporter`; events stored per second."""
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            reference = await load_reference_data(
                connection, shanghai_today(), ActorBody(id="bench", role="staff")
            )
            importer = BulkImporter(connection, PostgresEventStore(pool), reference)
            started = time.perf_counter()
            report = await importer.run(numbered_lines(lines))
            elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    if report.refusals:
        raise RuntimeError(f"bench histories refused: {report.refusals[0].describe()}")
    return Throughput(report.events_imported, elapsed), report


def open_case_lines(count: int) -> list[bytes]:
    """Cases received in the last days, acknowledged and assigned: open for more commands."""
    today = shanghai_today()
    lines = []
    for n, line in enumerate(histories.case_lines(count, seed=7, prefix="BENCH-OPEN")):
        case = orjson.loads(line)
        received_on = today - timedelta(days=2 + n % 5)
        case["received_on"] = received_on.isoformat()
        case["actions"] = histories.actions_of(random.Random(n), received_on, "staff-001")[:2]
        lines.append(orjson.dumps(case))
    return lines


def command_requests(case_ids: list[str]) -> list[tuple[str, str, str | None]]:
    today = shanghai_today().isoformat()
    body = orjson.dumps(
        {
            "subject": "progress",
            "notice": {"method": "sms", "notified_on": today, "proof_ref": "SMS-B"},
            "summary": "处理进展",
        }
    ).decode()
    return [("POST", f"/v1/complaints/{case_id}/notify", body) for case_id in case_ids]


def http_commands(
    base_url: str, token: str, case_ids: list[str], seconds: float
) -> tuple[Throughput, dict[str, int]]:
    return load(base_url, command_requests(case_ids), HTTP_CLIENTS, seconds, token)


def healthz_ceiling(base_url: str, seconds: float) -> tuple[Throughput, dict[str, int]]:
    return load(base_url, [("GET", "/healthz", None)], HTTP_CLIENTS, seconds)


def replay(base_url: str, token: str, seconds: float) -> dict[str, Throughput]:
    """The regulator's three replays of one 30-event case, one request at a time."""
    case_id = case_id_for(LONG_CASE)
    routes = {
        "events": f"/v1/complaints/{case_id}/events",
        "as_of_version": f"/v1/complaints/{case_id}?as_of_version=15",
        "audit": f"/v1/complaints/{case_id}/audit",
    }
    return {
        name: load(base_url, [("GET", path, None)], 1, seconds, token)[0]
        for name, path in routes.items()
    }


# One million case rows straight into case_view with SQL (the bulk import would take too long for
# the 10-minute budget): most decided, some open with due dates around today, some stopped.
# As the projection writes them, a decided case's clock is stopped at its decision notice.
_FILL_CASE_VIEW = """
INSERT INTO case_view (case_id, registration_no, version, status, respondent_institution,
    handler_id, channel, category_business, category_reason, major, received_on,
    last_business_date, due_on, level, paused_days, paused_since, clock_stopped_on, decided_on,
    outcome, on_time,
    review_requested_on, review_due_on, review_decided_on, review_window_ends_on, merged_into,
    complainant)
SELECT 'bulk-' || n, 'BULK-' || n, 5,
    CASE WHEN n % 100 < 94 THEN 'decided' WHEN n % 100 < 98 THEN 'assigned' ELSE 'withdrawn' END,
    institutions[1 + n % array_length(institutions, 1)], 'staff-' || (n % 50),
    'phone', 'credit_card', 'pricing_and_fees', n % 500 = 0,
    received, received, due, 0, 0, NULL,
    CASE WHEN n % 100 >= 98 THEN received + 4 WHEN n % 100 < 94 THEN received + 12 END,
    CASE WHEN n % 100 < 94 THEN received + 12 END,
    CASE WHEN n % 100 < 94 THEN 'upheld' END,
    CASE WHEN n % 100 < 94 THEN true END,
    NULL, NULL, NULL, CASE WHEN n % 100 < 94 THEN received + 42 END, NULL,
    '{"kind": "natural_person", "name": "张*"}'::jsonb
FROM generate_series(1, $1::int) AS n,
     LATERAL (SELECT $2::text[] AS institutions) AS i,
     LATERAL (SELECT $3::date - (n % 730) AS received) AS r,
     LATERAL (SELECT CASE WHEN n % 100 BETWEEN 94 AND 97 THEN $3::date - 20 + (n % 40)
                          ELSE received + 15 END AS due) AS d
"""


async def fill_case_view(url: str, cases: int) -> float:
    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        await connection.execute(_FILL_CASE_VIEW, cases, histories.RESPONDENTS, shanghai_today())
        # As autovacuum would soon after such a load; done now so it does not run mid-measure.
        await connection.execute("VACUUM (ANALYZE) case_view")
        return time.perf_counter() - started
    finally:
        await connection.close()


def deadline_queries(base_url: str, token: str, seconds: float) -> dict[str, Throughput]:
    routes = {
        "due_within_3_days": "/v1/deadlines?due_within_days=3",
        "overdue": "/v1/deadlines?clock=overdue",
    }
    return {
        name: load(base_url, [("GET", path, None)], 1, seconds, token)[0]
        for name, path in routes.items()
    }


def case_count(url: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval("SELECT count(*) FROM case_view")
        finally:
            await connection.close()

    return asyncio.run(count())


def statistics_query(base_url: str, token: str, seconds: float) -> Throughput | None:
    """A head office's statistics over last year, when the route exists (issue 5)."""
    year = shanghai_today().year - 1
    path = f"/v1/institutions/HO/statistics?from={year}-01-01&to={year}-12-31"
    headers = {"Authorization": f"Bearer {token}"}
    if httpx.get(f"{base_url}{path}", headers=headers, timeout=120).status_code != 200:
        return None
    # the probe above warmed it up; a few requests at least, however slow
    return load(
        base_url, [("GET", path, None)], 1, seconds, token, warmup_seconds=0, min_requests=5
    )[0]


def statistics_cases(url: str) -> int:
    """How many cases the statistics projection counts."""
    from complaintcore.projections.statistics import TABLE

    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(f"SELECT count(*) FROM {TABLE}")
        finally:
            await connection.close()

    return asyncio.run(count())


def event_count(url: str, streams: list[str] | None = None) -> int:
    """Events in the store, or in the given streams."""

    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            if streams is None:
                return await connection.fetchval("SELECT count(*) FROM events")
            return await connection.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = ANY($1::text[])", streams
            )
        finally:
            await connection.close()

    return asyncio.run(count())


# Copies of the imported bench histories under new stream ids, for the rebuild figures: a million
# events through the domain would take the bulk import far past the bench's 10 minutes. The
# receipt's case id and registration number are renamed with the stream; the copies keep their
# originals' hashes (their chains do not verify, and the rebuild never reads hashes).
_COPY_HISTORIES = f"""
WITH floor AS MATERIALIZED ({TAKE_POSITION_FLOOR})
INSERT INTO events (stream_id, version, event_type, schema_version, data, metadata,
                    idempotency_key, recorded_at, prev_hash, hash)
SELECT e.stream_id || '-copy-' || k, e.version, e.event_type, e.schema_version,
       CASE WHEN e.event_type = 'ComplaintReceived'
            THEN e.data || jsonb_build_object(
                'case_id', e.stream_id || '-copy-' || k,
                'registration_no', (e.data ->> 'registration_no') || '-C' || k)
            ELSE e.data END,
       e.metadata, NULL, e.recorded_at, e.prev_hash, e.hash
FROM floor, generate_series($1::int, $2::int) AS k,
     events AS e JOIN unnest($3::text[]) AS source(stream_id) USING (stream_id)
ORDER BY k, e.stream_id, e.version
"""


async def copy_histories(url: str, source_ids: list[str], first_copy: int, last_copy: int) -> None:
    """Copies number `first_copy` to `last_copy` of the streams `source_ids`, in one statement."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(_COPY_HISTORIES, first_copy, last_copy, source_ids)
    finally:
        await connection.close()
