"""What an attacker's probe found (issue 11), each pinned over real HTTP against a live service:
idempotency across institutions, crafted cursors, unbounded bodies read before authentication,
and the smaller exposures."""

import asyncio
import base64
import secrets
import socket
import time
from collections.abc import Iterator

import asyncpg
import httpx
import orjson
import pytest

from api_support import complaint, ok, post, receive, refused
from complaintcore.auth.tokens import TOKEN_PREFIX, hash_token
from testsupport import LiveService

CRAFTED_CURSOR = (
    "WyJjb21wbGFpbnRzIiwiMjAyNi0xMi0zMSIsIlx1MDAwMCJd"  # ["complaints","2026-12-31","\u0000"]
)


def legacy_token(live: LiveService, principal_id: str, role: str, institution: str | None) -> str:
    """A token stored as the CLI stored them before principal ids were unique: the same id may
    already stand for someone at another institution."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)

    async def insert() -> None:
        connection = await asyncpg.connect(live.database_url)
        try:
            await connection.execute(
                "INSERT INTO api_tokens (token_hash, principal_id, role, institution)"
                " VALUES ($1, $2, $3, $4)",
                hash_token(token),
                principal_id,
                role,
                institution,
            )
        finally:
            await connection.close()

    asyncio.run(insert())
    return token


def client_with(live: LiveService, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=live.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.fixture
def namesake_at_branch_b(live: LiveService) -> Iterator[httpx.Client]:
    """`staff-a1` is a BR-A token's principal; this one has the same id at BR-B."""
    with client_with(live, legacy_token(live, "staff-a1", "staff", "BR-B")) as client:
        yield client


# 1. Idempotency across institutions


def test_a_stored_response_is_not_replayed_to_the_same_id_at_another_institution(
    live: LiveService, namesake_at_branch_b: httpx.Client
) -> None:
    with live.client("staff_a") as branch_a:
        case = receive(branch_a)
        key = {"Idempotency-Key": f"assign-{case['id']}"}
        ok(post(branch_a, case, "assign", {"handler_id": "staff-a1"}, **key))
        replayed = post(namesake_at_branch_b, case, "assign", {"handler_id": "staff-a1"}, **key)
        refused(replayed, "not_found", 404)
        assert case["id"] not in replayed.text
        assert ok(branch_a.get(f"/v1/complaints/{case['id']}"))["version"] == 2


def test_a_key_used_at_another_institution_is_no_reuse(
    live: LiveService, namesake_at_branch_b: httpx.Client
) -> None:
    key = {"Idempotency-Key": f"shared-{secrets.token_hex(4)}"}
    case_b = receive(namesake_at_branch_b, institution="BR-B")
    ok(post(namesake_at_branch_b, case_b, "assign", {"handler_id": "staff-a1"}, **key))
    with live.client("staff_a") as branch_a:
        case_a = receive(branch_a)
        assigned = ok(post(branch_a, case_a, "assign", {"handler_id": "staff-a1"}, **key))
    assert assigned["id"] == case_a["id"]


def test_a_stored_response_meets_the_visibility_rule_again(live: LiveService) -> None:
    """A sub-branch moved out of the caller's subtree takes its cases along: the stored answer
    of a command on one of them is 404, as a fresh command would be."""
    code = f"SUB-MV{secrets.token_hex(2).upper()}"
    with live.client("admin") as admin, live.client("staff_a") as branch_a:
        node = {"name": "搬迁支行", "kind": "sub_branch", "parent": "BR-A"}
        assert admin.put(f"/v1/institutions/{code}", json=node).status_code == 201
        case = receive(branch_a, institution=code)
        key = {"Idempotency-Key": f"moved-{case['id']}"}
        body = {"handler_id": "staff-a1"}
        ok(post(branch_a, case, "assign", body, **key))
        moved = admin.put(f"/v1/institutions/{code}", json={**node, "parent": "BR-B"})
        assert moved.status_code == 200, moved.text
        refused(post(branch_a, case, "assign", body, **key), "not_found", 404)
        refused(branch_a.get(f"/v1/complaints/{case['id']}"), "not_found", 404)


