"""`complaintcore import`: historical cases through the domain rules, written in bulk.

The same history is sent once over HTTP (the command path, in process) and once through the bulk
import; the cases must come out the same, with intact hash chains and a feed that holds them all.
"""

import asyncio
import codecs
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from api_support import TODAY, complaint
from complaintcore.api.app import create_app
from complaintcore.application.bulk_import import (
    ActorBody,
    BulkImporter,
    ImportReport,
    case_id_for,
    load_reference_data,
    numbered_lines,
)
from complaintcore.application.case_command_store import _LOCK_MERGE_TARGET
from complaintcore.application.policy_store import PolicyStore
from complaintcore.auth.tokens import create_token
from complaintcore.domain.policy import PolicySettings
from complaintcore.domain.state import ComplaintState, fold
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import ConcurrencyError
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra import advisory_locks
from complaintcore.projections.case_view import COLUMNS
from complaintcore.reference.institutions import InstitutionDirectory
from projection_support import CaseDesk
from testsupport import opened_events, session_case_keys

STAFF = {"id": "staff-a1", "role": "staff", "institution": "BR-A"}


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


def notice(on: str) -> dict[str, Any]:
    return {"method": "sms", "proof_ref": "SMS-1", "notified_on": on}


def receipt(institution: str = "BR-A", received_days_ago: int = 12) -> dict[str, Any]:
    return complaint(institution, received_days_ago)


DECISION = {
    "handler_id": "staff-a1",
    "outcome": "partially_upheld",
    "findings": "未提示",
    "basis": "章程",
    "redress_fen": 30000,
    "remedies": ["review", "litigation"],
    "notice": notice(days_ago(2)),
}

# Every action dated today, so the HTTP path (which decides as of today) sees the same history.
FULL_HISTORY = [
    ("notify", {"subject": "acceptance", "notice": notice(days_ago(11))}),
    ("assign", {"handler_id": "staff-a1"}),
    ("extend", {"reason": "情况复杂", "notice": notice(days_ago(10))}),
    (
        "pause",
        {
            "kind": "appraisal",
            "paused_on": days_ago(9),
            "reason": "鉴定",
            "notice": notice(days_ago(9)),
        },
    ),
    ("resume", {"resumed_on": days_ago(6)}),
    ("supplement", {"received_on": days_ago(5), "new_facts_and_reasons": False, "summary": "重复"}),
    ("decide", DECISION),
    ("appeal", {"received_on": days_ago(1), "grounds": "金额不服"}),
]


def line(external_id: str, actions: list[tuple[str, dict[str, Any]]], **fields: Any) -> bytes:
    case = {
        "external_id": external_id,
        **receipt(**fields),
        "actor": STAFF,
        "actions": [
            {"command": command, "at": TODAY.isoformat(), **body} for command, body in actions
        ],
    }
    return orjson.dumps(case)


@pytest.fixture
async def institutions(pool: asyncpg.Pool) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    await directory.put("SUB-A1", "浦东支行", "sub_branch", "BR-A")


async def import_lines(pool: asyncpg.Pool, lines: list[bytes], batch: int = 2) -> ImportReport:
    async with pool.acquire() as connection:
        reference = await load_reference_data(
            connection, TODAY, ActorBody(id="import", role="staff"), "import-test"
        )
        importer = BulkImporter(
            connection, PostgresEventStore(pool), reference, session_case_keys(), batch
        )
        return await importer.run(numbered_lines(lines))


