"""Erasure of a case's personal data end to end, over HTTP against a live `complaintcore serve`
(API.md "Personal data"; DOMAIN.md "Personal data", Retention).

Cases received six to seven years ago and closed then (withdrawn, declined, decided with the
review window passed) are erased by an admin: the key row is gone, `PersonalDataErased` is the
last event, every document shows nulls, the reveal answers 410, the audit and the chain still
verify (by the service, by `complaintcore audit`, and by the README's independent recipe),
statistics are the same before and after, and a rebuild gives back exactly the live tables. An
open case (`case_open`), a case closed two years ago (`retention_not_expired`) and a case stored
before encryption (`personal_data_not_encrypted`) are refused, and only an admin may erase.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest
from test_independent_chain_check import first_broken_version

from api_support import TODAY, days_ago, ok, post, refused
from complaintcore.domain import (
    DEFAULT_POLICY,
    ActorRole,
    Category,
    Complainant,
    ComplainantKind,
    DecisionContext,
    IdType,
    ReceiveComplaint,
    WithdrawComplaint,
    decide,
    fold,
    seeded_calendar,
)
from complaintcore.events.codec import new_events
from complaintcore.events.model import EventMetadata
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from complaintcore.projections.statistics import buckets as statistics_buckets
from testsupport import LiveService, live_service, session_master_key_file

ERASURE = {"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"}
PURPOSE = "删除后核查"
STATISTICS_RANGE = {"from": "2019-01-01", "to": TODAY.isoformat(), "period": "month"}
PROJECTION_TABLES = ("case_view", "case_statistics", *statistics_buckets.TABLES)
ERASED_COMPLAINANT = {
    "kind": "natural_person",
    "name": None,
    "id_type": None,
    "id_number": None,
    "contact": None,
}
NAME, ID_NUMBER, PHONE = "令狐冲霄", "11010519491231002X", "13912340987"


def complainant() -> dict[str, Any]:
    return {
        "kind": "natural_person",
        "name": NAME,
        "id_type": "resident_id",
        "id_number": ID_NUMBER,
        "contact": PHONE,
        "address": "杭州市西湖区曙光路一百二十号",
    }


def receipt(received_on: str, **extra: Any) -> dict[str, Any]:
    body = {
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": received_on,
        "complainant": complainant(),
        "claims": "退还账户6217000010009876543被多扣的年费",
        "facts": "未经同意扣收年费",
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        "respondent_staff": [{"staff_id": "staff-x9", "name": "东方未明"}],
    }
    body.update(extra)
    return body


def notice(on: str) -> dict[str, Any]:
    return {"method": "sms", "proof_ref": "SMS-1", "notified_on": on}


def decision(on: str) -> dict[str, Any]:
    return {
        "handler_id": "staff-a1",
        "outcome": "partially_upheld",
        "findings": "年费扣收未提示",
        "basis": "信用卡章程第十二条",
        "redress_fen": 45000,
        "remedies": ["review", "litigation"],
        "notice": notice(on),
    }


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json")
    command = [sys.executable, "-m", "complaintcore.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


# --- the live service and its cases ----------------------------------------------------------


@pytest.fixture(scope="module")
def live(
    module_database_url: str, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """`complaintcore serve` under the run's master key, which the command line shares."""
    folder = tmp_path_factory.mktemp("live")
    shutil.copy(session_master_key_file(), folder / "master.key")
    with live_service(module_database_url, tokens, folder) as service:
        yield service


@dataclass(frozen=True)
class Cases:
    erasable: dict[str, str]  # how it closed -> case id, each closed six or seven years ago
    open_received: str
    open_decided: str  # decided two days ago: its review window is still open
    closed_two_years_ago: str
    legacy: str  # stored before encryption, closed in 2019


