"""The retention sweep (`application.retention_sweep`) over a real PostgreSQL: it erases exactly
the cases past retention, each as the single-case erasure would (key destroyed, one
`PersonalDataErased`, the view row erased, the chain intact, every statistic unchanged, a rebuild
agreeing with the live view); it counts and leaves the cases it may not erase; two sweeps at once
erase each case once; a dry run writes nothing.

Cases are made through the command path (`CaseDesk`) on chosen business dates; the sweep judges
as of `ON`, so a case closed in 2019 or 2020 is past the default 5 years and one closed in 2024 is
not.
"""

import asyncio
from collections import Counter
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.application import retention_sweep
from complaintcore.application.policy_store import PolicyStore
from complaintcore.application.retention_sweep import (
    BatchSwept,
    RetentionSweep,
    SweepOrder,
    SweepReport,
    last_closing_day_past_retention,
)
from complaintcore.domain.policy import PolicySettings
from complaintcore.domain.retention import retention_ended
from complaintcore.domain.state import fold
from complaintcore.events.codec import domain_events
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import ConcurrencyError, EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra import advisory_locks
from complaintcore.projections.case_view import upsert_case_view
from complaintcore.projections.rebuild import RebuildSettings, rebuild
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.statistics.buckets import TABLES as BUCKET_TABLES
from projection_support import CaseDesk, table_rows
from testsupport import session_case_keys

ON = date(2026, 6, 1)
STATISTICS_TABLES = ("case_statistics", *BUCKET_TABLES)
ERASED_COMPLAINANT_FIELDS = ("name", "id_type", "id_number", "contact")


def d(year: int, month: int, day: int) -> date:
    return date(year, month, day)


async def withdrawn_case(desk: CaseDesk, institution: str, received_on: date) -> str:
    """A case closed three days after its receipt (withdrawn)."""
    case_id = await desk.receive(institution, received_on)
    await desk.withdraw(case_id, received_on + timedelta(days=3))
    return case_id


async def sweep(
    pool: asyncpg.Pool,
    *,
    dry_run: bool = False,
    batch_cases: int = 300,
    on: date = ON,
    seen: list[BatchSwept] | None = None,
) -> SweepReport:
    """A sweep as of `ON` on a connection of its own."""
    order = SweepOrder(on=on, correlation_id="sweep-test", dry_run=dry_run, batch_cases=batch_cases)
    async with pool.acquire() as connection:
        swept = RetentionSweep(
            connection, PostgresEventStore(pool), session_case_keys(), order, today=lambda: ON
        )
        return await swept.run(seen.append if seen is not None else None)