@pytest.fixture
async def http(
    database_url: str, pool: asyncpg.Pool, institutions: None
) -> AsyncIterator[httpx.AsyncClient]:
    token = await create_token(pool, "staff-a1", "staff", "BR-A")
    app = create_app(database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            yield client


async def stored_state(pool: asyncpg.Pool, case_id: str) -> tuple[ComplaintState, list[Any]]:
    events = await PostgresEventStore(pool).read_stream(case_id)
    state = fold(await opened_events(pool, events))
    assert state is not None
    return state, events


def without_identity(state: ComplaintState) -> ComplaintState:
    return replace(state, id="-", registration_no="-")


async def case_view(pool: asyncpg.Pool, case_id: str) -> dict[str, Any]:
    row = await pool.fetchrow("SELECT * FROM case_view WHERE case_id = $1", case_id)
    assert row is not None
    return {
        column: row[column] for column in COLUMNS if column not in ("case_id", "registration_no")
    }


async def test_an_imported_case_equals_the_same_history_sent_over_http(
    http: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    created = await http.post("/v1/complaints", json=receipt())
    assert created.status_code == 201, created.text
    http_case = created.json()["id"]
    for command, body in FULL_HISTORY:
        response = await http.post(f"/v1/complaints/{http_case}/{command}", json=body)
        assert response.status_code == 200, response.text

    report = await import_lines(pool, [line("LEGACY-1", FULL_HISTORY)])

    assert (report.cases_imported, report.events_imported, report.refusals) == (1, 9, [])
    imported_case = case_id_for("LEGACY-1")
    http_state, http_events = await stored_state(pool, http_case)
    imported_state, imported_events = await stored_state(pool, imported_case)
    assert without_identity(imported_state) == without_identity(http_state)
    assert [e.event_type for e in imported_events] == [e.event_type for e in http_events]
    assert verify_chain(imported_events).intact and verify_chain(http_events).intact
    assert await case_view(pool, imported_case) == await case_view(pool, http_case)
    assert imported_state.registration_no == f"BR-A-{days_ago(12)[:7].replace('-', '')}-000002"
    shown = await http.get(f"/v1/complaints/{imported_case}")
    assert shown.status_code == 200 and shown.json()["status"] == "under_review"


async def test_refused_cases_are_reported_by_line_and_rule_and_the_rest_is_stored(
    pool: asyncpg.Pool, institutions: None
) -> None:
    lines = [
        line("OK-1", [("assign", {"handler_id": "staff-a1"})]),
        line("REFUSED-1", [("decide", DECISION)]),  # never assigned
        b"{not json",
        line("OK-2", [("merge", {"into_external_id": "OK-1"})], institution="SUB-A1"),
        line("REFUSED-2", [("assign", {"handler_id": "staff-a2"})]),  # the staff complained of
        line("REFUSED-3", [], institution="NOWHERE"),
        line("OK-3", [("withdraw", {"received_on": days_ago(3)})]),
    ]

    report = await import_lines(pool, lines)

    refused = [(r.line_number, r.external_id, r.code) for r in report.refusals]
    assert refused == [
        (2, "REFUSED-1", "case_not_assigned"),
        (3, None, "invalid_json"),
        (5, "REFUSED-2", "handler_has_conflict"),
        (6, "REFUSED-3", "unknown_institution"),
    ]
    assert "actions[1] (decide)" in report.refusals[0].detail
    assert report.cases_imported == 3
    merged, _ = await stored_state(pool, case_id_for("OK-2"))
    assert merged.merged_into == case_id_for("OK-1")
    for name in ("REFUSED-1", "REFUSED-2"):
        assert (
            await pool.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1", case_id_for(name)
            )
            == 0
        )
    # registration serials only for what was stored: BR-A got 1 and 2, SUB-A1 got 1
    numbers = await pool.fetch("SELECT registration_no FROM case_view ORDER BY registration_no")
    assert [n["registration_no"][-6:] for n in numbers] == ["000001", "000002", "000001"]


async def test_a_file_saved_with_a_byte_order_mark_imports_its_first_case(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """Found by a review pass: a file Notepad or Excel saved as "UTF-8" begins with a byte order
    mark, and its first case was refused as "not one JSON object"; a line not in UTF-8 (GBK,
    UTF-16) is refused saying so."""
    lines = [
        codecs.BOM_UTF8 + line("BOM-1", []),
        line("BOM-2", []),
        '{"external_id": "GBK-1", "note": "投诉"}'.encode("gbk"),
    ]

    report = await import_lines(pool, lines)

    assert report.cases_imported == 2
    assert [(r.line_number, r.code) for r in report.refusals] == [(3, "invalid_json")]
    assert "not UTF-8" in report.refusals[0].detail


async def test_the_feed_and_chains_hold_every_imported_event(
    pool: asyncpg.Pool, institutions: None
) -> None:
    lines = [line(f"FEED-{n}", FULL_HISTORY[: n % 5]) for n in range(7)]
    report = await import_lines(pool, lines, batch=3)

    store = PostgresEventStore(pool)
    feed = await store.read_feed(after=0, limit=1000)
    assert len(feed) == report.events_imported == sum(1 + n % 5 for n in range(7))
    assert [e.position for e in feed] == sorted(e.position for e in feed)
    for n in range(7):
        events = await store.read_stream(case_id_for(f"FEED-{n}"))
        assert [e.version for e in events] == list(range(1, len(events) + 1))
        assert verify_chain(events).intact
        assert events[0].metadata.idempotency_key == f"import:FEED-{n}"
    # one causation id an imported action, on every event it appended (DOMAIN.md "Events")
    causes = [e.metadata.causation_id for e in feed]
    assert all(cause and len(cause) == 32 for cause in causes)
    assert len(set(causes)) == len(causes)


async def test_importing_the_same_file_again_stores_nothing_new(
    pool: asyncpg.Pool, institutions: None
) -> None:
    lines = [line(f"AGAIN-{n}", FULL_HISTORY[:2]) for n in range(5)]
    first = await import_lines(pool, lines)
    events_before = await pool.fetchval("SELECT count(*) FROM events")
    serials_before = await pool.fetch("SELECT * FROM registration_serials")

    second = await import_lines(pool, lines)

    assert (first.cases_imported, second.cases_imported, second.cases_skipped) == (5, 0, 5)
    assert await pool.fetchval("SELECT count(*) FROM events") == events_before
    assert await pool.fetch("SELECT * FROM registration_serials") == serials_before


async def test_the_command_line_imports_a_file_and_names_refused_lines(
    database_url: str, tmp_path: Path, institutions: None
) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_bytes(
        line("CLI-1", [("assign", {"handler_id": "staff-a1"})])
        + b"\n\n"
        + line("CLI-2", [("decide", DECISION)])
        + b"\n"
    )
    env = {**os.environ, "DATABASE_URL": database_url, "COMPLAINTCORE_LOG_FORMAT": "json"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "complaintcore.cli", "import", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "1 cases imported (2 events), 0 already stored, 1 refused" in result.stdout
    assert "line 3 (CLI-2): case_not_assigned" in result.stderr
    assert "张三" not in result.stdout + result.stderr


def dated_line(
    external_id: str, received_days_ago: int, actions: list[tuple[int, str, dict[str, Any]]]
) -> bytes:
    """A case whose actions were each entered `n` days ago."""
    case = {
        "external_id": external_id,
        **receipt(received_days_ago=received_days_ago),
        "actor": STAFF,
        "actions": [
            {"command": command, "at": days_ago(n), **body} for n, command, body in actions
        ],
    }
    return orjson.dumps(case)


async def test_a_merge_is_judged_against_its_target_as_it_stood_on_the_merge_day(
    pool: asyncpg.Pool, institutions: None
) -> None:
    decided_five_days_ago = {**DECISION, "notice": notice(days_ago(5))}
    target = dated_line(
        "TARGET",
        20,
        [(19, "assign", {"handler_id": "staff-a1"}), (5, "decide", decided_five_days_ago)],
    )
    merged_while_open = dated_line("DUP-EARLY", 15, [(10, "merge", {"into_external_id": "TARGET"})])
    merged_after_decision = dated_line(
        "DUP-LATE", 15, [(3, "merge", {"into_external_id": "TARGET"})]
    )

    in_one_file = await import_lines(pool, [target, merged_while_open, merged_after_decision])
    # and the same once the target is stored by an earlier import
    stored_then = await import_lines(
        pool,
        [
            dated_line("DUP-EARLY-2", 15, [(10, "merge", {"into_external_id": "TARGET"})]),
            dated_line("DUP-LATE-2", 15, [(3, "merge", {"into_external_id": "TARGET"})]),
        ],
    )

    for report, early, late in ((in_one_file, 2, 3), (stored_then, 1, 2)):
        assert [(r.line_number, r.code) for r in report.refusals] == [
            (late, "merge_target_not_open")
        ]
        assert early not in [r.line_number for r in report.refusals]
    for duplicate in ("DUP-EARLY", "DUP-EARLY-2"):
        merged, _ = await stored_state(pool, case_id_for(duplicate))
        assert merged.merged_into == case_id_for("TARGET")
    decided, _ = await stored_state(pool, case_id_for("TARGET"))
    assert decided.status == "decided"


class StoreReadingTogether(PostgresEventStore):
    """Lets two importers both find their first batch's cases not stored yet before either
    writes: the second's write then meets the first's streams."""

    def __init__(self, pool: asyncpg.Pool, together: asyncio.Barrier) -> None:
        super().__init__(pool)
        self._together: asyncio.Barrier | None = together
        self.refused = 0

    async def existing_streams(self, *args: Any, **kwargs: Any) -> set[str]:
        found = await super().existing_streams(*args, **kwargs)
        together, self._together = self._together, None
        if together is not None:
            await asyncio.wait_for(together.wait(), 10)
        return found

    async def append_streams(self, *args: Any, **kwargs: Any) -> int:
        try:
            return await super().append_streams(*args, **kwargs)
        except ConcurrencyError:
            self.refused += 1
            raise


async def test_two_imports_of_one_file_at_once_store_each_case_once(
    pool: asyncpg.Pool, institutions: None
) -> None:
    lines = [line(f"TWICE-{n}", FULL_HISTORY[: n % 4]) for n in range(6)]
    together = asyncio.Barrier(2)
    stores = [StoreReadingTogether(pool, together) for _ in range(2)]

    async def run(store: PostgresEventStore) -> ImportReport:
        async with pool.acquire() as connection:
            reference = await load_reference_data(
                connection, TODAY, ActorBody(id="import", role="staff"), "import-test"
            )
            importer = BulkImporter(connection, store, reference, session_case_keys(), 3)
            return await importer.run(numbered_lines(lines))

    reports = await asyncio.gather(*(run(store) for store in stores))

    assert sum(store.refused for store in stores) >= 1  # one import's batch met the other's
    assert sum(r.cases_imported for r in reports) == 6
    assert sum(r.cases_imported + r.cases_skipped for r in reports) == 12
    events = sum(r.events_imported for r in reports)
    assert await pool.fetchval("SELECT count(*) FROM events") == events == 6 + 0 + 1 + 2 + 3 + 0 + 1
    store = PostgresEventStore(pool)
    for n in range(6):
        assert verify_chain(await store.read_stream(case_id_for(f"TWICE-{n}"))).intact
    numbers = await pool.fetch("SELECT registration_no FROM case_view ORDER BY registration_no")
    assert [n["registration_no"][-6:] for n in numbers] == [f"{n:06d}" for n in range(1, 7)]


async def test_imported_actions_are_judged_under_the_policy_in_force_on_their_dates(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """Issue 14: a stored policy judges an imported action as it would the same command over
    HTTP on that date (here BR-A's staff limit, 20,000 fen from today), and each event names
    the version it was judged under."""
    await PolicyStore(pool).append(
        "BR-A", TODAY, PolicySettings(staff_redress_limit_fen=20_000), "admin-1", TODAY
    )
    decision = {**DECISION, "notice": notice(TODAY.isoformat())}
    decided = [("assign", {"handler_id": "staff-a1"}), ("decide", decision)]
    supervisor = {"id": "sup-a", "role": "supervisor", "institution": "BR-A"}
    approval = {"up_to_fen": 30_000, "note": "超出经办权限", "actor": supervisor}
    approved = [decided[0], ("approve-redress", approval), decided[1]]

    report = await import_lines(pool, [line("OVER-LIMIT", decided), line("APPROVED", approved)])

    assert [(r.external_id, r.code) for r in report.refusals] == [
        ("OVER-LIMIT", "redress_exceeds_authority")
    ]
    assert "20000" in report.refusals[0].detail.replace(",", "")
    events = await PostgresEventStore(pool).read_stream(case_id_for("APPROVED"))
    judged = [(event.event_type, event.metadata.policy_version) for event in events]
    assert judged[0] == ("ComplaintReceived", "default")  # received 12 days ago
    assert judged[1:] == [
        ("HandlerAssigned", "BR-A/v1"),
        ("RedressApproved", "BR-A/v1"),
        ("ComplaintDecided", "BR-A/v1"),
    ]


async def test_a_merge_into_another_banks_case_is_refused_as_an_unknown_case(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """Found by a review pass: an import merged a case into another head office's case, which
    no principal can see both of (the API answers `into: unknown_case`), and counted it there."""
    directory = InstitutionDirectory(pool)
    await directory.put("HO2", "另一银行总行", "head_office")
    await directory.put("BR-Z", "另一银行分行", "branch", "HO2")
    target = line("BANK-1", [("assign", {"handler_id": "staff-a1"})])
    other_bank = line("BANK-2", [("merge", {"into_external_id": "BANK-1"})], institution="BR-Z")
    same_bank = line("BANK-3", [("merge", {"into_external_id": "BANK-1"})], institution="SUB-A1")

    in_one_file = await import_lines(pool, [target, other_bank])
    target_stored_before = await import_lines(pool, [other_bank, same_bank])

    for report in (in_one_file, target_stored_before):
        assert [(r.line_number, r.code, r.detail) for r in report.refusals] == [
            (
                report.refusals[0].line_number,
                "validation_failed",
                "actions[1] (merge): into: unknown_case",
            )
        ]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1", case_id_for("BANK-2")
        )
        == 0
    )
    merged, _ = await stored_state(pool, case_id_for("BANK-3"))
    assert merged.merged_into == case_id_for("BANK-1")


@pytest.mark.parametrize(
    "personal", ["11010519491231002X", "13800138000"], ids=["identity number", "mobile number"]
)
async def test_an_external_id_that_is_a_personal_number_is_refused_unnamed(
    pool: asyncpg.Pool, institutions: None, personal: str
) -> None:
    """Found by a review pass: an identity number given as the external id was stored in clear
    in every event's metadata and echoed in the refusals; the case id derived from it confirmed
    a guess. It is refused, and not named (a legacy case number of the same shape is not)."""
    as_case = line(personal, [("assign", {"handler_id": "staff-a1"})])
    as_target = line("T-9", [("merge", {"into_external_id": personal})])
    legacy_number = line("2023010100001234", [("assign", {"handler_id": "staff-a1"})])

    report = await import_lines(pool, [as_case, as_target, legacy_number])

    assert [(r.line_number, r.external_id, r.code) for r in report.refusals] == [
        (1, None, "external_id_personal"),
        (2, "T-9", "external_id_personal"),
    ]
    assert all(personal not in r.detail for r in report.refusals)
    assert report.cases_imported == 1
    stored = await pool.fetchval("SELECT string_agg(metadata::text, '') FROM events")
    assert personal not in stored


async def test_an_external_id_stored_for_another_case_is_refused_not_passed_over(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """Found by a review pass: a second source system's case under a number already imported
    was counted "already stored" and dropped, exit 0. The same case again is still skipped."""
    first = line("2023-0001", [("assign", {"handler_id": "staff-a1"})])
    other_branch = line("2023-0001", [], institution="SUB-A1")
    other_day = line("2023-0001", [], received_days_ago=30)
    await import_lines(pool, [first])
    events_before = await pool.fetchval("SELECT count(*) FROM events")

    for other in (other_branch, other_day):
        refused = await import_lines(pool, [line("2023-0002", []), other])
        assert (refused.cases_imported, refused.cases_skipped) in ((1, 0), (0, 1))
        assert [(r.line_number, r.external_id, r.code) for r in refused.refusals] == [
            (2, "2023-0001", "external_id_reused")
        ]
    again = await import_lines(pool, [first])

    assert (again.cases_imported, again.cases_skipped, again.refusals) == (0, 1, [])
    assert await pool.fetchval("SELECT count(*) FROM events") == events_before + 1


async def test_an_action_entered_before_the_one_before_it_is_refused(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """Found by a review pass: a handler assigned five days after the case was merged away was
    stored as the history, the merge (dated by its entry alone) recorded after the assignment."""
    backwards = dated_line(
        "BACK-1",
        12,
        [(3, "assign", {"handler_id": "staff-a1"}), (8, "merge", {"into_external_id": "T"})],
    )
    same_day = dated_line(
        "SAME-1",
        12,
        [
            (12, "assign", {"handler_id": "staff-a1"}),
            (12, "recuse", {"handler_id": "staff-a1", "reason": "亲属"}),
        ],
    )

    report = await import_lines(pool, [backwards, same_day])

    assert [(r.line_number, r.code, r.detail) for r in report.refusals] == [
        (
            1,
            "entry_dates_out_of_order",
            f"actions[2]: at {days_ago(8)} is before the entry before it ({days_ago(3)})",
        )
    ]
    assert report.cases_imported == 1


async def test_a_review_decided_by_an_actor_at_the_reviewed_branch_is_refused(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """Found by a review pass: an action naming its own actor at the reviewed branch decided
    the review, which the API refuses (Art. 20: the review goes to the superior). An actor
    with no institution (the operator's `--actor`) records what the superior decided."""
    decided_long_ago = {**DECISION, "notice": notice(days_ago(10))}
    review = {
        "reviewer_id": "r-1",
        "outcome": "kept",
        "findings": "维持",
        "notice": notice(days_ago(2)),
    }
    history = [
        (11, "assign", {"handler_id": "staff-a1"}),
        (10, "decide", decided_long_ago),
        (5, "appeal", {"received_on": days_ago(5), "grounds": "不服"}),
    ]

    def reviewed_by(external_id: str, actor: dict[str, Any] | None) -> bytes:
        document = orjson.loads(
            dated_line(external_id, 12, [*history, (2, "decide-review", review)])
        )
        if actor is not None:
            document["actions"][-1]["actor"] = actor
        else:
            del document["actor"]
        return orjson.dumps(document)

    report = await import_lines(
        pool,
        [
            reviewed_by("REV-BRANCH", STAFF),
            reviewed_by("REV-HO", {"id": "r-1", "role": "staff", "institution": "HO"}),
            reviewed_by("REV-OPERATOR", None),
        ],
    )

    assert [(r.line_number, r.code) for r in report.refusals] == [
        (1, "review_decided_below_superior")
    ]
    assert report.cases_imported == 2


class DecidingMeanwhile(PostgresEventStore):
    """The API decides the merge target right after the import has read it."""

    def __init__(self, pool: asyncpg.Pool, target: str, decide: Any) -> None:
        super().__init__(pool)
        self._target, self._decide = target, decide

    async def read_stream(self, stream_id: str, *args: Any, **kwargs: Any) -> Any:
        events = await super().read_stream(stream_id, *args, **kwargs)
        if stream_id == self._target and self._decide is not None:
            decide, self._decide = self._decide, None
            await decide()
        return events


async def test_a_merge_into_a_target_decided_while_the_batch_is_judged_is_judged_again(
    pool: asyncpg.Pool,
) -> None:
    """Found by a review pass: the import read its stored target without the case's lock, so a
    decision committed meanwhile was missed and the duplicate merged into a case decided before
    the merge day. The batch is judged again on the target as it now stands."""
    desk = CaseDesk(pool)
    await desk.plant_tree()
    target = await desk.receive("BR-A", TODAY - timedelta(days=20))
    await desk.assign(target, TODAY - timedelta(days=19))
    duplicate = {
        "external_id": "DUP-RACE",
        **complaint("BR-A", 10),
        "actor": {"id": "staff-ho", "role": "staff", "institution": "HO"},
        "actions": [{"command": "merge", "at": days_ago(3), "into": target}],
    }

    async def decided_five_days_ago() -> None:
        await desk.decide(target, TODAY - timedelta(days=5))

    async with pool.acquire() as connection:
        reference = await load_reference_data(
            connection, TODAY, ActorBody(id="import", role="staff"), "import-test"
        )
        store = DecidingMeanwhile(pool, target, decided_five_days_ago)
        importer = BulkImporter(connection, store, reference, session_case_keys(), 10)
        report = await importer.run(numbered_lines([orjson.dumps(duplicate)]))

    assert [(r.line_number, r.code) for r in report.refusals] == [(1, "merge_target_not_open")]
    assert report.cases_imported == 0
    assert not await pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = $1", case_id_for("DUP-RACE")
    )


async def test_a_batch_waits_for_a_command_on_its_merge_target_and_outlives_a_deadlock(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """A batch locks its stored merge targets as a command locks a case: it waits for a command
    in progress on one (found by the review of 588fdf9: the test above passed without the lock).
    A command merging one of them into another meanwhile waits for the batch: PostgreSQL
    breaks that deadlock on one side, and an import broken there judges its batch again rather
    than exit with a traceback."""
    stored = await import_lines(
        pool, [line("T-B", [("assign", {"handler_id": "staff-a1"})]), line("T-C", [])]
    )
    assert stored.cases_imported == 2
    first, second = sorted([case_id_for("T-B"), case_id_for("T-C")])
    duplicates = [
        line("D-1", [("merge", {"into": first})]),
        line("D-2", [("merge", {"into": second})]),
    ]
    command = await pool.acquire()
    try:
        # a command on `second`, between its read and its write
        await command.execute(
            "SELECT pg_advisory_lock($1, hashtext($2))", advisory_locks.CASE_COMMANDS, second
        )
        importing = asyncio.create_task(import_lines(pool, duplicates, batch=10))
        await asyncio.sleep(0.5)
        assert not importing.done(), "the batch waits for the command on its target"
        # ... which merges `second` into `first`, locked by the waiting batch
        # (broken on the command's side instead, it is refused as busy and decided again)
        with contextlib.suppress(asyncpg.DeadlockDetectedError):
            await command.execute(_LOCK_MERGE_TARGET, advisory_locks.CASE_COMMANDS, first)
        await command.execute("SELECT pg_advisory_unlock_all()")
        report = await asyncio.wait_for(importing, 30)
    finally:
        await pool.release(command)
    assert (report.cases_imported, report.refusals) == (2, [])


async def _behind_the_triggers_back(pool: asyncpg.Pool, sql: str, case_id: str) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
        await connection.execute(sql, case_id)
        await connection.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")


@pytest.mark.parametrize(
    "damage",
    [
        "DELETE FROM events WHERE stream_id = $1 AND version = 2",
        "UPDATE events SET data = '[]'::jsonb WHERE stream_id = $1 AND version = 2",
        "UPDATE events SET metadata = jsonb_set(metadata, '{cipher_suite}', '\"rot13\"')"
        " WHERE stream_id = $1 AND version = 3",
    ],
    ids=["a version deleted", "a payload replaced", "a suite renamed"],
)
async def test_a_merge_into_a_stored_case_that_is_not_whole_refuses_that_line_alone(
    pool: asyncpg.Pool, institutions: None, damage: str
) -> None:
    """Over HTTP such a merge is 409 case_stream_damaged; the import refuses the line with that
    code and goes on, as with every refusal (it stopped the whole run)."""
    await import_lines(
        pool,
        [
            line(
                "TARGET-1",
                [("assign", {"handler_id": "staff-a1"}), ("assign", {"handler_id": "h-2"})],
            )
        ],
    )
    await _behind_the_triggers_back(pool, damage, case_id_for("TARGET-1"))

    report = await import_lines(
        pool,
        [
            line("DUP-1", [("merge", {"into_external_id": "TARGET-1"})]),
            line("OK-1", [("assign", {"handler_id": "staff-a1"})]),
        ],
    )

    assert [(r.line_number, r.code) for r in report.refusals] == [(1, "case_stream_damaged")]
    assert report.cases_imported == 1


async def test_a_rerun_over_a_stored_case_missing_its_receipt_refuses_that_line_alone(
    pool: asyncpg.Pool, institutions: None
) -> None:
    """A stream whose version 1 was deleted was judged a new case, and its writes met the stored
    rows on every attempt until the run gave up; the line is refused, the others imported."""
    first = line("GONE-1", [("assign", {"handler_id": "staff-a1"})])
    await import_lines(pool, [first])
    await _behind_the_triggers_back(
        pool, "DELETE FROM events WHERE stream_id = $1 AND version = 1", case_id_for("GONE-1")
    )

    report = await import_lines(pool, [first, line("OK-2", [])])

    assert [(r.line_number, r.code) for r in report.refusals] == [(1, "case_stream_damaged")]
    assert report.cases_imported == 1


class _AnotherRunStoresItMeanwhile(PostgresEventStore):
    """A second import of the same file stores the case right after this run asked which cases
    it holds stored (between the import's queries of a batch)."""

    def __init__(self, pool: asyncpg.Pool, lines: list[bytes]) -> None:
        super().__init__(pool)
        self._other_pool = pool
        self._lines = lines
        self._done = False

    async def existing_streams(self, stream_ids: Any, **kwargs: Any) -> set[str]:
        found = await super().existing_streams(stream_ids, **kwargs)
        if not self._done:
            self._done = True
            await import_lines(self._other_pool, self._lines)
        return found


async def test_a_case_stored_by_another_import_meanwhile_is_not_taken_for_damaged(
    pool: asyncpg.Pool, institutions: None
) -> None:
    lines = [line("RACE-1", [("assign", {"handler_id": "staff-a1"})])]
    async with pool.acquire() as connection:
        reference = await load_reference_data(
            connection, TODAY, ActorBody(id="import", role="staff"), "import-test"
        )
        importer = BulkImporter(
            connection, _AnotherRunStoresItMeanwhile(pool, lines), reference, session_case_keys(), 2
        )
        report = await importer.run(numbered_lines(lines))
    assert report.refusals == []
    assert report.cases_skipped + report.cases_imported == 1
