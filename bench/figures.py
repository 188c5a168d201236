"""complaintcore's own figures, each measured the way TARGETS.md words it."""

import asyncio
import random
import time
import uuid
from datetime import date, timedelta

import asyncpg
import httpx
import orjson

from bench import histories
from bench.baselines import METADATA, PAYLOAD, WARMUP_S, WORKERS
from bench.database import bench_case_keys
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
from complaintcore.application.retention_sweep import RetentionSweep, SweepOrder
from complaintcore.auth.tokens import create_token
from complaintcore.events.bulk import COPY_COLUMNS
from complaintcore.events.case_keys import CaseKeys
from complaintcore.events.model import EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore, take_position_floor
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.infra.database import create_pool, use_binary_json
from complaintcore.projections.runner import read_checkpoint
from complaintcore.reference.institutions import InstitutionDirectory

HTTP_CLIENTS = 32
LONG_CASE = "BENCH-LONG-30"
OPEN_PREFIX = "BENCH-OPEN"  # the open cases the HTTP figures act on (`open_case_lines`)


async def store_append(url: str, seconds: float) -> Throughput:
    """16 tasks, each appending single events with an expected version through the store (after
    `WARMUP_S` not counted)."""
    pool = await create_pool(url, min_size=WORKERS, max_size=WORKERS)
    store = PostgresEventStore(pool)
    metadata = EventMetadata(**METADATA)
    run = uuid.uuid4().hex[:8]
    try:

        async def append(worker: int, n: int) -> None:
            event = NewEvent("ComplaintDecided", PAYLOAD, metadata=metadata)
            await store.append(f"store-{run}-{worker}-{n // 5}", [event], expected_version=n % 5)

        return await run_workers(WORKERS, seconds, append, WARMUP_S)
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
            importer = BulkImporter(
                connection, PostgresEventStore(pool), reference, bench_case_keys()
            )
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
    for n, line in enumerate(histories.case_lines(count, seed=7, prefix=OPEN_PREFIX)):
        case = orjson.loads(line)
        received_on = today - timedelta(days=2 + n % 5)
        case["received_on"] = received_on.isoformat()
        case["actions"] = histories.actions_of(
            random.Random(n), received_on, "staff-001", case["respondent_institution"]
        )[:2]
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


def runners_caught_up(url: str, timeout: float = 300) -> float:
    """Wait until the server's feed runners (statistics, alerts) have applied every event in the
    store (after the command burst they fold the burst's events; at the server's start, whatever
    the bench wrote before it); the seconds waited."""
    from complaintcore.api.app import FEED_PROJECTION_NAMES

    async def wait() -> float:
        connection = await asyncpg.connect(url)
        try:
            started = time.perf_counter()
            last = await connection.fetchval("SELECT coalesce(max(position), 0) FROM events")
            while time.perf_counter() - started < timeout:
                reached = [await read_checkpoint(connection, n) for n in FEED_PROJECTION_NAMES]
                if min(reached) >= last:
                    break
                await asyncio.sleep(0.1)
            return time.perf_counter() - started
        finally:
            await connection.close()

    return asyncio.run(wait())


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


# Cases received in 2018, all closed within the year: past 5 years' retention today.
LONG_CLOSED_FIRST_DAY = date(2018, 1, 2)


async def retention_sweep(url: str, cases: int) -> Throughput:
    """Import `cases` cases closed years ago (not timed), then sweep them all: cases erased per
    second by `RetentionSweep`, as `complaintcore personal-data sweep` runs it."""
    lines = list(
        histories.case_lines(cases, seed=11, prefix="CLOSED", first_day=LONG_CLOSED_FIRST_DAY)
    )
    await bulk_import(url, lines)
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            order = SweepOrder(on=shanghai_today(), correlation_id=f"bench-{uuid.uuid4()}")
            sweep = RetentionSweep(connection, PostgresEventStore(pool), bench_case_keys(), order)
            started = time.perf_counter()
            report = await sweep.run()
            elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    if report.erased < cases:
        raise RuntimeError(f"the sweep erased {report.erased} of {cases}: {dict(report.skipped)}")
    return Throughput(report.erased, elapsed)


