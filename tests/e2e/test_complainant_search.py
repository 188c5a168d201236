"""Finding a complainant's cases by identity document, over the app in process (API.md
"Personal data", `POST /v1/complainants/search`; DOMAIN.md "Personal data", Repeat complainants).

One person's cases at BR-A, SUB-A1 and BR-B, typed differently at each desk, beside another
person's, a passport holder's, a company's and an old case of a third person closed six years ago.
Staff and supervisors find every spelling of the number in their own subtree and nothing outside it;
an erased case is found no more; a rebuild writes the same index the commands did; no table holds a
number in clear.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from api_support import COMPANY, TODAY, app_client, complaint, days_ago
from complaintcore.crypto.blind_index import blind_index
from complaintcore.crypto.keys import FileKeyProvider
from complaintcore.projections.case_view import load_index_key
from complaintcore.projections.rebuild import RebuildSettings, rebuild
from projection_support import scratch_database, tree_and_tokens
from testsupport import session_master_key_file

SEARCH = "/v1/complainants/search"
CREDIT_CODE = COMPANY["unified_social_credit_code"]
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(first_17: str) -> str:
    """A resident identity number with its GB 11643 check character (MOD 11-2)."""
    total = sum(int(digit) * weight for digit, weight in zip(first_17, _WEIGHTS, strict=True))
    return first_17 + "10X98765432"[total % 11]


PERSON = "11010519491231002X"
OTHER_PERSON = resident_id("31011519800101123")
OLD_PERSON = resident_id("44030519700615004")
PASSPORT = "E1234-5678"  # as the desk typed it
SPELLINGS = [
    PERSON,
    PERSON.lower(),
    " 110105 19491231 002X ",
    "110105-19491231-002x",
    "１１０１０５１９４９１２３１００２Ｘ",  # full-width, as Chinese input methods type it
    "110105－19491231‐002ｘ",  # a full-width hyphen-minus, a Unicode hyphen, a full-width x
]
SIX_YEARS_AGO = (TODAY - timedelta(days=6 * 366)).isoformat()


def natural_person(number: str, id_type: str = "resident_id") -> dict[str, Any]:
    return {
        "kind": "natural_person",
        "name": "张三",
        "id_type": id_type,
        "id_number": number,
        "contact": "13800138000",
    }


class Api:
    """The app in process, a token per role, and the cases made for this module by name."""

    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str], url: str) -> None:
        self.client = client
        self.tokens = tokens
        self.database_url = url
        self.cases: dict[str, str] = {}

    def headers(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}

    async def post(self, who: str | None, path: str, body: Any, **params: Any) -> httpx.Response:
        return await self.client.post(path, json=body, headers=self.headers(who), params=params)

    async def search(
        self, who: str | None, number: str, id_type: str = "resident_id", **params: Any
    ) -> httpx.Response:
        return await self.post(who, SEARCH, {"id_type": id_type, "id_number": number}, **params)

    async def found(self, who: str, number: str, id_type: str = "resident_id") -> list[str]:
        """The names of the cases `who` finds (every page)."""
        response = await self.search(who, number, id_type, limit=500)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        by_id = {case_id: name for name, case_id in self.cases.items()}
        return [by_id[item["id"]] for item in response.json()["items"]]

    async def receive(self, name: str, who: str, **fields: Any) -> None:
        response = await self.post(who, "/v1/complaints", complaint(**fields))
        assert response.status_code == 201, response.text
        self.cases[name] = response.json()["id"]


@pytest.fixture(scope="module")
async def api(server_url: str, template_url: str) -> AsyncIterator[Api]:
    async with scratch_database(server_url) as database_url:
        tokens = await tree_and_tokens(
            database_url,
            {
                "staff_a": ("staff-a1", "staff", "BR-A"),
                "staff_sub": ("staff-sub1", "staff", "SUB-A1"),
                "staff_b": ("staff-b1", "staff", "BR-B"),
                "supervisor_ho": ("sup-ho1", "supervisor", "HO"),
                "regulator": ("reg-1", "regulator", None),
                "admin": ("admin-1", "admin", None),
            },
        )
        async with app_client(database_url) as client:
            made = Api(client, tokens, database_url)
            await _the_cases(made)
            yield made


async def _the_cases(api: Api) -> None:
    await api.receive(
        "a1", "staff_a", received_days_ago=10, complainant=natural_person(PERSON.lower())
    )
    await api.receive(
        "sub1",
        "staff_sub",
        institution="SUB-A1",
        received_days_ago=5,
        complainant=natural_person(PERSON),
    )
    await api.receive(
        "b1", "staff_b", institution="BR-B", received_days_ago=3, complainant=natural_person(PERSON)
    )
    await api.receive(
        "other", "staff_a", received_days_ago=2, complainant=natural_person(OTHER_PERSON)
    )
    await api.receive(
        "passport", "staff_a", received_days_ago=2, complainant=natural_person(PASSPORT, "passport")
    )
    await api.receive("company", "staff_a", received_days_ago=2, complainant=COMPANY)
    await api.receive(
        "company_sub", "staff_sub", received_days_ago=1, institution="SUB-A1", complainant=COMPANY
    )
    old = complaint(complainant=natural_person(OLD_PERSON)) | {"received_on": SIX_YEARS_AGO}
    response = await api.post("staff_a", "/v1/complaints", old)
    assert response.status_code == 201, response.text
    api.cases["old"] = response.json()["id"]
    withdrawn = await api.post(
        "staff_a", f"/v1/complaints/{api.cases['old']}/withdraw", {"received_on": SIX_YEARS_AGO}
    )
    assert withdrawn.status_code == 200, withdrawn.text


async def _case_view(api: Api) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(api.database_url)
    try:
        return await connection.fetch("SELECT * FROM case_view ORDER BY case_id")
    finally:
        await connection.close()


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_every_spelling_of_the_number_finds_the_cases_of_the_callers_subtree(
    api: Api, spelling: str
) -> None:
    assert await api.found("staff_a", spelling) == ["a1", "sub1"]
    assert await api.found("staff_sub", spelling) == ["sub1"]
    assert await api.found("staff_b", spelling) == ["b1"]
    assert await api.found("supervisor_ho", spelling) == ["a1", "sub1", "b1"]


async def test_an_answer_is_the_cases_summary_and_is_never_cached(api: Api) -> None:
    response = await api.search("staff_a", PERSON)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    first = response.json()["items"][0]
    assert set(first) == {"id", "registration_no", "status", "received_on"}
    assert (first["id"], first["status"], first["received_on"]) == (
        api.cases["a1"],
        "received",
        days_ago(10),
    )
    assert first["registration_no"].startswith("BR-A-")
    assert PERSON not in response.text and PERSON.lower() not in response.text


async def test_another_person_or_another_document_type_is_another_complainant(api: Api) -> None:
    assert await api.found("staff_a", OTHER_PERSON) == ["other"]
    assert await api.found("staff_a", "e 1234 5678", "passport") == ["passport"]
    assert await api.found("staff_a", "E12345678", "resident_id") == []
    assert await api.found("staff_a", PERSON, "passport") == []
    assert await api.found("staff_b", OTHER_PERSON) == []  # BR-A's case: not BR-B's to find


@pytest.mark.parametrize(
    "spelling",
    [CREDIT_CODE, CREDIT_CODE.lower(), "91350100-M000100Y43", "９１３５０１００M000100Y43"],
)
async def test_a_company_complainant_is_found_by_its_credit_code(api: Api, spelling: str) -> None:
    """DOMAIN.md: a complainant is a natural or a legal person; the blind index finds a
    complainant's other cases, so a company's too, by its unified social credit code."""
    code = "unified_social_credit_code"
    assert await api.found("staff_a", spelling, code) == ["company", "company_sub"]
    assert await api.found("staff_sub", spelling, code) == ["company_sub"]
    assert await api.found("staff_b", spelling, code) == []
    assert await api.found("staff_a", spelling, "resident_id") == []


async def test_regulators_and_admins_may_not_search(api: Api) -> None:
    for who in ("regulator", "admin"):
        response = await api.search(who, PERSON)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden"
    assert (await api.search(None, PERSON)).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id_type": "resident_id", "id_number": ""}, "id_number"),
        ({"id_type": "resident_id", "id_number": " - －　\u200b"}, "id_number"),
        ({"id_type": "resident_id", "id_number": "1" * 65}, "id_number"),
        ({"id_type": "resident_id", "id_number": "1101\x00"}, "id_number"),
        ({"id_type": "resident_id", "id_number": 110105}, "id_number"),
        ({"id_type": "drivers_licence", "id_number": PERSON}, "id_type"),
        ({"id_number": PERSON}, "id_type"),
        ({"id_type": "resident_id"}, "id_number"),
        ({"id_type": "resident_id", "id_number": PERSON, "name": "张三"}, "name"),
    ],
)
async def test_bad_input_is_422_naming_the_field_and_never_echoing_the_number(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.post("staff_a", SEARCH, body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert field in {error["field"] for error in problem["errors"]}
    assert PERSON not in response.text


async def test_the_number_is_not_taken_from_the_url(api: Api) -> None:
    response = await api.client.post(
        SEARCH,
        params={"id_type": "resident_id", "id_number": PERSON},
        headers=api.headers("staff_a"),
    )
    assert response.status_code == 422
    assert (await api.client.get(SEARCH, headers=api.headers("staff_a"))).status_code == 405


async def test_pages_cover_every_case_once_in_order(api: Api) -> None:
    everything = await api.found("supervisor_ho", PERSON)
    for limit in (1, 2):
        walked: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            response = await api.search("supervisor_ho", PERSON, **params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= limit
            walked += [item["id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == [api.cases[name] for name in everything]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "WyIyMDI2LTEyLTMxIiwieCJd",  # ["2026-12-31","x"]: not a case id
        "WyIyMDI2LTEzLTMxIiwiMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAwIl0",  # month 13
    ],
)
async def test_a_crafted_cursor_is_refused(api: Api, cursor: str) -> None:
    response = await api.search("staff_a", PERSON, cursor=cursor)
    assert response.status_code == 422, response.text
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("cursor", "invalid_cursor")
    ]


async def test_a_cursor_of_another_list_is_refused(api: Api) -> None:
    """Found by a review pass: the case list's cursor (the same two values) was taken by the
    search, which answered an empty page, and by `/v1/deadlines`, which started at an unrelated
    due date. Each list's cursor names its list."""
    listed = await api.client.get(
        "/v1/complaints", params={"limit": 1}, headers=api.headers("supervisor_ho")
    )
    searched = await api.search("supervisor_ho", PERSON, limit=1)
    cursors = {"list": listed.json()["next_cursor"], "search": searched.json()["next_cursor"]}
    assert all(cursors.values()), cursors
    answers = {
        "search with the list's": await api.search("supervisor_ho", PERSON, cursor=cursors["list"]),
        "deadlines with the list's": await api.client.get(
            "/v1/deadlines",
            params={"cursor": cursors["list"]},
            headers=api.headers("supervisor_ho"),
        ),
        "list with the search's": await api.client.get(
            "/v1/complaints",
            params={"cursor": cursors["search"]},
            headers=api.headers("supervisor_ho"),
        ),
    }
    refused = {
        name: [(e["field"], e["code"]) for e in answer.json().get("errors", [])]
        for name, answer in answers.items()
    }
    assert refused == {name: [("cursor", "invalid_cursor")] for name in answers}