def _new_case(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/complaints", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
async def cases(live: LiveService) -> Cases:
    with live.client("staff_a") as staff:
        decided = _new_case(staff, receipt("2019-03-04"))
        ok(post(staff, decided, "assign", {"handler_id": "staff-a1"}))
        body = {"reason": "情况复杂", "notice": notice("2019-03-05")}
        ok(post(staff, decided, "extend", body))
        # paused in two months running, so the statistics keep a pause span of it
        for paused_on, resumed_on in (("2019-03-06", "2019-03-08"), ("2019-04-01", "2019-04-02")):
            body = {
                "kind": "appraisal",
                "paused_on": paused_on,
                "reason": "委托鉴定签名真伪",
                "notice": notice(paused_on),
            }
            ok(post(staff, decided, "pause", body))
            ok(post(staff, decided, "resume", {"resumed_on": resumed_on}))
        ok(post(staff, decided, "decide", decision("2019-04-03")))

        withdrawn = _new_case(staff, receipt("2019-05-06"))
        body = {"received_on": "2019-05-10", "reason": "令狐冲霄已与网点协商一致"}
        ok(post(staff, withdrawn, "withdraw", body))

        declined = _new_case(staff, receipt("2020-06-01"))
        body = {"reason": "非投诉人本人提出", "notice": notice("2020-06-05")}
        ok(post(staff, declined, "decline", body))

        recent = _new_case(staff, receipt("2024-11-04"))
        ok(post(staff, recent, "withdraw", {"received_on": "2024-11-20", "reason": "已解决"}))

        open_received = _new_case(staff, receipt(days_ago(3)))
        open_decided = _new_case(staff, receipt(days_ago(10)))
        ok(post(staff, open_decided, "assign", {"handler_id": "staff-a1"}))
        ok(post(staff, open_decided, "decide", decision(days_ago(2))))

    legacy = await _store_a_case_before_encryption(live.database_url)
    # its case_view row, as the rebuild writes it from the events alone
    rebuilt = run_cli(live.database_url, "projections", "rebuild", "case_view")
    assert rebuilt.returncode == 0, rebuilt.stderr
    return Cases(
        erasable={
            "decided": decided["id"],
            "withdrawn": withdrawn["id"],
            "declined": declined["id"],
        },
        open_received=open_received["id"],
        open_decided=open_decided["id"],
        closed_two_years_ago=recent["id"],
        legacy=legacy,
    )


LEGACY_CASE = "5d1c0a9e-7b3f-4e21-9a8d-3c2b1f0e9d87"


async def _store_a_case_before_encryption(database_url: str) -> str:
    """A case received and withdrawn in 2019, its events stored as they were before encryption:
    plaintext payloads, no `cipher_suite` in their metadata, no key row."""

    def context(today: date) -> DecisionContext:
        return DecisionContext(
            today=today,
            calendar=seeded_calendar(),
            policy=DEFAULT_POLICY,
            actor_id="staff-a1",
            actor_role=ActorRole("staff"),
            superior_of_respondent="HO",
        )

    receive = ReceiveComplaint(
        case_id=LEGACY_CASE,
        registration_no="BR-A-201902-900001",
        respondent_institution="BR-A",
        channel="phone",
        received_on=date(2019, 2, 11),
        complainant=Complainant(
            kind=ComplainantKind.NATURAL_PERSON,
            name="任我行远",
            id_type=IdType.RESIDENT_ID,
            id_number=ID_NUMBER,
            contact="13800001111",
        ),
        claims="退还年费",
        facts="未经同意扣收年费",
        category=Category("credit_card", "pricing_and_fees"),
    )
    events = decide(None, receive, context(date(2019, 2, 11)))
    withdraw = WithdrawComplaint(received_on=date(2019, 2, 15), reason="已协商")
    events += decide(fold(events), withdraw, context(date(2019, 2, 15)))
    metadata = EventMetadata(actor_id="staff-a1", actor_role="staff", institution="BR-A")
    stored = new_events(events, metadata)  # no cipher: the way events were stored before
    assert all(event.metadata.cipher_suite is None for event in stored)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await PostgresEventStore(pool).append(LEGACY_CASE, stored, expected_version=0)
    finally:
        await pool.close()
    return LEGACY_CASE


# --- reading the service ---------------------------------------------------------------------


async def _rows(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


async def key_rows(database_url: str, case_id: str) -> int:
    rows = await _rows(
        database_url, "SELECT count(*) AS n FROM case_keys WHERE case_id = $1", case_id
    )
    return rows[0]["n"]


async def stored_rows(database_url: str, case_id: str) -> list[tuple[Any, ...]]:
    """The stream's rows exactly as stored (payload and metadata as jsonb text)."""
    rows = await _rows(
        database_url,
        "SELECT position, version, event_type, schema_version, data::text, metadata::text,"
        " recorded_at, prev_hash, hash FROM events WHERE stream_id = $1 ORDER BY version",
        case_id,
    )
    return [tuple(row.values()) for row in rows]


async def projection_tables(database_url: str) -> dict[str, list[str]]:
    """Every row of the case view and the statistics tables, in full."""
    return {
        table: [
            row["row"]
            for row in await _rows(database_url, f"SELECT t::text AS row FROM {table} t ORDER BY 1")
        ]
        for table in PROJECTION_TABLES
    }


def caught_up(live: LiveService) -> None:
    """Wait until the statistics runner has applied every event of the feed."""
    deadline = time.monotonic() + 30
    with live.client("regulator") as regulator:
        while time.monotonic() < deadline:
            statuses = ok(regulator.get("/v1/projections"))["projections"]
            status = next(s for s in statuses if s["name"] == "statistics")
            if status["lag_events"] == 0:
                return
            time.sleep(0.05)
    pytest.fail("the statistics runner did not catch up")


def statistics(live: LiveService) -> tuple[dict[str, Any], str]:
    """HO's statistics since 2019 by month, and the CSV data return (without the checkpoint,
    the feed position the figures are as of, which the erasure's event moves on)."""
    caught_up(live)
    with live.client("regulator") as regulator:
        figures = ok(regulator.get("/v1/institutions/HO/statistics", params=STATISTICS_RANGE))
        response = regulator.get("/v1/institutions/HO/statistics.csv", params=STATISTICS_RANGE)
    assert response.status_code == 200, response.text
    figures.pop("checkpoint")
    return figures, response.text


def found_by_identity_number(live: LiveService) -> set[str]:
    """The cases staff of BR-A find by the complainant's identity number (the blind index)."""
    body = {"id_type": "resident_id", "id_number": ID_NUMBER}
    with live.client("staff_a") as staff:
        response = staff.post("/v1/complainants/search", json=body, params={"limit": 500})
    return {item["id"] for item in ok(response)["items"]}


def reveal(client: httpx.Client, case_id: str) -> httpx.Response:
    return client.get(f"/v1/complaints/{case_id}/personal-data", params={"purpose": PURPOSE})


def erase(client: httpx.Client, case_id: str) -> httpx.Response:
    return client.post(f"/v1/complaints/{case_id}/erase-personal-data", json=ERASURE)


@dataclass(frozen=True)
class Snapshot:
    document: dict[str, Any]
    events: list[dict[str, Any]]
    rows: list[tuple[Any, ...]]
    audit: dict[str, Any]
    listed: dict[str, Any]
    keys: int


async def snapshot(live: LiveService, case_id: str) -> Snapshot:
    with live.client("regulator") as regulator:
        document = ok(regulator.get(f"/v1/complaints/{case_id}"))
        events = ok(regulator.get(f"/v1/complaints/{case_id}/events"))
        audit = ok(regulator.get(f"/v1/complaints/{case_id}/audit"))
        page = ok(
            regulator.get("/v1/complaints", params={"received_to": "2020-12-31", "limit": 500})
        )
    (listed,) = [item for item in page["items"] if item["id"] == case_id]
    return Snapshot(
        document,
        events,
        await stored_rows(live.database_url, case_id),
        audit,
        listed,
        await key_rows(live.database_url, case_id),
    )


@dataclass(frozen=True)
class Erasure:
    before: dict[str, Snapshot]
    responses: dict[str, dict[str, Any]]
    after: dict[str, Snapshot]
    statistics_before: tuple[dict[str, Any], str]
    statistics_after: tuple[dict[str, Any], str]
    found_before: set[str]
    found_after: set[str]


@pytest.fixture(scope="module")
async def erasure(live: LiveService, cases: Cases) -> Erasure:
    """The three old cases erased by an admin, with everything read before and after."""
    statistics_before = statistics(live)
    found_before = found_by_identity_number(live)
    before = {name: await snapshot(live, case) for name, case in cases.erasable.items()}
    responses = {}
    with live.client("admin") as admin:
        for name, case in cases.erasable.items():
            response = erase(admin, case)
            assert response.status_code == 200, response.text
            responses[name] = response.json()
    after = {name: await snapshot(live, case) for name, case in cases.erasable.items()}
    return Erasure(
        before,
        responses,
        after,
        statistics_before,
        statistics(live),
        found_before,
        found_by_identity_number(live),
    )


# --- the tests -------------------------------------------------------------------------------


async def test_the_erased_cases_were_held_closed_and_keyed_before(erasure: Erasure) -> None:
    for name, before in erasure.before.items():
        assert before.document["personal_data"] == "held", name
        assert before.document["closed"] is True, name
        assert before.document["complainant"]["name"] == "令***"
        assert before.keys == 1, name
        assert before.audit["chain"]["intact"] is True


async def test_the_answer_shows_the_case_with_its_personal_fields_erased(
    erasure: Erasure, cases: Cases
) -> None:
    for name, answer in erasure.responses.items():
        before = erasure.before[name].document
        assert answer["id"] == cases.erasable[name]
        assert answer["personal_data"] == "erased"
        assert answer["version"] == before["version"] + 1
        assert answer["complainant"] == ERASED_COMPLAINANT
        unchanged = {"personal_data", "version", "complainant"}
        assert _without(answer, unchanged) == _without(before, unchanged), name


async def test_the_key_row_is_gone_and_every_document_shows_nulls(erasure: Erasure) -> None:
    for name, after in erasure.after.items():
        assert after.keys == 0, name
        assert after.document == erasure.responses[name]
        # the list shows the members the case shows (none not given, not even as null)
        assert after.listed["complainant"] == ERASED_COMPLAINANT == after.document["complainant"]
        assert after.listed["version"] == after.document["version"]
        audited = after.audit["state"]
        assert audited["personal_data"] == "erased"
        assert audited["complainant"] == after.listed["complainant"]
        if audited["decision"] is not None:
            assert (audited["decision"]["findings"], audited["decision"]["basis"]) == (None, None)


async def test_an_erased_case_as_of_a_version_before_its_erasure_shows_nulls(
    live: LiveService, erasure: Erasure, cases: Cases
) -> None:
    with live.client("regulator") as regulator:
        for name, case_id in cases.erasable.items():
            response = regulator.get(f"/v1/complaints/{case_id}", params={"as_of_version": 1})
            document = ok(response)
            assert document["version"] == 1, name
            assert document["personal_data"] == "erased", name
            assert document["complainant"] == ERASED_COMPLAINANT, name


async def test_the_case_view_rows_read_erased_and_the_blind_index_finds_them_no_more(
    live: LiveService, erasure: Erasure, cases: Cases
) -> None:
    erased = set(cases.erasable.values())
    rows = await _rows(
        live.database_url,
        "SELECT case_id, personal_data, complainant, complainant_index FROM case_view",
    )
    for row in rows:
        if row["case_id"] in erased:
            assert row["personal_data"] == "erased"
            assert row["complainant_index"] is None
            assert NAME[0] not in row["complainant"]
        else:
            assert row["personal_data"] == "held"
            assert row["complainant_index"] is not None
    assert erased < erasure.found_before
    assert erasure.found_after == erasure.found_before - erased


async def test_the_history_is_kept_byte_for_byte_and_the_erasure_is_its_last_event(
    erasure: Erasure,
) -> None:
    for name, after in erasure.after.items():
        before = erasure.before[name]
        assert after.rows[:-1] == before.rows, name
        assert after.events[:-1] == before.events, name
        last = after.events[-1]
        assert last["type"] == "PersonalDataErased"
        assert last["version"] == len(before.events) + 1
        assert last["prev_hash"] == before.events[-1]["hash"]
        closed_on = {"withdrawn": "2019-05-10", "declined": "2020-06-05"}.get(name)
        if name == "decided":
            closed_on = before.document["decision"]["review_window_ends_on"]
        assert last["data"] == {
            "erased_on": TODAY.isoformat(),
            "reason": ERASURE["reason"],
            "legal_basis": ERASURE["legal_basis"],
            "closed_on": closed_on,
            "retention_years": 5,
        }
        metadata = last["metadata"]
        assert (metadata["actor_id"], metadata["actor_role"]) == ("admin-1", "admin")
        assert metadata["cipher_suite"] == "aes-256-gcm"


async def test_the_audit_chain_is_intact_after_erasure(erasure: Erasure) -> None:
    for name, after in erasure.after.items():
        assert after.audit["chain"] == {
            "intact": True,
            "events_checked": len(after.events),
            "first_bad_version": None,
            "reason": None,
        }, name
        assert after.audit["cipher_suite"] == "aes-256-gcm"


async def test_the_independent_recipe_verifies_the_stream_after_erasure(erasure: Erasure) -> None:
    for name, after in erasure.after.items():
        assert first_broken_version(after.events) is None, name
        altered = [dict(event) for event in after.events]
        altered[-1] = {**altered[-1], "data": {**altered[-1]["data"], "reason": "改"}}
        assert first_broken_version(altered) == len(altered)


async def test_statistics_are_the_same_before_and_after(erasure: Erasure) -> None:
    figures_before, csv_before = erasure.statistics_before
    figures_after, csv_after = erasure.statistics_after
    assert figures_after == figures_before
    assert csv_after == csv_before
    total = figures_after["total"]["figures"]
    assert (total["withdrawn"], total["declined"]) >= (2, 1)
    assert total["redress_total_fen"] >= 45000


async def test_the_reveal_answers_410_and_so_does_a_second_erasure(
    live: LiveService, erasure: Erasure, cases: Cases
) -> None:
    for case in cases.erasable.values():
        for who in ("regulator", "supervisor_ho"):
            with live.client(who) as reader:
                refused(reveal(reader, case), "personal_data_erased", 410)
        with live.client("admin") as admin:
            refused(erase(admin, case), "personal_data_erased", 410)
            # who may not reveal is told so, erased or not (API.md: 403 where it sees the case)
            refused(reveal(admin, case), "forbidden", 403)
        with live.client("staff_a") as staff:
            refused(post(staff, {"id": case}, "withdraw", {}), "personal_data_erased", 410)
    for name, case in cases.erasable.items():
        assert await stored_rows(live.database_url, case) == erasure.after[name].rows


async def test_a_rebuild_gives_back_the_live_tables(live: LiveService, erasure: Erasure) -> None:
    caught_up(live)
    live_tables = await projection_tables(live.database_url)
    assert all(live_tables.values())
    rebuilt = run_cli(live.database_url, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert await projection_tables(live.database_url) == live_tables
    with live.client("regulator") as regulator:
        for name, answer in erasure.responses.items():
            document = ok(regulator.get(f"/v1/complaints/{answer['id']}"))
            assert document == answer, name
    assert statistics(live) == erasure.statistics_after


async def test_the_audit_command_verifies_an_erased_case(
    live: LiveService, erasure: Erasure, cases: Cases
) -> None:
    results = await asyncio.gather(
        *(
            asyncio.to_thread(run_cli, live.database_url, "audit", case)
            for case in cases.erasable.values()
        )
    )
    for name, result in zip(cases.erasable, results, strict=True):
        assert result.returncode == 0, result.stderr
        events = len(erasure.after[name].events)
        assert re.search(rf"hash chain\s+intact \({events} events verified\)", result.stdout)
        assert NAME not in result.stdout and ID_NUMBER not in result.stdout


@pytest.mark.parametrize("who", ["staff_a", "supervisor_ho", "regulator"])
async def test_only_an_admin_may_erase(live: LiveService, cases: Cases, who: str) -> None:
    case = cases.closed_two_years_ago
    before = await stored_rows(live.database_url, case)
    with live.client(who) as client:
        refused(erase(client, case), "forbidden", 403)
    with httpx.Client(base_url=live.base_url) as anonymous:
        assert erase(anonymous, case).status_code == 401
    assert await stored_rows(live.database_url, case) == before
    assert await key_rows(live.database_url, case) == 1


async def test_a_merge_of_an_erased_case_is_refused_as_erased_whatever_it_names(
    live: LiveService, erasure: Erasure, cases: Cases
) -> None:
    # an erased case takes no command at all: the target a merge names is not judged
    erased = cases.erasable["withdrawn"]
    with live.client("staff_a") as staff:
        closed_target = cases.erasable["declined"]
        for target in (closed_target, "00000000-0000-4000-8000-000000000000"):
            response = staff.post(f"/v1/complaints/{erased}/merge", json={"into": target})
            refused(response, "personal_data_erased", 410)


@pytest.mark.parametrize("which", ["open_received", "open_decided"])
async def test_an_open_case_is_refused_case_open(
    live: LiveService, cases: Cases, which: str
) -> None:
    case = getattr(cases, which)
    before = await stored_rows(live.database_url, case)
    with live.client("admin") as admin:
        refused(erase(admin, case), "case_open")
    assert await stored_rows(live.database_url, case) == before
    assert await key_rows(live.database_url, case) == 1
    with live.client("regulator") as regulator:
        assert ok(reveal(regulator, case))["personal_data"] == "held"


async def test_a_case_closed_two_years_ago_is_refused_retention_not_expired(
    live: LiveService, cases: Cases
) -> None:
    case = cases.closed_two_years_ago
    before = await stored_rows(live.database_url, case)
    with live.client("admin") as admin:
        problem = refused(erase(admin, case), "retention_not_expired")
    assert "2029-11-20" in problem["detail"], problem
    assert await stored_rows(live.database_url, case) == before
    assert await key_rows(live.database_url, case) == 1


async def test_a_case_stored_before_encryption_is_refused_personal_data_not_encrypted(
    live: LiveService, cases: Cases
) -> None:
    before = await stored_rows(live.database_url, cases.legacy)
    assert len(before) == 2
    with live.client("regulator") as regulator:
        document = ok(regulator.get(f"/v1/complaints/{cases.legacy}"))
    assert (document["status"], document["personal_data"]) == ("withdrawn", "held")
    with live.client("admin") as admin:
        refused(erase(admin, cases.legacy), "personal_data_not_encrypted")
    assert await stored_rows(live.database_url, cases.legacy) == before
    assert await key_rows(live.database_url, cases.legacy) == 0


def _without(document: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in keys}
