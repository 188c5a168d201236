"""The reveal of a case's personal data and its access log, over real HTTP (API.md "Personal
data"; DOMAIN.md "Personal data", Reveal)."""

import base64

import asyncpg
import httpx
import orjson
import pytest

from api_support import days_ago, decision, ok, post, receive, refused
from testsupport import LiveService

PURPOSE = "核实投诉人身份以便电话回访"


@pytest.fixture(scope="module")
def case(live: LiveService) -> dict:
    """A BR-A case assigned to staff-a1 and decided: personal data at versions 1 and 3."""
    with live.client("staff_a") as staff:
        case = receive(staff)
        ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
        ok(post(staff, case, "decide", decision(days_ago(0))))
    return case


def _reveal(client: httpx.Client, case_id: str, purpose: str | None = PURPOSE) -> httpx.Response:
    params = {} if purpose is None else {"purpose": purpose}
    return client.get(f"/v1/complaints/{case_id}/personal-data", params=params)


def _log(client: httpx.Client, **params: object) -> httpx.Response:
    return client.get("/v1/personal-data-access", params=params)


def _rows_of(live: LiveService, case_id: str) -> list[dict]:
    with live.client("regulator") as regulator:
        body = ok(_log(regulator, case_id=case_id, limit=500))
    assert body["next_cursor"] is None
    return body["items"]


def test_the_assigned_handler_gets_the_plaintext_by_version(live: LiveService, case: dict) -> None:
    with live.client("staff_a") as staff:
        response = _reveal(staff, case["id"])
    body = ok(response)
    assert response.headers["cache-control"] == "no-store"
    assert body["case_id"] == case["id"]
    assert body["personal_data"] == "held"
    by_version = {event["version"]: event for event in body["events"]}
    assert sorted(by_version) == [1, 3]  # the assignment (version 2) holds none
    received = by_version[1]
    assert received["type"] == "ComplaintReceived"
    assert received["fields"] == {
        "/complainant/name": "张三",
        "/complainant/contact": "13800138000",
        "/complainant/id_type": "resident_id",
        "/complainant/id_number": "11010519491231002X",
        "/claims": "退还信用卡年费",
        "/facts": "未经同意扣收年费",
        "/respondent_staff/0/name": "李四",
        # not given on receipt: stored as empty strings, revealed as stored
        "/complainant/address": "",
        "/complainant/legal_representative_name": "",
        "/complainant/legal_representative_contact": "",
        "/heir_proof_ref": "",
    }
    assert by_version[3] == {
        "version": 3,
        "type": "ComplaintDecided",
        "fields": {"/findings": "未提示", "/basis": "章程", "/notice/agreed_terms": ""},
    }
    # The case document itself still shows the masked name only.
    with live.client("staff_a") as staff:
        assert "张三" not in staff.get(f"/v1/complaints/{case['id']}").text


def test_who_may_reveal(live: LiveService, case: dict) -> None:
    before = len(_rows_of(live, case["id"]))
    with live.client("staff_a2") as other_staff:
        refused(_reveal(other_staff, case["id"]), "forbidden", 403)
    with live.client("admin") as admin:
        refused(_reveal(admin, case["id"]), "forbidden", 403)
    for who in ("staff_b", "staff_sub"):
        with live.client(who) as outsider:
            refused(_reveal(outsider, case["id"]), "not_found", 404)
    with live.client("staff_a") as staff:
        refused(_reveal(staff, "00000000-0000-4000-8000-000000000000"), "not_found", 404)
    with httpx.Client(base_url=live.base_url) as anonymous:
        assert _reveal(anonymous, case["id"]).status_code == 401
    # refusals are not reveals: nothing logged
    assert len(_rows_of(live, case["id"])) == before
    for who in ("supervisor_ho", "regulator"):
        with live.client(who) as reader:
            response = _reveal(reader, case["id"])
        assert ok(response)["events"][0]["fields"]["/complainant/name"] == "张三"
        assert response.headers["cache-control"] == "no-store"
    assert len(_rows_of(live, case["id"])) == before + 2