def reveal(base_url: str, token: str, open_ids: list[str], seconds: float) -> Throughput:
    """`GET /personal-data` of one case at a time, over the open cases in turn: each call
    opens every sealed field of the case (its key cached after the first) and commits its
    access-log row before answering."""
    requests = [
        ("GET", f"/v1/complaints/{case_id}/personal-data?purpose=bench", None)
        for case_id in open_ids
    ]
    return load(base_url, requests, 1, seconds, token)[0]


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
# events through the domain would take the bulk import far past the bench's 10 minutes. Each copy
# is a case of its own, sealed as the service seals one: its fields opened with the original's key
# and sealed again under a new key of its own at the copy's id (a ciphertext is bound to its case),
# its key stored wrapped, so the rebuild opens copies as it opens any case. The receipt's case id
# and registration number are renamed with the stream; the copies keep their originals' hashes
# (their chains do not verify, and the rebuild never reads hashes).
_SOURCE_EVENTS = """
SELECT stream_id, version, event_type, schema_version, data, metadata, recorded_at, prev_hash, hash
FROM events WHERE stream_id = ANY($1::text[]) ORDER BY stream_id, version
"""


OpenedHistories = list[tuple[asyncpg.Record, dict]]
"""Stored rows in stream and version order, each with its payload opened."""


async def copy_histories(url: str, source_ids: list[str], first_copy: int, last_copy: int) -> None:
    """Copies number `first_copy` to `last_copy` of the streams `source_ids`, into the same
    store, sealed as the service stores them, a copy number a transaction."""
    opened = await opened_histories(url, source_ids)
    await write_copies(url, opened, first_copy, last_copy)


async def opened_histories(url: str, source_ids: list[str]) -> OpenedHistories:
    """The stored rows of the streams `source_ids`, their payloads opened with the run's keys."""
    connection = await asyncpg.connect(url)
    try:
        await use_binary_json(connection)
        rows = await connection.fetch(_SOURCE_EVENTS, source_ids)
        sources = {row["stream_id"]: row["metadata"]["cipher_suite"] for row in rows}
        ciphers = await bench_case_keys().ciphers_for(connection, sources)
        return [
            (row, ciphers[row["stream_id"]].open(row["event_type"], row["version"], row["data"]))
            for row in rows
        ]
    finally:
        await connection.close()


async def write_copies(
    url: str, opened: OpenedHistories, first_copy: int, last_copy: int, *, sealed: bool = True
) -> None:
    """Copies number `first_copy` to `last_copy` of `opened` into `url`'s store, a copy number a
    transaction: sealed under a new key per copied case, as the service stores them, or
    (`sealed=False`) plaintext with no key and no `cipher_suite`, as events were stored before
    encryption (DOMAIN.md: they still read)."""
    case_keys = bench_case_keys() if sealed else None
    connection = await asyncpg.connect(url)
    try:
        await use_binary_json(connection)
        for copy in range(first_copy, last_copy + 1):
            await _copy_once(connection, case_keys, opened, copy)
    finally:
        await connection.close()


async def _copy_once(
    connection: asyncpg.Connection,
    case_keys: CaseKeys | None,
    opened: OpenedHistories,
    copy: int,
) -> None:
    """One copy of the opened histories, sealed under `case_keys` or (None) plaintext."""
    stream_ids = list(dict.fromkeys(f"{row['stream_id']}-copy-{copy}" for row, _ in opened))
    data_keys = case_keys.new_data_keys(stream_ids) if case_keys else {}
    records = []
    for row, payload in opened:
        stream_id = f"{row['stream_id']}-copy-{copy}"
        if row["event_type"] == "ComplaintReceived":
            registration_no = f"{payload['registration_no']}-C{copy}"
            payload = payload | {"case_id": stream_id, "registration_no": registration_no}
        metadata = row["metadata"]
        if case_keys:
            cipher = StreamCipher(stream_id, case_keys.suite, data_keys[stream_id])
            payload = cipher.seal(row["event_type"], row["version"], payload)
        else:
            metadata = {key: value for key, value in metadata.items() if key != "cipher_suite"}
        records.append(
            (
                stream_id,
                row["version"],
                row["event_type"],
                row["schema_version"],
                payload,
                metadata,
                None,
                row["recorded_at"],
                row["prev_hash"],
                row["hash"],
            )
        )
    async with connection.transaction():
        await take_position_floor(connection)
        await connection.copy_records_to_table("events", records=records, columns=COPY_COLUMNS)
        if case_keys:
            await case_keys.store_new(connection, data_keys)


