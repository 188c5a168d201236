"""Authentication, institutions and calendars through the HTTP API (API.md), on a real database."""

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from complaintcore.auth.tokens import create_token, revoke_token
from complaintcore.domain.calendar import seeded_calendar
from complaintcore.reference.institutions import InstitutionDirectory

PROBLEM_JSON = "application/problem+json"
UNSEEDED_YEAR = max(seeded_calendar().years) + 1
SEEDED_YEAR = 2025
SATURDAY = 5


@dataclass(frozen=True)
class Tokens:
    admin: str
    regulator: str
    head_office_supervisor: str
    branch_a_staff: str
    branch_b_staff: str


@pytest.fixture
async def tokens(pool: asyncpg.Pool) -> Tokens:
    """ABC head office → branches ABC-A (with sub-branch ABC-A-1) and ABC-B, and a token each."""
    directory = InstitutionDirectory(pool)
    await directory.put("ABC", "中国农业银行", "head_office")
    await directory.put("ABC-A", "甲分行", "branch", "ABC")
    await directory.put("ABC-B", "乙分行", "branch", "ABC")
    await directory.put("ABC-A-1", "甲分行一支行", "sub_branch", "ABC-A")
    return Tokens(
        admin=await create_token(pool, "admin-1", "admin", None),
        regulator=await create_token(pool, "nfra-1", "regulator", None),
        head_office_supervisor=await create_token(pool, "sup-1", "supervisor", "ABC"),
        branch_a_staff=await create_token(pool, "staff-a", "staff", "ABC-A"),
        branch_b_staff=await create_token(pool, "staff-b", "staff", "ABC-B"),
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(f"/{code}")
    assert body["title"]
    assert body["detail"]
    return body


def bad_fields(response: httpx.Response) -> set[tuple[str, str]]:
    body = assert_problem(response, 422, "validation_failed")
    return {(error["field"], error["code"]) for error in body["errors"]}


# --- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer cc_not-a-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "cc_no-scheme"},
    ],
    ids=["no header", "unknown token", "empty token", "basic scheme", "no scheme"],
)
async def test_a_request_without_a_good_token_is_401_problem_json(
    client: httpx.AsyncClient, tokens: Tokens, headers: dict[str, str]
) -> None:
    response = await client.get("/v1/institutions/ABC", headers=headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_revoked_token_is_401(
    client: httpx.AsyncClient, tokens: Tokens, pool: asyncpg.Pool
) -> None:
    await revoke_token(pool, tokens.regulator)
    response = await client.get("/v1/institutions/ABC", headers=bearer(tokens.regulator))
    assert_problem(response, 401, "unauthorized")


async def test_authentication_comes_before_validation(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/institutions/bad code", json={"kind": "nonsense"})
    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/institutions/ABC-C", {"name": "丙分行", "kind": "branch", "parent": "ABC"}),
        (f"/v1/calendars/{UNSEEDED_YEAR}", {"holidays": [], "adjusted_working_days": []}),
    ],
)
@pytest.mark.parametrize("who", ["branch_a_staff", "head_office_supervisor", "regulator"])
async def test_admin_routes_are_403_for_other_roles(
    client: httpx.AsyncClient, tokens: Tokens, path: str, body: dict[str, Any], who: str
) -> None:
    response = await client.put(path, json=body, headers=bearer(getattr(tokens, who)))
    assert_problem(response, 403, "forbidden")


# --- institutions --------------------------------------------------------------------------


