"""`PUT` and `GET /v1/institutions/{code}/policy` over HTTP (API.md "Institution policy"), and a
command judged under the policy in force on its day, on a real database."""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from api_support import TODAY, complaint
from complaintcore.auth.tokens import create_token
from complaintcore.reference.institutions import InstitutionDirectory

TOMORROW = TODAY + timedelta(days=1)


@dataclass(frozen=True)
class Tokens:
    admin: str
    regulator: str
    branch_a_staff: str
    branch_b_staff: str


@pytest.fixture
async def tokens(pool: asyncpg.Pool) -> Tokens:
    """HO → BR-A (with SUB-A1) and BR-B, and a token for each kind of caller."""
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    await directory.put("BR-B", "北京分行", "branch", "HO")
    await directory.put("SUB-A1", "浦东支行", "sub_branch", "BR-A")
    return Tokens(
        admin=await create_token(pool, "admin-1", "admin", None),
        regulator=await create_token(pool, "reg-1", "regulator", None),
        branch_a_staff=await create_token(pool, "staff-a1", "staff", "BR-A"),
        branch_b_staff=await create_token(pool, "staff-b1", "staff", "BR-B"),
    )


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def put_policy(client: httpx.AsyncClient, tokens: Tokens, code: str, **body: object) -> dict:
    response = await client.put(
        f"/v1/institutions/{code}/policy", json=body, headers=auth(tokens.admin)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def policy_on(
    client: httpx.AsyncClient, token: str, code: str, on: object = None
) -> httpx.Response:
    params = {"on": str(on)} if on is not None else {}
    return await client.get(f"/v1/institutions/{code}/policy", params=params, headers=auth(token))


def problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    return response.json()


async def test_a_put_version_is_listed_and_read_back_with_its_source(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    history = await put_policy(
        client,
        tokens,
        "BR-A",
        effective_from=str(TODAY),
        due_soon_days=5,
        redress_limits_fen={"staff": 200_000},
    )

    (version,) = history["versions"]
    assert version["version"] == "BR-A/v1"
    assert version["recorded_by"] == "admin-1"
    assert version["roll_past_holidays"] is None
    assert version["redress_limits_fen"] == {"staff": 200_000, "supervisor": None}
    in_force = (await policy_on(client, tokens.branch_a_staff, "BR-A")).json()
    assert in_force["on"] == str(TODAY)
    assert in_force["version"] == "BR-A/v1"
    assert in_force["due_soon_days"] == {"value": 5, "source": "BR-A", "version": "BR-A/v1"}
    assert in_force["redress_limits_fen"]["staff"]["value"] == 200_000
    assert in_force["redress_limits_fen"]["supervisor"] == {
        "value": 5_000_000,
        "source": "default",
        "version": None,
    }
    assert in_force["roll_past_holidays"]["source"] == "default"


async def test_a_sub_branch_inherits_its_parents_values(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await put_policy(client, tokens, "HO", effective_from=str(TODAY), retention_years=10)
    await put_policy(client, tokens, "BR-A", effective_from=str(TODAY), due_soon_days=6)

    in_force = (await policy_on(client, tokens.regulator, "SUB-A1")).json()

    assert in_force["retention_years"] == {"value": 10, "source": "HO", "version": "HO/v1"}
    assert in_force["due_soon_days"] == {"value": 6, "source": "BR-A", "version": "BR-A/v1"}
    assert in_force["version"] == "HO/v1,BR-A/v1"


async def test_a_version_effective_tomorrow_does_not_apply_today(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    await put_policy(client, tokens, "BR-A", effective_from=str(TOMORROW), due_soon_days=9)

    today = (await policy_on(client, tokens.admin, "BR-A", TODAY)).json()
    tomorrow = (await policy_on(client, tokens.admin, "BR-A", TOMORROW)).json()

    assert today["due_soon_days"]["value"] == 3
    assert today["version"] == "default"
    assert tomorrow["due_soon_days"] == {"value": 9, "source": "BR-A", "version": "BR-A/v1"}


async def test_a_past_effective_date_is_refused(client: httpx.AsyncClient, tokens: Tokens) -> None:
    response = await client.put(
        "/v1/institutions/BR-A/policy",
        json={"effective_from": str(TODAY - timedelta(days=1)), "due_soon_days": 5},
        headers=auth(tokens.admin),
    )

    body = problem(response, 422, "effective_from_in_past")
    assert body["errors"][0]["field"] == "effective_from"
    assert (await policy_on(client, tokens.admin, "BR-A")).json()["version"] == "default"


@pytest.mark.parametrize(
    "body",
    [
        {"due_soon_days": 5},
        {"effective_from": "tomorrow"},
        {"effective_from": str(TOMORROW), "due_soon_days": -1},
        {"effective_from": str(TOMORROW), "retention_years": 0},
        {"effective_from": str(TOMORROW), "roll_past_holidays": 1},
        {"effective_from": str(TOMORROW), "redress_limits_fen": {"staff": -5}},
        {"effective_from": str(TOMORROW), "redress_limits_fen": {"clerk": 5}},
        {"effective_from": str(TOMORROW), "taxonomy": {}},
    ],
)
async def test_bad_input_is_a_422_problem(
    client: httpx.AsyncClient, tokens: Tokens, body: dict
) -> None:
    response = await client.put(
        "/v1/institutions/BR-A/policy", json=body, headers=auth(tokens.admin)
    )

    problem(response, 422, "validation_failed")


async def test_only_an_admin_puts_a_policy(client: httpx.AsyncClient, tokens: Tokens) -> None:
    for token in (tokens.branch_a_staff, tokens.regulator):
        response = await client.put(
            "/v1/institutions/BR-A/policy",
            json={"effective_from": str(TOMORROW), "due_soon_days": 5},
            headers=auth(token),
        )
        problem(response, 403, "forbidden")


async def test_an_unknown_or_unseen_node_is_404(client: httpx.AsyncClient, tokens: Tokens) -> None:
    put = await client.put(
        "/v1/institutions/NOWHERE/policy",
        json={"effective_from": str(TOMORROW)},
        headers=auth(tokens.admin),
    )
    problem(put, 404, "not_found")
    problem(await policy_on(client, tokens.admin, "NOWHERE"), 404, "not_found")
    problem(await policy_on(client, tokens.branch_b_staff, "BR-A"), 404, "not_found")
    problem(await policy_on(client, tokens.branch_a_staff, "HO"), 404, "not_found")
    problem(await policy_on(client, tokens.admin, "BR-A", "2026-02-30"), 422, "validation_failed")


async def test_a_change_effective_tomorrow_leaves_today_s_judgement_as_it_was(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """Due soon from 30 days left, tomorrow: a case received today (15 days left) still reads
    on track, and its receipt names the default policy; a change in force today applies at once
    to the reading, and the next command names it."""
    staff = auth(tokens.branch_a_staff)
    await put_policy(client, tokens, "BR-A", effective_from=str(TOMORROW), due_soon_days=30)
    created = await client.post(
        "/v1/complaints", json=complaint("BR-A", received_days_ago=0), headers=staff
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert (case["deadline"]["status"], case["deadline"]["days_left"]) == ("on_track", 15)

    await put_policy(client, tokens, "HO", effective_from=str(TODAY), due_soon_days=20)
    read = (await client.get(f"/v1/complaints/{case['id']}", headers=staff)).json()
    assigned = await client.post(
        f"/v1/complaints/{case['id']}/assign", json={"handler_id": "staff-a1"}, headers=staff
    )

    assert read["deadline"]["status"] == "due_soon"
    assert assigned.status_code == 200, assigned.text
    events = (await client.get(f"/v1/complaints/{case['id']}/events", headers=staff)).json()
    assert [e["metadata"]["policy_version"] for e in events] == ["default", "HO/v1"]
    audit = (await client.get(f"/v1/complaints/{case['id']}/audit", headers=staff)).json()
    assert [(p["version"], p["policy_version"]) for p in audit["policy_versions"]] == [
        (1, "default"),
        (2, "HO/v1"),
    ]


async def test_the_case_list_reads_each_case_s_clock_under_its_own_institution(
    client: httpx.AsyncClient, tokens: Tokens, pool: asyncpg.Pool
) -> None:
    """Two cases due in 15 days: BR-A warns from 20 days left (its own policy), BR-B from the
    default 3; the list and the deadlines filter and read each under its institution's."""
    await put_policy(client, tokens, "BR-A", effective_from=str(TODAY), due_soon_days=20)
    ids = {}
    for code, token in (("BR-A", tokens.branch_a_staff), ("BR-B", tokens.branch_b_staff)):
        created = await client.post(
            "/v1/complaints", json=complaint(code, received_days_ago=0), headers=auth(token)
        )
        assert created.status_code == 201, created.text
        ids[code] = created.json()["id"]
    regulator = auth(tokens.regulator)

    for route in ("/v1/complaints", "/v1/deadlines"):
        listed = (await client.get(route, headers=regulator)).json()["items"]
        clocks = {item["id"]: item["deadline"]["status"] for item in listed}
        assert clocks == {ids["BR-A"]: "due_soon", ids["BR-B"]: "on_track"}, route
        due_soon = (await client.get(route, params={"clock": "due_soon"}, headers=regulator)).json()
        assert [item["id"] for item in due_soon["items"]] == [ids["BR-A"]], route
        on_track = (await client.get(route, params={"clock": "on_track"}, headers=regulator)).json()
        assert [item["id"] for item in on_track["items"]] == [ids["BR-B"]], route


async def _alerts_of(pool: asyncpg.Pool, case_id: str) -> list[str]:
    rows = await pool.fetch("SELECT event FROM alerts WHERE case_id = $1 ORDER BY id", case_id)
    return [row["event"] for row in rows]


async def _alerts_once_raised(pool: asyncpg.Pool, case_id: str, event: str) -> list[str]:
    for _ in range(100):  # 10 s at most
        raised = await _alerts_of(pool, case_id)
        if event in raised:
            break
        await asyncio.sleep(0.1)
    return raised


async def test_a_policy_in_force_today_that_makes_a_case_due_soon_alerts_within_seconds(
    client: httpx.AsyncClient, tokens: Tokens, pool: asyncpg.Pool
) -> None:
    """DOMAIN.md "Alerts and escalation": clock alerts within seconds of the condition holding.
    A version effective today raising `due_soon_days` makes a case due soon at once: the sweep
    judged only once a day left it unannounced until the next (never, had it fallen due)."""
    staff = auth(tokens.branch_a_staff)
    created = await client.post(
        "/v1/complaints", json=complaint(received_days_ago=10), headers=staff
    )
    assert created.status_code == 201, created.text
    case = created.json()
    assert (case["deadline"]["status"], case["deadline"]["days_left"]) == ("on_track", 5)
    assert await _alerts_once_raised(pool, case["id"], "case.received") == ["case.received"]

    await put_policy(client, tokens, "BR-A", effective_from=str(TODAY), due_soon_days=7)

    assert await _alerts_once_raised(pool, case["id"], "case.due_soon") == [
        "case.received",
        "case.due_soon",
    ]


def _items(*codes: str) -> list[dict[str, str]]:
    return [{"code": code, "label_zh": f"{code}（中文）", "label_en": code} for code in codes]


INSURER = {"business": _items("surrender", "other"), "causes": _items("marketing", "other")}


async def _receive(client: httpx.AsyncClient, token: str, code: str, **category: str) -> Any:
    body = complaint(code, received_days_ago=0)
    body["category"] = category
    return await client.post("/v1/complaints", json=body, headers=auth(token))


async def test_a_taxonomy_set_by_a_node_is_what_its_subtree_files_under(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    """DOMAIN.md "Taxonomy": configurable reference data, per institution; each item a stable
    code and a Chinese and an English label."""
    history = await put_policy(client, tokens, "BR-A", effective_from=str(TODAY), taxonomy=INSURER)
    assert history["versions"][-1]["taxonomy"] == INSURER
    # sent again (its answer lost), the same PUT is the same version (RFC 9110 9.2.2)
    again = await put_policy(client, tokens, "BR-A", effective_from=str(TODAY), taxonomy=INSURER)
    assert again == history

    in_force = (await policy_on(client, tokens.branch_a_staff, "SUB-A1")).json()["taxonomy"]
    assert (in_force["value"], in_force["source"], in_force["version"]) == (
        INSURER,
        "BR-A",
        "BR-A/v1",
    )
    elsewhere = (await policy_on(client, tokens.branch_b_staff, "BR-B")).json()["taxonomy"]
    assert elsewhere["source"] == "default"
    assert {"code": "treasury", "label_zh": "国库", "label_en": "treasury"} in elsewhere["value"][
        "business"
    ]

    filed = await _receive(
        client, tokens.branch_a_staff, "BR-A", business="surrender", reason="marketing"
    )
    assert filed.status_code == 201, filed.text
    refused = await _receive(
        client, tokens.branch_a_staff, "BR-A", business="treasury", reason="other"
    )
    problem(refused, 422, "validation_failed")
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("category.business", "unknown_business")
    ]
    at_b = await _receive(
        client, tokens.branch_b_staff, "BR-B", business="treasury", reason="other"
    )
    assert at_b.status_code == 201, at_b.text


@pytest.mark.parametrize(
    ("taxonomy", "field", "code"),
    [
        (
            {"business": _items("a", "a"), "causes": _items("x")},
            "taxonomy.business",
            "duplicate_code",
        ),
        ({"business": [], "causes": _items("x")}, "taxonomy.business", "too_short"),
        (
            {"business": _items("Bad-Code"), "causes": _items("x")},
            "taxonomy.business.0.code",
            "string_pattern_mismatch",
        ),
        ({"business": _items("a")}, "taxonomy.causes", "missing"),
    ],
)
async def test_a_malformed_taxonomy_is_422_and_records_nothing(
    client: httpx.AsyncClient, tokens: Tokens, taxonomy: dict, field: str, code: str
) -> None:
    response = await client.put(
        "/v1/institutions/BR-A/policy",
        json={"effective_from": str(TODAY), "taxonomy": taxonomy},
        headers=auth(tokens.admin),
    )
    assert response.status_code == 422, response.text
    assert (field, code) in {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert (await policy_on(client, tokens.admin, "BR-A")).json()["taxonomy"]["source"] == "default"