# Statistics facts rows straight into case_statistics with SQL, up to TARGETS.md's 1,000,000 cases
# (the rebuilt projection holds about 223,000), all received during last year, the year the
# figure asks for: like the imported histories (5 categories, 5 channels, 3 outcomes, the 20
# respondent branches) with more spread: 6% withdrawn, 2% declined, 1% merged, 0.5% never
# decided (overdue), 0.2% under review, 5% reviewed (a quarter changed), 20% extended once and
# 5% twice, 10% paused once and 2% twice, handling days from 3 to about 90, 1 in 25 late. Their
# buckets go in through the projection's own code (projections/statistics/buckets.py).
_FILL_STATISTICS = """
INSERT INTO case_statistics ({columns})
SELECT 'bulk-stat-' || n, 6, institution, channel, business, reason, n % 500 = 0,
    status, received, due, false,
    CASE status WHEN 'withdrawn' THEN received + 4 WHEN 'declined' THEN received + 3
        WHEN 'merged' THEN received + 1 WHEN 'assigned' THEN NULL ELSE decided END,
    decided_or_null, outcome_or_null,
    CASE WHEN changed THEN final_if_changed ELSE outcome_or_null END,
    CASE WHEN decided_or_null IS NOT NULL THEN decided <= due END,
    CASE WHEN decided_or_null IS NOT NULL THEN handling END,
    CASE WHEN decided_or_null IS NOT NULL THEN (n::bigint * 7919) % 100000 END,
    CASE WHEN n % 5 = 0 AND status NOT IN ('withdrawn', 'declined', 'merged')
        THEN received + 5 END,
    CASE WHEN n % 20 = 0 AND status NOT IN ('withdrawn', 'declined', 'merged')
        THEN received + 20 END,
    pauses,
    CASE WHEN reviewed THEN decided + 10 END,
    CASE WHEN reviewed THEN decided + 40 END,
    CASE WHEN status = 'review_decided' THEN decided + 30 END,
    CASE WHEN status = 'review_decided' THEN changed END,
    CASE WHEN decided_or_null IS NOT NULL THEN decided + 60 END,
    CASE WHEN status = 'withdrawn' THEN received + 4 END,
    CASE WHEN status = 'declined' THEN received + 3 END,
    CASE WHEN status = 'merged' THEN received + 1 END,
    CASE WHEN is_decided THEN 'staff-' || lpad((n % 50)::text, 3, '0') END,
    CASE WHEN n % 40 = 0 THEN ARRAY['staff-' || lpad((n % 50)::text, 3, '0')]
         ELSE ARRAY[]::text[] END,
    CASE WHEN attributed THEN decided + 14 END,
    CASE WHEN attributed THEN root_cause END,
    CASE WHEN attributed THEN institution END,
    CASE WHEN attributed THEN root_cause = 'third_party' END,
    CASE WHEN attributed THEN ARRAY[decided + 38] ELSE ARRAY[]::date[] END,
    CASE WHEN attributed THEN ARRAY[CASE WHEN (n / 4) % 2 = 0 THEN decided + 23 END]
         ELSE ARRAY[]::date[] END,
    CASE WHEN followed_up THEN decided + 28 END,
    CASE WHEN followed_up THEN reached END,
    CASE WHEN followed_up THEN reached AND n % 3 = 0 END,
    CASE WHEN followed_up THEN reached AND n % 3 = 1 END,
    CASE WHEN followed_up THEN reached AND n % 3 = 2 END,
    CASE WHEN attributed AND (n / 4) % 2 = 0 THEN 1 ELSE 0 END,
    CASE WHEN attributed AND (n / 4) % 2 = 1 THEN 1 ELSE 0 END,
    CASE WHEN attributed THEN
        CASE WHEN (n / 4) % 2 = 0 THEN decided + 23 ELSE decided + 39 END END
FROM generate_series($1::int, $2::int) AS n,
LATERAL (SELECT n % 1000 AS roll, $4::date + (n * 37) % 365 AS received,
    $3::text[] AS institutions) AS a,
LATERAL (SELECT
    institutions[1 + n % array_length(institutions, 1)] AS institution,
    (ARRAY['phone', 'online', 'letter', 'email', 'in_person'])[1 + (n / 7) % 5] AS channel,
    (ARRAY['credit_card', 'credit_card', 'savings', 'loans', 'wealth_management'])
        [1 + (n / 3) % 5] AS business,
    (ARRAY['pricing_and_fees', 'collection_methods', 'service_attitude', 'pricing_and_fees',
           'marketing'])[1 + (n / 3) % 5] AS reason,
    CASE WHEN roll < 60 THEN 'withdrawn' WHEN roll < 80 THEN 'declined'
         WHEN roll < 90 THEN 'merged' WHEN roll < 95 THEN 'assigned'
         WHEN roll < 97 THEN 'under_review' WHEN roll < 147 THEN 'review_decided'
         ELSE 'decided' END AS status,
    roll BETWEEN 95 AND 146 AS reviewed,
    roll BETWEEN 97 AND 109 AS changed,
    CASE WHEN n % 50 = 7 THEN ARRAY[received + 6, received + 35]
         WHEN n % 10 = 3 THEN ARRAY[received + 6] ELSE ARRAY[]::date[] END AS pauses,
    CASE WHEN n % 50 = 7 THEN 6 WHEN n % 10 = 3 THEN 3 ELSE 0 END AS paused_days,
    3 + (n / 11) % 13
      + CASE WHEN n % 5 = 0 THEN (n * 11) % 16 ELSE 0 END
      + CASE WHEN n % 20 = 0 THEN (n * 17) % 31 ELSE 0 END
      + CASE WHEN n % 25 = 0 THEN 10 + n % 30 ELSE 0 END AS handling,
    (ARRAY['upheld', 'partially_upheld', 'rejected'])[1 + n % 3] AS outcome,
    (ARRAY['partially_upheld', 'rejected', 'upheld'])[1 + n % 3] AS final_if_changed
) AS b,
LATERAL (SELECT
    received + 15 + CASE WHEN n % 5 = 0 THEN 15 ELSE 0 END
        + CASE WHEN n % 20 = 0 THEN 30 ELSE 0 END + paused_days AS due,
    received + handling + paused_days AS decided,
    status IN ('decided', 'under_review', 'review_decided') AS is_decided
) AS c,
LATERAL (SELECT CASE WHEN is_decided THEN decided END AS decided_or_null,
    CASE WHEN is_decided THEN outcome END AS outcome_or_null,
    -- internal control as the histories have it: a quarter of the decided cases attributed
    -- (half their actions closed), about 30 % followed up, most of those reached
    is_decided AND n % 4 = 1 AS attributed,
    (ARRAY['product_design', 'rules_and_process', 'systems', 'staff_conduct', 'third_party'])
        [1 + (n / 4) % 5] AS root_cause,
    is_decided AND n % 10 IN (2, 3, 6) AS followed_up,
    n % 10 <> 3 AS reached) AS d
"""


async def fill_statistics(url: str, cases: int) -> float:
    """Top the statistics facts up to `cases` rows with bulk rows, and their buckets, every
    breakdown of the figure filled (root causes, rectification, follow-ups); seconds."""
    from complaintcore.projections import statistics
    from complaintcore.projections.statistics import buckets as statistics_buckets
    from complaintcore.projections.statistics import facts

    connection = await asyncpg.connect(url)
    try:
        started = time.perf_counter()
        have = await connection.fetchval(f"SELECT count(*) FROM {statistics.TABLE}")
        if have < cases:
            last_year = date(shanghai_today().year - 1, 1, 1)
            async with connection.transaction():
                fill = _FILL_STATISTICS.format(columns=", ".join(facts.COLUMNS))
                await connection.execute(fill, 1, cases - have, histories.RESPONDENTS, last_year)
                buckets = await statistics_buckets.buckets_of_table(
                    connection, statistics.TABLE, "case_id LIKE 'bulk-stat-%'"
                )
                await statistics_buckets.add_buckets(connection, buckets)
            for table in (statistics.TABLE, *statistics_buckets.TABLES):
                await connection.execute(f"VACUUM (ANALYZE) {table}")
        return time.perf_counter() - started
    finally:
        await connection.close()