@pytest.mark.parametrize(
    "purpose",
    [
        None,
        "",
        "x" * 201,
        "line\nbreak",
        "tab\there",
        "nul\x01",
        # found by a review pass: a purpose that says nothing, or two lines, was logged
        " ",
        "\u3000\u3000",
        "line\u2028separator",
        "paragraph\u2029separator",
        "\u200b\u200c",  # invisible alone: logged as a purpose that reads empty
        "\u3164",
        "\u061c",  # a format character the pattern does not list
        "\U000e0020",
        "核对 13812345678 的来电",  # who, not why: kept in clear, sent in a URL (a later pass)
        "核对１１０１０５１９４９１２３１００２Ｘ",  # full-width, or in groups (a review pass)
        "回电 138.0013.8000",
    ],
)
def test_a_purpose_is_required_and_checked(
    live: LiveService, case: dict, purpose: str | None
) -> None:
    before = len(_rows_of(live, case["id"]))
    with live.client("staff_a") as staff:
        problem = refused(_reveal(staff, case["id"], purpose), "validation_failed", 422)
    assert any(error["field"] == "purpose" for error in problem["errors"])
    assert len(_rows_of(live, case["id"])) == before


def test_a_purpose_of_200_characters_is_enough(live: LiveService, case: dict) -> None:
    with live.client("staff_a") as staff:
        ok(_reveal(staff, case["id"], "目" * 200))
        ok(_reveal(staff, case["id"], " 复核 投诉 2026-11 "))  # spaces inside and around


def test_each_reveal_adds_exactly_one_log_row(live: LiveService, case: dict) -> None:
    before = _rows_of(live, case["id"])
    purpose = "逐次记录检查"
    for who in ("staff_a", "supervisor_ho", "regulator"):
        with live.client(who) as reader:
            ok(_reveal(reader, case["id"], purpose))
    after = _rows_of(live, case["id"])
    assert len(after) == len(before) + 3
    newest = after[:3]  # newest first
    assert [(row["actor"], row["role"], row["institution"]) for row in newest] == [
        ("reg-1", "regulator", None),
        ("sup-ho1", "supervisor", "HO"),
        ("staff-a1", "staff", "BR-A"),
    ]
    assert {(row["case_id"], row["purpose"]) for row in newest} == {(case["id"], purpose)}
    with live.client("admin") as admin:
        by_admin = ok(_log(admin, case_id=case["id"], limit=500))["items"]
    assert by_admin == after


def test_the_log_filters_by_case_actor_and_period(live: LiveService, case: dict) -> None:
    with live.client("staff_a") as staff:
        other = receive(staff)
        ok(post(staff, other, "assign", {"handler_id": "staff-a1"}))
        ok(_reveal(staff, other["id"], "另一个案件"))
    with live.client("regulator") as regulator:
        ok(_reveal(regulator, other["id"], "监管抽查"))
        only_other = ok(_log(regulator, case_id=other["id"]))["items"]
        assert [(row["actor"], row["purpose"]) for row in only_other] == [
            ("reg-1", "监管抽查"),
            ("staff-a1", "另一个案件"),
        ]
        by_actor = ok(_log(regulator, actor="staff-a1", limit=500))["items"]
        assert by_actor and {row["actor"] for row in by_actor} == {"staff-a1"}
        assert {row["case_id"] for row in by_actor} >= {case["id"], other["id"]}
        both = ok(_log(regulator, case_id=other["id"], actor="staff-a1"))["items"]
        assert [row["purpose"] for row in both] == ["另一个案件"]
        today = ok(_log(regulator, case_id=other["id"], **{"from": days_ago(0), "to": days_ago(0)}))
        assert len(today["items"]) == 2
        yesterday = ok(_log(regulator, case_id=other["id"], to=days_ago(1)))
        assert yesterday["items"] == []
        assert ok(_log(regulator, actor="nobody"))["items"] == []