def test_a_stored_receipt_meets_the_visibility_rule_again(live: LiveService) -> None:
    code = f"SUB-MV{secrets.token_hex(2).upper()}"
    with live.client("admin") as admin, live.client("staff_a") as branch_a:
        node = {"name": "搬迁支行", "kind": "sub_branch", "parent": "BR-A"}
        assert admin.put(f"/v1/institutions/{code}", json=node).status_code == 201
        key = {"Idempotency-Key": f"receipt-{code}"}
        body = complaint(institution=code)
        first = branch_a.post("/v1/complaints", json=body, headers=key)
        assert first.status_code == 201, first.text
        assert admin.put(f"/v1/institutions/{code}", json={**node, "parent": "BR-B"}).is_success
        again = branch_a.post("/v1/complaints", json=body, headers=key)
        refused(again, "validation_failed", 422)
        assert first.json()["id"] not in again.text


# 2. Crafted cursors and NUL


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("path", "list_name"), [("/v1/complaints", "complaints"), ("/v1/deadlines", "deadlines")]
)
@pytest.mark.parametrize(
    "position",
    [
        ["2026-12-31", "\x00"],
        ["2026-12-31", "not-a-case-id"],
        ["2026-12-31", "0B5E4C1E-54A4-4D7E-9C1E-6A51B1F0C2D3"],
        ["20261231", "0b5e4c1e-54a4-4d7e-9c1e-6a51b1f0c2d3"],
        ["+2026-12-31", "0b5e4c1e-54a4-4d7e-9c1e-6a51b1f0c2d3"],
        "not base64 !",
    ],
)
def test_a_crafted_cursor_is_a_422_naming_the_cursor(
    live: LiveService, path: str, list_name: str, position: list[str] | str
) -> None:
    cursor = position if isinstance(position, str) else _cursor([list_name, *position])
    with live.client("staff_a") as client:
        response = client.get(path, params={"cursor": cursor})
        problem = refused(response, "validation_failed", 422)
        assert [error["field"] for error in problem["errors"]] == ["cursor"]
        assert response.headers["x-correlation-id"]


def test_a_cursor_the_service_gave_out_still_pages(live: LiveService) -> None:
    with live.client("staff_a") as client:
        for _ in range(3):
            receive(client)
        first = ok(client.get("/v1/complaints", params={"limit": 2}))
        second = ok(
            client.get("/v1/complaints", params={"limit": 2, "cursor": first["next_cursor"]})
        )
        assert not {case["id"] for case in first["items"]} & {
            case["id"] for case in second["items"]
        }


@pytest.mark.parametrize(
    "query",
    ["institution=%00", "category=a%00b", "unknown=%00", "cursor=%00", "status=received%00"],
)
def test_nul_anywhere_in_a_query_is_a_422(live: LiveService, query: str) -> None:
    with live.client("staff_a") as client:
        response = client.get(f"/v1/complaints?{query}")
        refused(response, "validation_failed", 422)


def test_nul_in_a_path_is_a_422(live: LiveService) -> None:
    with live.client("staff_a") as client:
        refused(client.get("/v1/institutions/BR%00A"), "validation_failed", 422)


def test_a_refused_cursor_leaves_the_connection_open(live: LiveService) -> None:
    """Two requests on one keep-alive connection: the first refused, the second answered."""
    token = live.tokens["staff_a"]
    with _connection(live) as connection:
        first = _exchange(connection, f"GET /v1/complaints?cursor={CRAFTED_CURSOR}", token)
        second = _exchange(connection, "GET /v1/complaints?limit=1", token)
    assert first.startswith(b"HTTP/1.1 422")
    assert b"x-correlation-id" in first.lower()
    assert second.startswith(b"HTTP/1.1 200")


