"""`complaintcore audit` and `complaintcore demo` run as an operator runs them: subprocesses over a
real PostgreSQL database (`DATABASE_URL`)."""

import asyncio
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from api_support import TODAY, app_client
from complaintcore.application.business_day import shanghai_today
from complaintcore.auth.tokens import create_token, principal_for_token
from complaintcore.cli.demo_data import DEFAULT_CASES, DEFAULT_SEED, demo_stories
from complaintcore.domain.commands import ApproveRedress, Attribute, DecideComplaint, Rectify
from complaintcore.domain.policy import DEFAULT_POLICY
from complaintcore.events.hashing import verify_chain
from complaintcore.events.store import PostgresEventStore
from complaintcore.reference.institutions import InstitutionDirectory

COMPLAINANT = {
    "kind": "natural_person",
    "name": "张三丰",
    "id_type": "resident_id",
    "id_number": "11010519491231002X",
    "contact": "13812345678",
}
TOKEN = re.compile(r"^\s*token\s+(cc_[A-Za-z0-9_-]+)\s*$", re.MULTILINE)


def days_ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def notice(on: str) -> dict:
    return {"method": "sms", "proof_ref": "SMS-1", "notified_on": on}


async def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json")
    command = [sys.executable, "-m", "complaintcore.cli", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(database_url) as client:
        yield client


@pytest.fixture
async def tokens(pool: asyncpg.Pool) -> dict[str, str]:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    return {
        "staff": await create_token(pool, "staff-a1", "staff", "BR-A"),
        "regulator": await create_token(pool, "reg-1", "regulator", None),
    }


@pytest.fixture
async def case_id(api: httpx.AsyncClient, tokens: dict[str, str]) -> str:
    """A case received 20 days ago, assigned, extended (version 3), then decided on time."""
    staff = {"Authorization": f"Bearer {tokens['staff']}"}
    body = {
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": days_ago(20),
        "complainant": COMPLAINANT,
        "claims": "退还信用卡年费",
        "facts": "未经同意扣收年费",
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
    }
    response = await api.post("/v1/complaints", json=body, headers=staff)
    assert response.status_code == 201, response.text
    case = response.json()["id"]
    commands = [
        ("assign", {"handler_id": "staff-a1"}),
        ("extend", {"reason": "情况复杂", "notice": notice(days_ago(10))}),
        (
            "decide",
            {
                "handler_id": "staff-a1",
                "outcome": "upheld",
                "findings": "属实",
                "basis": "合同约定",
                "remedies": ["review", "litigation"],
                "notice": notice(days_ago(2)),
                "redress_fen": 30000,
            },
        ),
    ]
    for command, command_body in commands:
        response = await api.post(
            f"/v1/complaints/{case}/{command}", json=command_body, headers=staff
        )
        assert response.status_code == 200, response.text
    return case


async def altered_behind_the_triggers_back(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("ALTER TABLE events DISABLE TRIGGER events_refuse_update_delete")
        await connection.execute(sql, *args)
        await connection.execute("ALTER TABLE events ENABLE TRIGGER events_refuse_update_delete")


def timeline_rows(stdout: str) -> list[list[str]]:
    """The timeline table's data rows, split into cells (each row starts with its version)."""
    return [line.split() for line in stdout.splitlines() if re.match(r"^\s*\d+\s+[A-Z]", line)]


# --- audit ---------------------------------------------------------------------------------


async def test_audit_of_an_intact_case_prints_the_verdict_and_the_timeline(
    database_url: str, case_id: str
) -> None:
    result = await run_cli(database_url, "audit", case_id)

    assert result.returncode == 0, result.stderr
    assert re.search(r"hash chain\s+intact \(4 events verified\)", result.stdout)
    assert re.search(r"status\s+decided", result.stdout)
    assert re.search(r"registration no\s+BR-A-\d{6}-000001", result.stdout)
    rows = timeline_rows(result.stdout)
    assert [row[:3] for row in rows] == [
        ["1", "ComplaintReceived", "receipt"],
        ["3", "DeadlineExtended", "extension"],
        ["4", "ComplaintDecided", "decision"],
    ]
    assert rows[1][3:7] == [days_ago(10), days_ago(20 - 30), "1", "0"]
    assert rows[2][3:5] == [days_ago(2), days_ago(20 - 30)]
    assert rows[2][-1] == "yes"
    for personal in ("张三丰", "11010519491231002X", "13812345678"):
        assert personal not in result.stdout


async def test_audit_json_is_the_document_of_the_audit_route(
    database_url: str, case_id: str, api: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    result = await run_cli(database_url, "audit", case_id.upper(), "--json")

    assert result.returncode == 0, result.stderr
    regulator = {"Authorization": f"Bearer {tokens['regulator']}"}
    route = await api.get(f"/v1/complaints/{case_id}/audit", headers=regulator)
    assert route.status_code == 200, route.text
    assert json.loads(result.stdout) == route.json()


async def test_audit_of_a_case_altered_behind_the_triggers_back_names_the_bad_version(
    database_url: str, case_id: str, pool: asyncpg.Pool
) -> None:
    await altered_behind_the_triggers_back(
        pool,
        "UPDATE events SET data = jsonb_set(data, '{reason}', '\"无需理由\"')"
        " WHERE stream_id = $1 AND version = 3",
        case_id,
    )

    result = await run_cli(database_url, "audit", case_id)
    assert result.returncode == 2, result.stderr
    assert re.search(
        r"hash chain\s+BROKEN at version 3: stored fields do not match the event's hash",
        result.stdout,
    )
    assert len(timeline_rows(result.stdout)) == 3


async def test_audit_of_an_unknown_case_exits_1_with_a_message_on_stderr(
    database_url: str,
) -> None:
    result = await run_cli(database_url, "audit", "00000000-0000-4000-8000-000000000000")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "no complaint 00000000-0000-4000-8000-000000000000" in result.stderr


# --- demo ----------------------------------------------------------------------------------


def test_demo_stories_are_the_same_for_a_seed_and_dated_in_order_up_to_today() -> None:
    stories = demo_stories(7, 120, TODAY, {TODAY.year - 1, TODAY.year})

    assert stories == demo_stories(7, 120, TODAY, {TODAY.year - 1, TODAY.year})
    assert stories != demo_stories(8, 120, TODAY, {TODAY.year - 1, TODAY.year})
    for story in stories:
        dates = [story.received_on, *(step.on for step in story.steps)]
        assert dates == sorted(dates)
        assert dates[-1] <= TODAY
    assert [story.received_on for story in stories] == sorted(s.received_on for s in stories)


def test_demo_stories_exercise_internal_control() -> None:
    """Issue 14: approvals before decisions beyond the handler's limit, attributions with
    rectification actions (some closed, some left open past their due date), follow-ups."""
    stories = demo_stories(DEFAULT_SEED, DEFAULT_CASES, TODAY, {TODAY.year - 1, TODAY.year})
    commands = [step.command for story in stories for step in story.steps]
    kinds = Counter(type(command).__name__ for command in commands)
    assert kinds["ApproveRedress"] and kinds["FollowUp"] and kinds["Rectify"]
    attributions = [command for command in commands if isinstance(command, Attribute)]
    closed = {
        (number, step.command.action_id)
        for number, story in enumerate(stories)
        for step in story.steps
        if isinstance(step.command, Rectify)
    }
    assert attributions
    past_due_and_open = [
        action
        for number, story in enumerate(stories)
        for step in story.steps
        if isinstance(step.command, Attribute)
        for action in step.command.actions
        if action.due_on < TODAY and (number, action.action_id) not in closed
    ]
    assert past_due_and_open
    for story in stories:
        decisions = [step for step in story.steps if isinstance(step.command, DecideComplaint)]
        for decision in decisions:
            if decision.command.redress_fen > DEFAULT_POLICY.redress_limits_fen.staff:
                before = story.steps[: story.steps.index(decision)]
                assert isinstance(before[-1].command, ApproveRedress)
                assert before[-1].command.up_to_fen >= decision.command.redress_fen


async def test_demo_seeds_working_tokens_and_cases_whose_chains_verify_and_runs_again(
    database_url: str, pool: asyncpg.Pool
) -> None:
    first = await run_cli(database_url, "demo", "--cases", "40")

    assert first.returncode == 0, first.stderr
    first_tokens = TOKEN.findall(first.stdout)
    principals = [await principal_for_token(pool, token) for token in first_tokens]
    assert all(principal is not None for principal in principals)
    roles = Counter(principal.role for principal in principals if principal)
    assert roles == {"staff": 2, "supervisor": 1, "regulator": 1, "admin": 1}
    assert "Cases added: 40" in first.stdout

    statuses = await pool.fetch("SELECT status, count(*) FROM case_view GROUP BY status")
    assert sum(row["count"] for row in statuses) == 40
    assert len(statuses) >= 4
    last_business_date = await pool.fetchval("SELECT max(last_business_date) FROM case_view")
    assert last_business_date <= shanghai_today()
    store = PostgresEventStore(pool)
    for row in await pool.fetch("SELECT case_id FROM case_view"):
        assert verify_chain(await store.read_stream(row["case_id"])).intact

    second = await run_cli(database_url, "demo", "--cases", "40")

    assert second.returncode == 0, second.stderr
    assert set(TOKEN.findall(second.stdout)).isdisjoint(first_tokens)
    assert await pool.fetchval("SELECT count(*) FROM institutions") == 10
    runs = await cases_by_run(pool, 40)
    assert len(runs) == 2
    assert runs[0] == runs[1]  # the same seed tells the same stories again
    registration_numbers = await pool.fetchval(
        "SELECT count(DISTINCT registration_no) FROM case_view"
    )
    assert registration_numbers == 80


async def cases_by_run(pool: asyncpg.Pool, per_run: int) -> list[Counter]:
    """What each run's cases look like, the runs told apart by the order of their receipts."""
    rows = await pool.fetch(
        """
        SELECT view.respondent_institution, view.received_on, view.status, view.version
        FROM events JOIN case_view AS view ON view.case_id = events.stream_id
        WHERE events.version = 1
        ORDER BY events.position
        """
    )
    keys = [tuple(row.values()) for row in rows]
    return [Counter(keys[start : start + per_run]) for start in range(0, len(keys), per_run)]