def test_paging_covers_every_row_once(live: LiveService, case: dict) -> None:
    with live.client("regulator") as regulator:
        for n in range(5):
            ok(_reveal(regulator, case["id"], f"分页 {n}"))
        everything = ok(_log(regulator, limit=500))["items"]
        assert len(everything) >= 5
        for limit in (1, 2, 3):
            walked: list[dict] = []
            cursor = None
            while True:
                params: dict[str, object] = {"limit": limit}
                if cursor is not None:
                    params["cursor"] = cursor
                page = ok(_log(regulator, **params))
                assert len(page["items"]) <= limit
                walked += page["items"]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert walked == everything, limit


def _access_log_cursor(*values: str, list_name: str = "personal-data-access") -> str:
    return base64.urlsafe_b64encode(orjson.dumps([list_name, *values])).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "W1siMjAyNi0xMi0zMSIsIlx1MDAwMCJdXQ",  # [["2026-12-31","\u0000"]]
        _access_log_cursor("2026-12-31T00:00:00+00:00", "\x00"),
        _access_log_cursor("2026-12-31T00:00:00", "1"),  # no offset
        _access_log_cursor("2026-12-31T00:00:00+00:00", "x"),  # an id that is not a number
        "WyIyMDI2LTEyLTMxVDAwOjAwOjAwKzAwOjAwIiw5OTk5OTk5OTk5OTk5OTk5OTk5OV0",  # a number
        "WyIyMDI2LTEyLTMxVDAwOjAwOjAwKzAwOjAwIiwiMSJd",  # ["2026-...+00:00","1"]: no list name
        _access_log_cursor("2026-12-31T00:00:00+00:00", "1", list_name="complaints"),
    ],
)
def test_a_crafted_cursor_is_refused(live: LiveService, cursor: str) -> None:
    with live.client("admin") as admin:
        problem = refused(_log(admin, cursor=cursor), "validation_failed", 422)
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("cursor", "invalid_cursor")]


def test_a_nul_in_the_cursor_is_refused(live: LiveService) -> None:
    with live.client("regulator") as regulator:
        response = regulator.get("/v1/personal-data-access?cursor=%00")
    assert response.status_code == 422


def test_only_regulators_and_admins_read_the_log(live: LiveService) -> None:
    for who in ("staff_a", "staff_b", "supervisor_ho"):
        with live.client(who) as reader:
            refused(_log(reader), "forbidden", 403)
    with httpx.Client(base_url=live.base_url) as anonymous:
        assert _log(anonymous).status_code == 401


async def test_the_log_is_append_only_in_the_database(live: LiveService, case: dict) -> None:
    with live.client("regulator") as regulator:
        ok(_reveal(regulator, case["id"]))
    connection = await asyncpg.connect(live.database_url)
    try:
        count = await connection.fetchval("SELECT count(*) FROM personal_data_access")
        assert count >= 1
        for statement in (
            "UPDATE personal_data_access SET purpose = 'changed'",
            "DELETE FROM personal_data_access",
            "TRUNCATE personal_data_access",
        ):
            with pytest.raises(asyncpg.PostgresError, match="append-only"):
                await connection.execute(statement)
        assert await connection.fetchval("SELECT count(*) FROM personal_data_access") == count
        assert (
            await connection.fetchval(
                "SELECT count(*) FROM personal_data_access WHERE purpose = 'changed'"
            )
            == 0
        )
    finally:
        await connection.close()


def test_the_server_log_holds_no_purpose_nor_personal_data(live: LiveService, case: dict) -> None:
    with live.client("staff_a") as staff:
        ok(_reveal(staff, case["id"], "日志检查目的"))
    text = live.log_path.read_text(encoding="utf-8", errors="replace")
    for secret in ("日志检查目的", "张三", "11010519491231002X", "13800138000"):
        assert secret not in text