# 3. Body size, and authentication before the body


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(live: LiveService) -> None:
    with _connection(live) as connection:
        connection.sendall(
            _head("POST /v1/complaints/00000000-0000-0000-0000-000000000000/notify", None)
            + b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
        )
        answer = _read_response(connection)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"application/problem+json" in answer
    assert b'"payload_too_large"' in answer


def test_a_chunked_body_over_the_limit_is_refused_while_it_is_read(live: LiveService) -> None:
    case_path = "/v1/complaints/00000000-0000-0000-0000-000000000000/notify"
    chunk = b"x" * 65536
    with _connection(live) as connection:
        connection.sendall(
            _head(f"POST {case_path}", live.tokens["staff_a"])
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        try:
            for _ in range(20):  # 1.25 MiB, past the 1 MiB default
                connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest came
        answer = _read_response(connection)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"payload_too_large"' in answer


@pytest.mark.parametrize("token", [None, "cc_unknown-token", "not-a-token"])
def test_a_body_is_not_read_without_a_valid_token(live: LiveService, token: str | None) -> None:
    """The headers announce a body that never comes: the 401 cannot have waited for it."""
    with _connection(live) as connection:
        connection.sendall(
            _head("POST /v1/complaints/00000000-0000-0000-0000-000000000000/notify", token)
            + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        answer = _read_response(connection)
    assert answer.startswith(b"HTTP/1.1 401")
    assert b"application/problem+json" in answer


def test_a_body_within_the_limit_is_served(live: LiveService) -> None:
    """A long receipt (its facts at their 20,000-character maximum) is well within the limit."""
    with live.client("staff_a") as client:
        body = complaint(facts="事" * 20_000, claims="求" * 20_000)
        response = client.post("/v1/complaints", json=body)
        assert response.status_code == 201, response.text


# 7. Smaller exposures


@pytest.mark.parametrize(("who", "status"), [("staff_a", 403), ("supervisor_ho", 403)])
def test_projection_lag_is_not_for_branches(live: LiveService, who: str, status: int) -> None:
    with live.client(who) as client:
        refused(client.get("/v1/projections"), "forbidden", status)


@pytest.mark.parametrize("who", ["regulator", "admin"])
def test_projection_lag_is_for_regulators_and_admins(live: LiveService, who: str) -> None:
    with live.client(who) as client:
        assert ok(client.get("/v1/projections"))["projections"]


@pytest.mark.parametrize("code", ["br-b", "Br-B", "sub-a1"])
def test_an_institution_code_differing_only_in_case_is_refused(
    live: LiveService, code: str
) -> None:
    with live.client("admin") as admin:
        node = {"name": "重复分行", "kind": "branch", "parent": "HO"}
        refused(admin.put(f"/v1/institutions/{code}", json=node), "institution_code_conflict")
        refused(admin.get(f"/v1/institutions/{code}"), "not_found", 404)


@pytest.mark.parametrize("year", ["00002026", "02026", "+2026", "2026.0", " 2026"])
def test_a_calendar_year_must_be_written_as_four_digits(live: LiveService, year: str) -> None:
    body = {"holidays": [], "adjusted_working_days": []}
    with live.client("admin") as admin:
        refused(admin.put(f"/v1/calendars/{year}", json=body), "validation_failed", 422)
        refused(admin.get(f"/v1/calendars/{year}"), "validation_failed", 422)


# raw HTTP/1.1, for what a client library would not send or would hide


def _connection(live: LiveService) -> socket.socket:
    host, port = live.base_url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=10)
    return connection


def _head(request_line: str, token: str | None) -> bytes:
    head = f"{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if token is not None:
        head += f"Authorization: Bearer {token}\r\n"
    return head.encode()


def _exchange(connection: socket.socket, request_line: str, token: str) -> bytes:
    connection.sendall(_head(request_line, token) + b"\r\n")
    return _read_response(connection)


def _read_response(connection: socket.socket) -> bytes:
    """One response (headers and a Content-Length body), within the socket's timeout."""
    data = b""
    deadline = time.monotonic() + 10
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = connection.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length and time.monotonic() < deadline:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body
