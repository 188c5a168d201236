"""`GET /v1/institutions/{code}/statistics`, its CSV data return and `GET /v1/projections`
through the app (real database, the app's own background runner keeping the statistics)."""

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from api_support import app_client
from complaintcore.application.business_day import shanghai_today
from complaintcore.auth.tokens import create_token
from complaintcore.domain.commands import Outcome
from complaintcore.infra.database import create_pool
from projection_support import CaseDesk, scratch_database

PROBLEM_JSON = "application/problem+json"
H1 = {"from": "2026-01-01", "to": "2026-06-30"}


async def a_few_cases(desk: CaseDesk) -> None:
    """BR-A: two received in January (one decided on time), SUB-A1: one received in April and
    decided late in May; BR-B: one withdrawn in February."""
    await desk.plant_tree()
    first = await desk.receive("BR-A", date(2026, 1, 5))
    await desk.assign(first, date(2026, 1, 5))
    await desk.decide(first, date(2026, 1, 12), outcome=Outcome.UPHELD, redress_fen=800)
    await desk.receive("BR-A", date(2026, 1, 20), channel="online")
    late = await desk.receive("SUB-A1", date(2026, 4, 1))
    await desk.assign(late, date(2026, 4, 1))
    await desk.decide(late, date(2026, 5, 1), outcome=Outcome.REJECTED)
    withdrawn = await desk.receive("BR-B", date(2026, 2, 2))
    await desk.withdraw(withdrawn, date(2026, 2, 3))


@pytest.fixture(scope="module")
async def api(server_url: str, template_url: str) -> AsyncIterator[dict[str, Any]]:
    async with scratch_database(server_url) as database_url:
        pool = await create_pool(database_url, min_size=1, max_size=4)
        try:
            await a_few_cases(CaseDesk(pool))
            tokens = {
                "supervisor_ho": await create_token(pool, "sup-ho", "supervisor", "HO"),
                "supervisor_b": await create_token(pool, "sup-b", "supervisor", "BR-B"),
                "admin": await create_token(pool, "adm-1", "admin", None),
                "staff_a": await create_token(pool, "staff-a", "staff", "BR-A"),
                "staff_b": await create_token(pool, "staff-b", "staff", "BR-B"),
                "regulator": await create_token(pool, "reg-1", "regulator", None),
            }
        finally:
            await pool.close()
        async with app_client(database_url) as client:
            await _caught_up(client, tokens["regulator"])
            yield {"client": client, "tokens": tokens}