async def test_staff_see_their_subtree_only_and_other_nodes_look_absent(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    staff_a = bearer(tokens.branch_a_staff)
    assert (await client.get("/v1/institutions/ABC-A", headers=staff_a)).status_code == 200
    assert (await client.get("/v1/institutions/ABC-A-1", headers=staff_a)).status_code == 200
    other_branch = await client.get("/v1/institutions/ABC-B", headers=staff_a)
    superior = await client.get("/v1/institutions/ABC", headers=staff_a)
    nonexistent = await client.get("/v1/institutions/ABC-Z", headers=staff_a)
    bodies = [assert_problem(r, 404, "not_found") for r in (other_branch, superior, nonexistent)]
    assert bodies[0] == bodies[1] == bodies[2]
    staff_b = bearer(tokens.branch_b_staff)
    assert_problem(await client.get("/v1/institutions/ABC-A", headers=staff_b), 404, "not_found")


@pytest.mark.parametrize("who", ["regulator", "admin", "head_office_supervisor"])
async def test_regulators_admins_and_head_office_staff_see_every_branch(
    client: httpx.AsyncClient, tokens: Tokens, who: str
) -> None:
    for code in ("ABC", "ABC-A", "ABC-B", "ABC-A-1"):
        response = await client.get(
            f"/v1/institutions/{code}", headers=bearer(getattr(tokens, who))
        )
        assert response.status_code == 200, code


async def test_an_institution_put_is_created_then_updated_and_read_back(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    admin = bearer(tokens.admin)
    body = {"name": " 丙分行 ", "kind": "branch", "parent": "ABC"}
    created = await client.put("/v1/institutions/ABC-C", json=body, headers=admin)
    assert created.status_code == 201
    assert created.headers["location"] == "/v1/institutions/ABC-C"
    assert created.json() == {
        "code": "ABC-C",
        "name": "丙分行",
        "kind": "branch",
        "parent": "ABC",
        "children": [],
    }
    updated = await client.put(
        "/v1/institutions/ABC-C", json={**body, "name": "丙省分行"}, headers=admin
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "丙省分行"
    head_office = await client.get("/v1/institutions/ABC", headers=bearer(tokens.regulator))
    assert head_office.json() == {
        "code": "ABC",
        "name": "中国农业银行",
        "kind": "head_office",
        "parent": None,
        "children": ["ABC-A", "ABC-B", "ABC-C"],
    }


@pytest.mark.parametrize(
    ("code", "body", "rule"),
    [
        ("ABC-C", {"name": "丙", "kind": "branch", "parent": "XYZ"}, "unknown_parent"),
        ("ABC-A", {"name": "甲", "kind": "branch", "parent": "ABC-A"}, "institution_cycle"),
        ("ABC", {"name": "农行", "kind": "branch", "parent": "ABC-A"}, "institution_cycle"),
        ("ABC-C", {"name": "丙", "kind": "head_office", "parent": "ABC"}, "invalid_hierarchy"),
        ("ABC-C", {"name": "丙", "kind": "branch"}, "invalid_hierarchy"),
        ("ABC-C", {"name": "丙", "kind": "sub_branch", "parent": "ABC-A-1"}, "invalid_hierarchy"),
    ],
)
async def test_a_put_that_would_break_the_tree_is_409_with_the_rule_code(
    client: httpx.AsyncClient, tokens: Tokens, code: str, body: dict[str, Any], rule: str
) -> None:
    response = await client.put(f"/v1/institutions/{code}", json=body, headers=bearer(tokens.admin))
    assert_problem(response, 409, rule)


async def test_a_bad_institution_body_is_422_listing_each_field(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.put(
        "/v1/institutions/ABC-C",
        json={"name": "  ", "kind": "bank", "parent": "no spaces allowed", "colour": "red"},
        headers=bearer(tokens.admin),
    )
    assert {field for field, _ in bad_fields(response)} == {"name", "kind", "parent", "colour"}


@pytest.mark.parametrize("name", ["\x1c", " \x1d ", "\x1f"])
async def test_a_name_of_separators_alone_is_422_not_500(
    client: httpx.AsyncClient, tokens: Tokens, name: str
) -> None:
    """U+001C to U+001F are spaces to Python's str.strip: such a name is blank."""
    response = await client.put(
        "/v1/institutions/ABC-C",
        json={"name": name, "kind": "branch", "parent": "ABC"},
        headers=bearer(tokens.admin),
    )
    assert {field for field, _ in bad_fields(response)} == {"name"}


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("A" * 65, "string_too_long"),
        ("bad.code", "string_pattern_mismatch"),
        ("中文", "string_pattern_mismatch"),
        ("-leading-dash", "string_pattern_mismatch"),
        ("a%20b", "string_pattern_mismatch"),
    ],
    ids=["too long", "dot", "not ascii", "leading dash", "space"],
)
async def test_a_malformed_code_in_the_path_is_422(
    client: httpx.AsyncClient, tokens: Tokens, code: str, error: str
) -> None:
    response = await client.get(f"/v1/institutions/{code}", headers=bearer(tokens.admin))
    assert bad_fields(response) == {("code", error)}


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[]",
        b'"text"',
        b"null",
        '{"name": "\udcff"}'.encode("utf-8", "surrogatepass"),
    ],
    ids=["broken json", "a list", "a string", "null", "bad utf-8"],
)
async def test_a_body_that_is_not_an_object_is_422_never_500(
    client: httpx.AsyncClient, tokens: Tokens, content: bytes
) -> None:
    response = await client.put(
        "/v1/institutions/ABC-C",
        content=content,
        headers={**bearer(tokens.admin), "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "validation_failed")


# --- calendars -----------------------------------------------------------------------------


async def test_a_calendar_year_put_is_read_back_as_stored(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    year = UNSEEDED_YEAR
    body = {
        "holidays": [f"{year}-10-02", f"{year}-01-01", f"{year}-10-01"],
        "adjusted_working_days": [first_saturday_of_february(year)],
    }
    created = await client.put(f"/v1/calendars/{year}", json=body, headers=bearer(tokens.admin))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/calendars/{year}"
    read = await client.get(f"/v1/calendars/{year}", headers=bearer(tokens.branch_a_staff))
    assert read.status_code == 200
    assert read.json() == {
        "year": year,
        "holidays": sorted(body["holidays"]),
        "adjusted_working_days": body["adjusted_working_days"],
        "source": "stored",
    }
    replaced = await client.put(f"/v1/calendars/{year}", json=body, headers=bearer(tokens.admin))
    assert replaced.status_code == 200


async def test_a_seeded_year_is_served_until_a_stored_one_replaces_it(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    seeded = await client.get(f"/v1/calendars/{SEEDED_YEAR}", headers=bearer(tokens.regulator))
    assert seeded.status_code == 200
    assert seeded.json()["source"] == "seeded"
    assert "2025-10-01" in seeded.json()["holidays"]
    replaced = await client.put(
        f"/v1/calendars/{SEEDED_YEAR}",
        json={"holidays": ["2025-10-01"], "adjusted_working_days": []},
        headers=bearer(tokens.admin),
    )
    assert replaced.status_code == 200
    stored = await client.get(f"/v1/calendars/{SEEDED_YEAR}", headers=bearer(tokens.regulator))
    assert stored.json()["holidays"] == ["2025-10-01"]
    assert stored.json()["source"] == "stored"


async def test_a_year_with_no_calendar_is_404_calendar_year_missing(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    response = await client.get(f"/v1/calendars/{UNSEEDED_YEAR}", headers=bearer(tokens.admin))
    assert_problem(response, 404, "calendar_year_missing")


async def test_reading_a_calendar_needs_a_token(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"/v1/calendars/{SEEDED_YEAR}"), 401, "unauthorized")


@pytest.mark.parametrize("year", ["abc", "1948", "2101", "2025.5", "9" * 40])
async def test_a_year_that_is_not_a_number_in_range_is_422(
    client: httpx.AsyncClient, tokens: Tokens, year: str
) -> None:
    response = await client.get(f"/v1/calendars/{year}", headers=bearer(tokens.admin))
    assert {field for field, _ in bad_fields(response)} == {"year"}


async def test_dates_that_are_not_yyyy_mm_dd_are_422_each_listed(
    client: httpx.AsyncClient, tokens: Tokens
) -> None:
    year = UNSEEDED_YEAR
    body = {
        "holidays": [f"{year}-01-01", "soon", 20270101, f"{year}-02-30"],
        "adjusted_working_days": [],
        "notes": "misspelt field",
    }
    response = await client.put(f"/v1/calendars/{year}", json=body, headers=bearer(tokens.admin))
    assert bad_fields(response) == {
        ("holidays.1", "date_format"),
        ("holidays.2", "date_format"),
        ("holidays.3", "date_from_datetime_parsing"),
        ("notes", "extra_forbidden"),
    }


async def test_dates_that_do_not_fit_the_year_are_422_each_listed_and_nothing_stored(
    client: httpx.AsyncClient, tokens: Tokens, pool: asyncpg.Pool
) -> None:
    body = {
        "holidays": ["2027-01-01", "2026-12-31", "2027-01-01"],
        "adjusted_working_days": ["2027-01-01", "2027-03-01"],  # a Friday and a Monday
    }
    response = await client.put("/v1/calendars/2027", json=body, headers=bearer(tokens.admin))
    assert bad_fields(response) == {
        ("holidays.1", "not_in_year"),
        ("holidays.2", "duplicate"),
        ("adjusted_working_days.0", "not_weekend"),
        ("adjusted_working_days.0", "also_a_holiday"),
        ("adjusted_working_days.1", "not_weekend"),
    }
    missing = await client.put("/v1/calendars/2027", json={}, headers=bearer(tokens.admin))
    assert bad_fields(missing) == {("holidays", "missing"), ("adjusted_working_days", "missing")}
    assert await pool.fetchval("SELECT count(*) FROM calendar_years") == 0


def first_saturday_of_february(year: int) -> str:
    day = date(year, 2, 1)
    while day.weekday() != SATURDAY:
        day += timedelta(days=1)
    return day.isoformat()


# --- the OpenAPI description ---------------------------------------------------------------


async def test_openapi_names_the_operations_the_bearer_scheme_and_problem_bodies(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    institution = schema["paths"]["/v1/institutions/{code}"]
    calendar = schema["paths"]["/v1/calendars/{year}"]
    operation_ids = {
        institution["put"]["operationId"],
        institution["get"]["operationId"],
        calendar["put"]["operationId"],
        calendar["get"]["operationId"],
    }
    assert operation_ids == {
        "put_institution",
        "get_institution",
        "put_calendar_year",
        "get_calendar_year",
    }
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert institution["get"]["security"] == [{"bearer": []}]
    not_found = institution["get"]["responses"]["404"]["content"]
    assert list(not_found) == [PROBLEM_JSON]
    assert not_found[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
    assert institution["put"]["requestBody"]["content"]["application/json"]["examples"]


# --- the command line ----------------------------------------------------------------------


def run_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "COMPLAINTCORE_LOG_FORMAT": "json"}
    return subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_token_printed_by_the_cli_authenticates(
    client: httpx.AsyncClient, tokens: Tokens, database_url: str
) -> None:
    created = run_cli(
        database_url, "tokens", "create", "--id", "staff-b2", "--role", "staff",
        "--institution", "ABC-B",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == f"{token}\n"
    assert (await client.get("/v1/institutions/ABC-B", headers=bearer(token))).status_code == 200
    hidden = await client.get("/v1/institutions/ABC-A", headers=bearer(token))
    assert_problem(hidden, 404, "not_found")


async def test_the_cli_refuses_a_staff_token_without_an_institution(
    tokens: Tokens, database_url: str
) -> None:
    refused = run_cli(database_url, "tokens", "create", "--id", "s-9", "--role", "staff")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert "institution" in refused.stderr


async def test_the_cli_loads_a_tree_children_first_and_a_calendar(
    client: httpx.AsyncClient, tokens: Tokens, database_url: str, tmp_path: Path
) -> None:
    tree = tmp_path / "tree.csv"
    tree.write_text(
        "code,name,kind,parent\nABC-C-1,丙分行一支行,sub_branch,ABC-C\nABC-C,丙分行,branch,ABC\n",
        encoding="utf-8",
    )
    loaded = run_cli(database_url, "institutions", "load", str(tree))
    assert loaded.returncode == 0, loaded.stderr
    assert "2 institutions loaded" in loaded.stdout
    calendar = tmp_path / "calendar.csv"
    calendar.write_text(f"date,kind\n{UNSEEDED_YEAR}-01-01,holiday\n", encoding="utf-8")
    loaded = run_cli(database_url, "calendar", "load", str(calendar))
    assert loaded.returncode == 0, loaded.stderr

    node = await client.get("/v1/institutions/ABC-C", headers=bearer(tokens.admin))
    assert node.json()["children"] == ["ABC-C-1"]
    year = await client.get(f"/v1/calendars/{UNSEEDED_YEAR}", headers=bearer(tokens.admin))
    assert year.json()["holidays"] == [f"{UNSEEDED_YEAR}-01-01"]