async def test_the_index_is_a_keyed_hash_and_no_row_holds_a_number_in_clear(api: Api) -> None:
    connection = await asyncpg.connect(api.database_url)
    try:
        index_key = await load_index_key(
            connection, FileKeyProvider(session_master_key_file()), "aes-256-gcm"
        )
        rows = await connection.fetch(
            "SELECT case_id, complainant_index, row_to_json(case_view)::text AS text FROM case_view"
        )
    finally:
        await connection.close()
    index_of = {row["case_id"]: row["complainant_index"] for row in rows}
    person = blind_index(index_key, "resident_id", PERSON)
    assert [index_of[api.cases[name]] for name in ("a1", "sub1", "b1")] == [person] * 3
    assert index_of[api.cases["passport"]] == blind_index(index_key, "passport", "E12345678")
    company = blind_index(index_key, "unified_social_credit_code", CREDIT_CODE)
    assert [index_of[api.cases[name]] for name in ("company", "company_sub")] == [company] * 2
    assert len(person) == 64 and set(person) <= set("0123456789abcdef")
    everything = "\n".join(row["text"] for row in rows).upper()
    for number in (PERSON, OTHER_PERSON, OLD_PERSON, PASSPORT, "E12345678", "19491231"):
        assert number.upper() not in everything


async def test_an_erased_case_is_found_no_more(api: Api) -> None:
    assert await api.found("staff_a", OLD_PERSON) == ["old"]
    erased = await api.post(
        "admin",
        f"/v1/complaints/{api.cases['old']}/erase-personal-data",
        {"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"},
    )
    assert erased.status_code == 200, erased.text
    assert await api.found("staff_a", OLD_PERSON) == []
    assert await api.found("supervisor_ho", OLD_PERSON) == []
    row = next(r for r in await _case_view(api) if r["case_id"] == api.cases["old"])
    assert (row["personal_data"], row["complainant_index"]) == ("erased", None)


async def test_a_rebuild_writes_the_index_the_commands_wrote(api: Api) -> None:
    live = await _case_view(api)
    assert any(row["personal_data"] == "erased" for row in live)  # the erased case is in it
    settings = RebuildSettings(page_events=3, flush_rows=2, scan_workers=2, scan_partitions=2)
    await rebuild(api.database_url, ["case_view"], settings=settings)
    assert await _case_view(api) == live
    assert await api.found("staff_a", PERSON) == ["a1", "sub1"]
    assert await api.found("staff_a", OLD_PERSON) == []