def get(api: dict[str, Any], who: str, path: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {api['tokens'][who]}"}
    return api["client"].get(path, params=params, headers=headers)


async def test_the_head_office_sees_its_whole_tree_by_quarter(api: dict[str, Any]) -> None:
    response = await get(
        api, "supervisor_ho", "/v1/institutions/HO/statistics", **H1, period="quarter"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["institution"], body["rollup"], body["period"]) == ("HO", True, "quarter")
    assert body["institutions"] == ["HO", "BR-A", "BR-B", "SUB-A1"]
    assert (body["from"], body["to"], body["as_of"]) == (
        "2026-01-01",
        "2026-06-30",
        shanghai_today().isoformat(),
    )
    assert body["checkpoint"] > 0
    q1, q2 = body["periods"]
    assert (q1["period"], q1["from"], q1["to"]) == ("2026-Q1", "2026-01-01", "2026-03-31")
    assert (q1["figures"]["received"], q1["figures"]["decided_on_time"]) == (3, 1)
    assert (q1["figures"]["withdrawn"], q1["figures"]["redress_total_fen"]) == (1, 800)
    assert (q2["figures"]["received"], q2["figures"]["decided_late"]) == (1, 1)
    assert q2["figures"]["handling_days_p90"] == 30
    total = body["total"]
    assert (total["period"], total["figures"]["received"], total["figures"]["decided"]) == (
        "total",
        4,
        2,
    )
    assert total["figures"]["handling_days_mean"] == 18.5  # (7 + 30) / 2
    assert {e["key"]: e["figures"]["received"] for e in total["by_channel"]} == {
        "online": 1,
        "phone": 3,
    }
    assert {e["key"] for e in total["by_outcome"]} == {"upheld", "rejected", None}
    assert total["by_business"][0]["key"] == "credit_card"
    assert total["by_reason"][0]["key"] == "pricing_and_fees"


async def test_without_rollup_a_node_counts_only_its_own_cases(api: dict[str, Any]) -> None:
    path = "/v1/institutions/BR-A/statistics"
    alone = (await get(api, "staff_a", path, **H1, rollup="false")).json()
    rolled = (await get(api, "staff_a", path, **H1)).json()
    assert (alone["institutions"], rolled["institutions"]) == (["BR-A"], ["BR-A", "SUB-A1"])
    assert (alone["total"]["figures"]["received"], rolled["total"]["figures"]["received"]) == (
        2,
        3,
    )
    assert [p["period"] for p in alone["periods"]] == ["2026-01-01/2026-06-30"]


@pytest.mark.parametrize(
    ("who", "code", "status"),
    [
        ("staff_a", "BR-A", 200),
        ("staff_a", "SUB-A1", 200),
        ("staff_a", "HO", 404),  # above the caller's node
        ("staff_a", "BR-B", 404),  # a sibling branch
        ("staff_b", "SUB-A1", 404),
        ("regulator", "BR-B", 200),
        ("regulator", "NO-SUCH", 404),
    ],
)
async def test_only_the_callers_subtree_is_visible(
    api: dict[str, Any], who: str, code: str, status: int
) -> None:
    for suffix in ("statistics", "statistics.csv"):
        response = await get(api, who, f"/v1/institutions/{code}/{suffix}", **H1)
        assert response.status_code == status, response.text
        if status == 404:
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["code"] == "not_found"


async def test_without_a_token_it_is_401(api: dict[str, Any]) -> None:
    for path in ("/v1/institutions/HO/statistics", "/v1/projections"):
        response = await api["client"].get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"from": "2026-06-01", "to": "2026-01-01"}, "from", "after_to"),
        (
            {"from": "1990-01-01", "to": "2100-12-31", "period": "month"},
            "period",
            "too_many_periods",
        ),
        ({**H1, "period": "week"}, "period", "literal_error"),
        ({"from": "2026-02-30"}, "from", "date_from_datetime_parsing"),
        ({"to": "2200-01-01"}, "to", "less_than_equal"),
        ({**H1, "rollup": "maybe"}, "rollup", "bool_parsing"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    api: dict[str, Any], params: dict[str, str], field: str, code: str
) -> None:
    response = await get(api, "regulator", "/v1/institutions/HO/statistics", **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    errors = {(error["field"], error["code"]) for error in response.json()["errors"]}
    assert (field, code) in errors


@pytest.mark.parametrize(
    ("who", "path", "parameter"),
    [
        ("supervisor_ho", "/v1/institutions/HO/statistics", "from"),
        ("supervisor_ho", "/v1/institutions/HO/statistics.csv", "to"),
        ("supervisor_ho", "/v1/institutions/HO/staff-statistics", "from"),
        ("supervisor_ho", "/v1/complaints", "received_from"),
        ("admin", "/v1/personal-data-access", "to"),
    ],
)
@pytest.mark.parametrize(
    "written", ["1767225600", "1767196800.0", "2026-01-01T00:00:00Z", "2026-01-01T00:00+08:00"]
)
async def test_a_date_in_a_query_is_yyyy_mm_dd_alone(
    api: dict[str, Any], who: str, path: str, parameter: str, written: str
) -> None:
    """API.md "Conventions": dates are YYYY-MM-DD business dates. A Unix time or a timestamp was
    taken as a UTC date (1767225600: 2026-01-01, 08:00 in Shanghai, while Shanghai's midnight
    was refused)."""
    response = await get(api, who, path, **{parameter: written})
    assert response.status_code == 422, response.text
    errors = {(error["field"], error["code"]) for error in response.json()["errors"]}
    assert errors == {(parameter, "date_format")}


async def test_the_data_return_is_a_csv_row_per_institution_and_period(
    api: dict[str, Any],
) -> None:
    response = await get(
        api, "regulator", "/v1/institutions/HO/statistics.csv", **H1, period="half_year"
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        'filename="statistics-HO-2026-01-01-2026-06-30.csv"'
        in (response.headers["content-disposition"])
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["institution"], r["period"], r["received"]) for r in rows] == [
        ("HO", "2026-H1", "4"),
        ("BR-A", "2026-H1", "3"),
        ("BR-B", "2026-H1", "1"),
        ("SUB-A1", "2026-H1", "1"),
    ]
    assert (rows[0]["institution_name"], rows[0]["handling_days_mean"]) == ("总行", "18.50")


async def test_the_lag_route_shows_the_runner_of_this_process(api: dict[str, Any]) -> None:
    response = await get(api, "regulator", "/v1/projections")
    assert response.status_code == 200, response.text
    statistics, alerts = response.json()["projections"]
    assert (statistics["name"], alerts["name"]) == ("statistics", "alerts")
    assert alerts["lag_events"] == 0 and alerts["runner"] == "here"
    assert statistics["lag_events"] == 0
    assert statistics["checkpoint"] == statistics["head"] > 0
    assert statistics["runner"] == "here"


async def _caught_up(client: httpx.AsyncClient, token: str) -> None:
    for _ in range(600):
        response = await client.get("/v1/projections", headers={"Authorization": f"Bearer {token}"})
        if all(
            status["lag_events"] == 0 and status["runner"] == "here"
            for status in response.json()["projections"]
        ):
            return
        await asyncio.sleep(0.05)
    pytest.fail("the app's runner did not catch up")


@pytest.mark.parametrize(
    ("who", "code", "status"),
    [
        ("supervisor_ho", "HO", 200),
        ("supervisor_ho", "BR-B", 200),
        ("supervisor_b", "BR-B", 200),
        ("admin", "HO", 200),
        ("supervisor_b", "HO", 404),  # outside the supervisor's subtree
        ("supervisor_b", "BR-A", 404),
        ("staff_a", "BR-A", 403),  # staff, even of the subtree
        ("regulator", "HO", 403),
    ],
)
async def test_staff_figures_are_for_supervisors_of_the_subtree_and_admins(
    api: dict[str, Any], who: str, code: str, status: int
) -> None:
    response = await get(api, who, f"/v1/institutions/{code}/staff-statistics", **H1)
    assert response.status_code == status, response.text
    if status == 200:
        body = response.json()
        assert body["institution"] == code
        assert set(body) >= {"handlers", "respondent_staff", "checkpoint", "from", "to"}
        for handler in body["handlers"]:
            assert set(handler) == {
                "staff_id",
                "decided",
                "on_time",
                "review_changed",
                "satisfaction",
            }