async def case_record(pool: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    """What erasure changes about a case: its key, its events, its view row."""
    store = PostgresEventStore(pool)
    return {
        "key": await pool.fetchval("SELECT count(*) FROM case_keys WHERE case_id = $1", case_id),
        "events": await store.read_stream(case_id),
        "view": dict(await pool.fetchrow("SELECT * FROM case_view WHERE case_id = $1", case_id)),
    }


async def assert_erased(
    pool: asyncpg.Pool, case_id: str, retention_years: int = 5, policy_version: str = "default"
) -> None:
    record = await case_record(pool, case_id)
    events = record["events"]
    assert record["key"] == 0
    assert [e.event_type for e in events].count("PersonalDataErased") == 1
    erasure = events[-1]
    assert erasure.event_type == "PersonalDataErased"
    assert erasure.data["erased_on"] == ON.isoformat()
    assert erasure.data["reason"] == retention_sweep.DEFAULT_REASON
    assert erasure.data["legal_basis"] == retention_sweep.DEFAULT_LEGAL_BASIS
    assert erasure.data["retention_years"] == retention_years
    assert erasure.metadata == EventMetadata(
        actor_id="retention-sweep",
        actor_role="admin",
        correlation_id="sweep-test",
        causation_id=erasure.metadata.causation_id,
        client="complaintcore personal-data sweep",
        cipher_suite=events[0].metadata.cipher_suite,
        policy_version=policy_version,
    )
    assert len(erasure.metadata.causation_id or "") == 32
    assert verify_chain(events).intact
    view = record["view"]
    assert view["personal_data"] == "erased"
    assert view["version"] == erasure.version
    assert view["complainant_index"] is None
    for name in ERASED_COMPLAINANT_FIELDS:
        assert view["complainant"][name] is None
    state = fold(domain_events(events, await _keyless_cipher(pool, events)))
    assert state is not None and state.personal_data_erased and state.complainant.name is None


async def _keyless_cipher(pool: asyncpg.Pool, events: list[Any]) -> Any:
    async with pool.acquire() as connection:
        return await session_case_keys().cipher_for(
            connection, events[0].stream_id, events[0].metadata.cipher_suite
        )


async def assert_held(pool: asyncpg.Pool, case_id: str) -> None:
    record = await case_record(pool, case_id)
    assert record["key"] == 1
    assert "PersonalDataErased" not in [e.event_type for e in record["events"]]
    assert record["view"]["personal_data"] == "held"


async def statistics_rows(pool: asyncpg.Pool) -> dict[str, list[dict]]:
    """Every statistics row but the stream version each case's row was folded up to (which an
    erasure, like any event, moves on)."""
    return {
        table: [_without_version(row) for row in await table_rows(pool, table)]
        for table in STATISTICS_TABLES
    }


def _without_version(row: dict[str, Any]) -> dict[str, Any]:
    return {column: value for column, value in row.items() if column != "version"}


async def test_only_cases_past_retention_are_erased_each_as_one_erasure_would_be(
    pool: asyncpg.Pool, database_url: str, desk: CaseDesk
) -> None:
    withdrawn_2019 = await withdrawn_case(desk, "SUB-A1", d(2019, 3, 4))
    decided_by_head_office = await desk.receive("HO", d(2019, 12, 20))
    await desk.assign(decided_by_head_office, d(2019, 12, 20))
    await desk.decide(decided_by_head_office, d(2020, 1, 8), head_office=True)
    decided_with_review_window = await desk.receive("BR-A", d(2020, 5, 6))
    await desk.assign(decided_with_review_window, d(2020, 5, 6))
    await desk.decide(decided_with_review_window, d(2020, 5, 20))
    declined_2019 = await desk.receive("BR-B", d(2019, 6, 3))
    await desk.decline(declined_2019, d(2019, 6, 4))
    withdrawn_2024 = await withdrawn_case(desk, "BR-A", d(2024, 3, 4))
    open_since_2019 = await desk.receive("BR-B", d(2019, 4, 1))
    await desk.assign(open_since_2019, d(2019, 4, 1))
    past_retention = [
        withdrawn_2019,
        decided_by_head_office,
        decided_with_review_window,
        declined_2019,
    ]
    await ProjectionRunner(database_url, desk.store).catch_up()
    statistics_before = await statistics_rows(pool)

    report = await sweep(pool)

    assert (report.erased, dict(report.skipped)) == (4, {})
    for case_id in past_retention:
        await assert_erased(pool, case_id)
    for case_id in (withdrawn_2024, open_since_2019):
        await assert_held(pool, case_id)
    await ProjectionRunner(database_url, desk.store).catch_up()
    assert await statistics_rows(pool) == statistics_before
    live_view = await table_rows(pool, "case_view")
    await rebuild(database_url, settings=RebuildSettings(scan_workers=1))
    assert await table_rows(pool, "case_view") == live_view
    assert await statistics_rows(pool) == statistics_before


async def test_a_refused_busy_or_unencrypted_case_is_counted_and_left_as_it_was(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    erasable = await withdrawn_case(desk, "SUB-A1", d(2019, 3, 4))
    kept_longer_by_policy = await withdrawn_case(desk, "BR-B", d(2019, 3, 5))
    busy = await withdrawn_case(desk, "BR-A", d(2019, 3, 6))
    stored_before_encryption = await plaintext_case(pool, "c-plaintext", d(2019, 3, 7))

    await PolicyStore(pool).append("BR-B", ON, PolicySettings(retention_years=10), "admin-1", ON)
    async with pool.acquire() as command, command.transaction():  # a command at work on `busy`
        await command.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, busy
        )
        first = await sweep(pool)
    second = await sweep(pool)

    assert first.erased == 1 and first.skipped == Counter(
        busy=1, retention_not_expired=1, not_encrypted=1
    )
    assert second.erased == 1 and second.skipped == Counter(
        retention_not_expired=1, not_encrypted=1
    )
    for case_id in (erasable, busy):
        await assert_erased(pool, case_id)
    await assert_held(pool, kept_longer_by_policy)
    plaintext = await case_record(pool, stored_before_encryption)
    assert [e.event_type for e in plaintext["events"]] == [
        "ComplaintReceived",
        "ComplaintWithdrawn",
    ]
    assert plaintext["view"]["personal_data"] == "held"


async def test_a_retention_shorter_than_the_default_is_honoured(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    """An institution's policy may keep personal data fewer years than the default's five:
    its cases are candidates as soon as their own retention ends."""
    closed_two_years_ago = await withdrawn_case(desk, "BR-A", d(2024, 3, 4))
    elsewhere = await withdrawn_case(desk, "BR-B", d(2024, 3, 5))
    await PolicyStore(pool).append("BR-A", ON, PolicySettings(retention_years=1), "admin-1", ON)

    report = await sweep(pool)

    # the other is a candidate too (the shortest retention cuts), but its own policy keeps it
    assert (report.erased, dict(report.skipped)) == (1, {"retention_not_expired": 1})
    await assert_erased(pool, closed_two_years_ago, retention_years=1, policy_version="BR-A/v1")
    await assert_held(pool, elsewhere)


async def test_the_responses_stored_for_an_erased_case_show_it_erased(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    erased, kept = [await withdrawn_case(desk, "BR-A", d(year, 3, 4)) for year in (2019, 2024)]
    masked = {
        "kind": "natural_person",
        "name": "张*",
        "id_type": "resident_id",
        "id_number": "110105********002X",
        "contact": "138****8000",
    }
    for key, case_id in (("first", erased), ("second", kept)):
        # what a command sent with an Idempotency-Key stored: the case document of the time
        body = {"id": case_id, "personal_data": "held", "complainant": masked, "version": 1}
        await pool.execute(
            "INSERT INTO idempotent_requests (principal_id, institution, idempotency_key,"
            " request_hash, status_code, response_body, response_headers)"
            " VALUES ('staff-ho', 'HO', $1, repeat('0', 64), 201, $2, '{}')",
            key,
            body,
        )

    assert (await sweep(pool)).erased == 1

    stored = {
        row["key"]: row["body"]
        for row in await pool.fetch(
            "SELECT idempotency_key AS key, response_body AS body FROM idempotent_requests"
        )
    }
    assert stored["first"] == {
        "id": erased,
        "personal_data": "erased",
        "complainant": {"kind": "natural_person", **dict.fromkeys(ERASED_COMPLAINANT_FIELDS)},
        "version": 1,
    }
    assert stored["second"]["complainant"] == masked  # not past retention: left as it was


async def test_two_sweeps_at_once_erase_each_case_once(pool: asyncpg.Pool, desk: CaseDesk) -> None:
    cases = [
        await withdrawn_case(desk, "SUB-A1", d(2019, 3, 4) + timedelta(days=n)) for n in range(24)
    ]
    reports = await asyncio.gather(sweep(pool, batch_cases=3), sweep(pool, batch_cases=3))

    assert sum(report.erased for report in reports) == len(cases)
    # a case the other sweep held when one took its rows is counted `locked` by that one, never
    # judged by both
    assert all(set(report.skipped) <= {"locked"} for report in reports)
    erasures = await pool.fetch(
        "SELECT stream_id, count(*) AS erasures FROM events"
        " WHERE event_type = 'PersonalDataErased' GROUP BY stream_id"
    )
    assert {row["stream_id"]: row["erasures"] for row in erasures} == dict.fromkeys(cases, 1)
    for case_id in cases:
        await assert_erased(pool, case_id)


async def test_a_dry_run_lists_what_it_would_erase_and_writes_nothing(
    pool: asyncpg.Pool, desk: CaseDesk
) -> None:
    old = [
        await withdrawn_case(desk, "SUB-A1", d(2019, 3, 4) + timedelta(days=n)) for n in range(5)
    ]
    recent = await withdrawn_case(desk, "SUB-A1", d(2024, 3, 4))
    before = {
        table: await table_rows(pool, table) for table in ("events", "case_keys", "case_view")
    }

    batches: list[BatchSwept] = []
    report = await sweep(pool, dry_run=True, batch_cases=2, seen=batches)

    assert report.erased == 5 and not report.skipped
    assert sorted(case_id for batch in batches for case_id in batch.erased) == sorted(old)
    assert recent not in [case_id for batch in batches for case_id in batch.erased]
    after = {table: await table_rows(pool, table) for table in ("events", "case_keys", "case_view")}
    assert after == before


async def test_a_sweep_dated_after_today_is_refused(pool: asyncpg.Pool) -> None:
    with pytest.raises(ValueError, match="after today"):
        await sweep(pool, on=ON + timedelta(days=1))


async def test_one_event_each_is_appended_after_the_heads_read_or_not_at_all(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEventStore(pool)
    for stream in ("s-1", "s-2", "s-3"):
        await store.append(stream, [NewEvent("Noted", {"n": 1})], expected_version=0)
    heads = {}
    for stream in ("s-1", "s-2", "s-3"):
        (first,) = await store.read_stream(stream)
        heads[stream] = (first.version, first.hash)
    heads["s-3"] = (1, "f" * 64)  # a head s-3 never had
    one_each = {stream: NewEvent("Noted", {"n": 2}) for stream in heads}

    async with pool.acquire() as connection:
        with pytest.raises(ValueError, match="caller's transaction"):
            await store.append_one_each(connection, one_each, heads)
        async with connection.transaction():
            written = await store.append_one_each(connection, one_each, heads)
        await store.append("s-2", [NewEvent("Noted", {"n": 3})], expected_version=2)
        with pytest.raises(ConcurrencyError):  # s-2 moved past the head read
            async with connection.transaction():
                await store.append_one_each(
                    connection, {"s-2": NewEvent("Noted", {"n": 4})}, {"s-2": heads["s-2"]}
                )

    assert sorted(written) == ["s-1", "s-2"]
    assert [e.data for e in await store.read_stream("s-1")] == [{"n": 1}, {"n": 2}]
    assert [e.data for e in await store.read_stream("s-2")] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [e.data for e in await store.read_stream("s-3")] == [{"n": 1}]
    for stream in ("s-1", "s-2"):
        assert verify_chain(await store.read_stream(stream)).intact
    feed = await store.read_feed()
    assert sorted(e.position for e in feed if e.version == 2) == sorted(written.values())


@given(
    on=st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31)),
    years=st.integers(1, 30),
    offset=st.integers(-3, 3),
)
def test_the_candidates_cutoff_agrees_with_the_domains_retention_arithmetic(
    on: date, years: int, offset: int
) -> None:
    cutoff = last_closing_day_past_retention(on, years)
    closed = cutoff + timedelta(days=offset)
    assert retention_ended(closed, years, on) == (closed <= cutoff)


# A case as stored before encryption: plaintext payloads, no `cipher_suite` in the metadata.
def _plaintext_receipt(case_id: str, received_on: date) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "registration_no": f"BR-A-{received_on:%Y%m}-900001",
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": received_on.isoformat(),
        "complainant": {
            "kind": "natural_person",
            "name": "张三",
            "contact": "13800138000",
            "id_type": None,  # no identity number: its view row needs no blind index
            "id_number": "",
            "address": "",
            "unified_social_credit_code": "",
            "legal_representative_name": "",
            "legal_representative_contact": "",
        },
        "claims": "退费",
        "facts": "扣费",
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        "agent": None,
        "filed_by_heir": False,
        "heir_proof_ref": "",
        "respondent_staff": [],
        "joint": None,
        "regulator_transfer": None,
        "due_on": (received_on + timedelta(days=15)).isoformat(),
    }


async def plaintext_case(pool: asyncpg.Pool, case_id: str, received_on: date) -> str:
    """A withdrawn case stored before encryption, with its view row, and no key."""
    store = PostgresEventStore(pool)
    withdrawn_on = (received_on + timedelta(days=3)).isoformat()
    await store.append(
        case_id,
        [
            NewEvent("ComplaintReceived", _plaintext_receipt(case_id, received_on)),
            NewEvent("ComplaintWithdrawn", {"received_on": withdrawn_on, "reason": "已协商"}),
        ],
        expected_version=0,
    )
    state = fold(domain_events(await store.read_stream(case_id)))
    assert state is not None
    async with pool.acquire() as connection:
        await upsert_case_view(connection, state)
    return case_id
