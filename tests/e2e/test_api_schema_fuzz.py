"""Bad input (TARGETS.md "Reliability"): schemathesis drives every operation of the root
`openapi.yaml` against the live service. No request may get a 5xx, no request the document calls
invalid may be accepted, and every answer must be one the document declares: its status code,
content type, headers and body.

Generated data alone would meet little but unknown ids: so one valid case id in two is swapped for
a real case of the caller's branch (a fresh one for a command, a decided and reviewed one for a
query), and one valid receipt in two names that branch. The commands then reach the domain rules,
and the case bodies show their decision and review parts.

Headers: each declared header parameter (`Idempotency-Key`, `If-Match`) that generation left out
is filled in one time in two, with a valid value or one the document calls invalid (schemathesis
re-reads the case, so a case made invalid this way is held to `negative_data_rejection`); and
every case may carry extra headers: random names and values, an odd `X-Correlation-Id`, an odd
`Content-Type`.

Cursors: the service's cursors are opaque (unpadded URL-safe base64 of a JSON list: the list's name,
then `date, case id` for the case lists, `timestamp with offset, row id in decimal` for the personal
data access log; a list refuses another's cursor), so the generated `cursor` of the paginated list
routes is, one time in two, replaced by the base64 of arbitrary JSON or by raw garbage; and two
tests of their own send such cursors, and the service's own, with every role's token and check the
answers in detail: a cursor the service did not give out is a 422 `validation_failed` naming
`cursor` (`invalid_cursor`), and a role that may not read a list (`LIST_READERS`) is a 403
`forbidden` whatever the cursor.
"""

import base64
import binascii
import hashlib
import json
import os
import re
import string
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints, TypeAdapter, ValidationError
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api_support import receive
from complaintcore.application.business_day import shanghai_today
from testsupport import LiveService

OPENAPI_FILE = Path(__file__).parents[2] / "openapi.yaml"
# The bearer token is the test's to send (a real one), not a generated parameter; methods a path
# does not declare are left out (a 405 is Starlette's, not ours).
schema = schemathesis.openapi.from_path(
    OPENAPI_FILE,
    config=schemathesis.Config.from_dict(
        {
            "generation": {"with-security-parameters": False},
            "phases": {"coverage": {"unexpected-methods": []}},
        }
    ),
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Examples per operation and phase: small enough for the suite; raise it for a deeper search.
MAX_EXAMPLES = int(os.environ.get("COMPLAINTCORE_FUZZ_EXAMPLES", "10"))
# The admin routes, the feed and the personal data access log (regulators and admins): everything
# else as a branch's staff.
ADMIN_OPERATIONS = {
    "put_institution",
    "put_calendar_year",
    "read_event_feed",
    "list_personal_data_access",
}
ACCESS_LOG_PATH = "/v1/personal-data-access"
# The list routes only some roles may read (any other role is a 403); the rest any role reads.
WEBHOOKS_PATH = "/v1/webhooks"
LIST_READERS = {
    ACCESS_LOG_PATH: {"regulator", "admin"},
    WEBHOOKS_PATH: {"supervisor_ho", "admin"},  # admins; supervisors for their subtree
}
BRANCH = "BR-A"  # the institution of the `staff_a` token


def _days_ago(days: int) -> str:
    return (shanghai_today() - timedelta(days=days)).isoformat()


def _notice(days_ago: int) -> dict[str, Any]:
    return {"method": "sms", "notified_on": _days_ago(days_ago), "proof_ref": "SMS-1"}


def _receive(client: httpx.Client, days_ago: int = 0) -> str:
    return receive(client, institution=BRANCH, received_days_ago=days_ago)["id"]


def _command(client: httpx.Client, case_id: str, command: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1/complaints/{case_id}/{command}", json=body)
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def staff(live: LiveService) -> Iterator[httpx.Client]:
    with live.client("staff_a") as client:
        yield client


@pytest.fixture(scope="module")
def reviewed_case_id(live: LiveService, staff: httpx.Client) -> str:
    """A case decided, appealed and reviewed: its body has every part a case can show."""
    case_id = _receive(staff, days_ago=5)
    _command(staff, case_id, "assign", {"handler_id": "staff-a1"})
    decision = {
        "handler_id": "staff-a1",
        "outcome": "partially_upheld",
        "findings": "未提示",
        "basis": "章程",
        "redress_fen": 30000,
        "remedies": ["review", "litigation"],
        "notice": _notice(3),
    }
    _command(staff, case_id, "decide", decision)
    _command(staff, case_id, "appeal", {"received_on": _days_ago(2), "grounds": "金额不服"})
    review = {
        "reviewer_id": "sup-ho1",
        "outcome": "changed",
        "findings": "应全额退还",
        "new_outcome": "upheld",
        "new_redress_fen": 60000,
        "notice": _notice(1),
    }
    with live.client("supervisor_ho") as supervisor:
        _command(supervisor, case_id, "decide-review", review)
    return case_id


def _generated_valid(case: Any, location: ParameterLocation) -> bool:
    component = case.meta.components.get(location) if case.meta else None
    return component is not None and component.mode == GenerationMode.POSITIVE


def _coverage_phase(case: Any) -> bool:
    return case.meta is not None and case.meta.phase.name == TestPhase.COVERAGE


def _one_in_two(value: object) -> bool:
    """A deterministic coin: the same generated value always lands the same way."""
    return hashlib.sha256(repr(value).encode()).digest()[0] % 2 == 0


def _aim_at_real_data(case: Any, staff: httpx.Client, reviewed_case_id: str) -> None:
    path = case.path_parameters or {}
    if (
        "case_id" in path
        and _generated_valid(case, ParameterLocation.PATH)
        and _one_in_two(path["case_id"])
    ):
        if case.method.upper() == "GET":
            path["case_id"] = reviewed_case_id
        elif _generated_valid(case, ParameterLocation.BODY) and not _coverage_phase(case):
            # A command on a case of its own; the coverage phase's many boundary bodies would
            # cost a receipt each, so they stay on generated ids.
            path["case_id"] = _receive(staff)
    body = case.body
    if (
        isinstance(body, dict)
        and "respondent_institution" in body
        and _generated_valid(case, ParameterLocation.BODY)
        and _one_in_two(body)
    ):
        body["respondent_institution"] = BRANCH


# Header values as they can go on the wire: RFC 9110 field characters (visible ASCII, SP and HTAB
# inside, obs-text up to U+00FF), no surrounding whitespace (`requests` refuses it in front, and
# the server strips it at the end, which would make an invalid value valid on the way).
_FIELD_CHARACTERS = st.characters(codec="latin-1", exclude_categories=["Cc"]) | st.just("\t")


def _field_values(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_FIELD_CHARACTERS, max_size=max_size).map(str.strip)


_IDEMPOTENCY_KEYS = st.one_of(
    st.from_regex(r"[\x21-\x7e]{1,200}", fullmatch=True),
    st.uuids().map(str),
    # Invalid: empty, too long, a space or a non-ASCII character inside.
    st.sampled_from(["", "k" * 201, "a b", "a\tb", "clé", "ÿ"]),
    _field_values(220),
)
_IF_MATCHES = st.one_of(
    st.integers(min_value=0, max_value=10**12).map('"{}"'.format),
    st.integers(min_value=0, max_value=10**12).map('W/"{}"'.format),
    st.integers(min_value=-5, max_value=10**12).map(str),
    st.sampled_from(["*", '"1", "2"', '""', '"', "W/", '"1', '"0x1"', '"1e3"', "null", "²"]),
    _field_values(60),
)
# The declared header parameters by name, and what to fill them in with.
_DECLARED_HEADER_VALUES = {"idempotency-key": _IDEMPOTENCY_KEYS, "if-match": _IF_MATCHES}
_CORRELATION_IDS = st.one_of(
    st.from_regex(r"[A-Za-z0-9._:-]{1,100}", fullmatch=True),
    st.integers(min_value=101, max_value=300).map("c".__mul__),
    st.sampled_from(["", "-", "..", "a b", "ÿ", "%00", "\\x00", '"q"', "<script>", "{}"]),
    _field_values(120),
)
_CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "text/plain",
            "application/JSON",
            "application/json; charset=latin-1",
            "application/json;charset=utf-16",
            'application/json; boundary="',
            "application/json;;;=",
            "application/merge-patch+json",
            "application/problem+json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "application/json, text/plain",
            "*/*",
            "application",
            "/",
            "",
        ]
    ),
    st.tuples(
        st.sampled_from(["application", "text", "multipart", "*", ""]),
        st.sampled_from(["json", "JSON", "*", "", "form-data", "vnd.x+json", "json; charset"]),
    ).map("/".join),
    _field_values(60),
)
# Headers the extra ones leave alone: the token the test sends, the ones that frame the message,
# and the ones set apart above.
_LEFT_ALONE = frozenset(
    {
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "accept-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "content-type",
        "x-correlation-id",
        "x-schemathesis-testcaseid",
        *_DECLARED_HEADER_VALUES,
    }
)
_HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "Accept",
            "Accept-Language",
            "Cache-Control",
            "Cookie",
            "Forwarded",
            "If-None-Match",
            "If-Modified-Since",
            "Origin",
            "Prefer",
            "Range",
            "Referer",
            "User-Agent",
            "X-Forwarded-For",
            "X-HTTP-Method-Override",
            "X-Request-Id",
        ]
    ),
    st.text(
        st.sampled_from("!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters),
        min_size=1,
        max_size=40,
    ),
).filter(lambda name: name.lower() not in _LEFT_ALONE)
_EXTRA_HEADERS = st.dictionaries(_HEADER_NAMES, _field_values(200), max_size=4)


# Cursors. The service's own are `urlsafe_b64encode(orjson.dumps([date_iso, case_id]))` without
# padding; these are built from arbitrary JSON (control characters and NUL in strings, huge
# numbers, nesting) and from positions that nearly make sense, plus raw garbage.
_ODD_CHARACTERS = st.characters(max_codepoint=0x1F) | st.sampled_from(
    "\x7f\x85\u2028\u2029\ufeff\ufffe\uffff\U0010ffff'\"\\%_"
)
# No surrogates: a lone one is not JSON that orjson writes, nor a query string httpx can send.
_ODD_TEXT = st.text(_ODD_CHARACTERS | st.characters(codec="utf-8"), max_size=24)
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(),  # beyond 64 bits as well: written by the standard library then
    st.sampled_from([2**64, -(2**63) - 1, 10**80]),
    st.floats(),
    _ODD_TEXT,
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_ODD_TEXT, inner, max_size=4),
    max_leaves=10,
)
_ISO_DATES = st.dates().map(date.isoformat)
_DATE_LIKE = st.one_of(
    _ISO_DATES,
    st.sampled_from(
        [
            "2026-12-31",
            "20261231",
            "2026-W53-4",
            "2026-12-31T00:00:00",
            "2026-02-30",
            "0000-00-00",
            "0001-01-01",
            "9999-12-31",
            "+2026-12-31",
            "２０２６-１２-３１",
            "",
            "\x00",
        ]
    ),
    st.tuples(_ISO_DATES, _ODD_TEXT).map("".join),
    st.tuples(_ODD_TEXT, _ISO_DATES).map("".join),
    _ODD_TEXT,
)


def _spliced(parts: tuple[str, int, str]) -> str:
    text, at, inserted = parts
    return text[:at] + inserted + text[at:]


_CASE_ID_LIKE = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda value: str(value).upper()),
    st.tuples(st.uuids().map(str), st.integers(min_value=0, max_value=36), _ODD_TEXT).map(_spliced),
    st.sampled_from(["\x00", "", " ", "'", "%", "\\", "z" * 300]),
    _ODD_TEXT,
)
# the name each list writes first in its cursors (a cursor of one list is refused by another)
LIST_NAMES = {
    "/v1/complaints": "complaints",
    "/v1/deadlines": "deadlines",
    "/v1/personal-data-access": "personal-data-access",
    "/v1/webhooks": "webhooks",
}
_LIST_NAME_LIKE = st.one_of(
    st.sampled_from([*LIST_NAMES.values(), "complainant-search", "webhook-deliveries"]),
    st.sampled_from(["", "\x00", "Deadlines", "deadlines "]),
)
_POSITIONS = st.tuples(_LIST_NAME_LIKE, _DATE_LIKE, _CASE_ID_LIKE).map(list)
_CURSOR_VALUES = st.one_of(
    _POSITIONS,
    st.tuples(_DATE_LIKE, _CASE_ID_LIKE).map(list),  # the cursors of the releases before names
    st.tuples(_LIST_NAME_LIKE, _DATE_LIKE, _JSON).map(list),
    st.tuples(_LIST_NAME_LIKE, _JSON, _CASE_ID_LIKE).map(list),
    st.tuples(_JSON, _DATE_LIKE, _CASE_ID_LIKE).map(list),
    st.tuples(_LIST_NAME_LIKE, _DATE_LIKE, _CASE_ID_LIKE, _JSON).map(list),
    st.tuples(_LIST_NAME_LIKE, _DATE_LIKE).map(list),
    _JSON,
)


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return json.dumps(value, ensure_ascii=False).encode()


def _cursor_of(raw: bytes, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(raw).decode()
    return encoded if padded else encoded.rstrip("=")


_URL_SAFE_ALPHABET = string.ascii_letters + string.digits + "-_"
_CURSORS = st.one_of(
    st.builds(_cursor_of, _POSITIONS.map(_json_bytes)),
    st.builds(_cursor_of, _CURSOR_VALUES.map(_json_bytes), st.booleans()),
    st.builds(_cursor_of, _CURSOR_VALUES.map(_json_bytes)),
    st.builds(_cursor_of, st.binary(max_size=48)),  # not UTF-8, or not JSON
    st.text(st.sampled_from(_URL_SAFE_ALPHABET + "=+/."), max_size=80),
    st.text(_ODD_CHARACTERS | st.characters(codec="utf-8"), max_size=60),
    st.integers(min_value=495, max_value=520).map("W".__mul__),
)
# Longer ones are refused by length before anything reads them: the tests below send a few.
CURSOR_MAX_LENGTH = 500


def _flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    """Fill in left-out declared headers, add extra ones, and swap the cursor: see the docstring."""
    return _reworked(case)


@st.composite
def _reworked(draw: st.DrawFn, case: Any) -> Any:
    headers = CaseInsensitiveDict(case.headers or {})
    for parameter in case.operation.headers:
        name = parameter.name
        if name.lower() != "authorization" and name not in headers and draw(st.booleans()):
            headers[name] = draw(_DECLARED_HEADER_VALUES.get(name.lower(), _field_values(100)))
    for name, value in draw(_EXTRA_HEADERS).items():
        headers.setdefault(name, value)
    if draw(st.booleans()):
        headers["X-Correlation-Id"] = draw(_CORRELATION_IDS)
    if "content-type" not in headers and draw(st.integers(min_value=0, max_value=3)) == 0:
        headers["Content-Type"] = draw(_CONTENT_TYPES)
    if headers != CaseInsensitiveDict(case.headers or {}):
        # Assigned, not edited in place: schemathesis then re-reads whether the case is valid.
        case.headers = headers
    paginated = any(parameter.name == "cursor" for parameter in case.operation.query)
    # Only into a valid query: a cursor swapped into an invalid one could undo what made it so.
    if paginated and _generated_valid(case, ParameterLocation.QUERY) and draw(st.booleans()):
        cursor = draw(_CURSORS.filter(lambda value: len(value) <= CURSOR_MAX_LENGTH))
        case.query = {**(case.query or {}), "cursor": cursor}
    return case


@schema.hooks.apply(_flatmap_case, name="flatmap_case")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_openapi_yaml_says(
    case: Any, live: LiveService, staff: httpx.Client, reviewed_case_id: str
) -> None:
    _aim_at_real_data(case, staff, reviewed_case_id)
    operation_id = case.operation.definition.raw.get("operationId")
    who = "admin" if operation_id in ADMIN_OPERATIONS else "staff_a"
    case.call_and_validate(
        base_url=live.base_url,
        headers={"Authorization": f"Bearer {live.tokens[who]}"},
        checks=CHECKS,
        timeout=30,
    )


def _cursor_parameter(item: dict[str, Any]) -> dict[str, Any] | None:
    parameters = item.get("get", {}).get("parameters", [])
    return next((p for p in parameters if p.get("in") == "query" and p["name"] == "cursor"), None)


def _string_constraints(parameter: dict[str, Any]) -> TypeAdapter[str]:
    """The `cursor` parameter's string schema, as pydantic (the service's validator) reads it."""
    schema_ = parameter["schema"]
    string_ = next((s for s in schema_.get("anyOf", [schema_]) if s.get("type") == "string"), {})
    constraints = StringConstraints(
        min_length=string_.get("minLength"),
        max_length=string_.get("maxLength"),
        pattern=string_.get("pattern"),
    )
    return TypeAdapter(Annotated[str, constraints])


# The paginated list routes: every GET of openapi.yaml with a `cursor` query parameter.
CURSOR_PARAMETERS = {
    path: _string_constraints(parameter)
    for path, item in sorted(schema.raw_schema["paths"].items())
    if (parameter := _cursor_parameter(item)) is not None
}
# (a list under a path parameter, a webhook's deliveries, is its own route's test's concern)
LIST_PATHS = [path for path in CURSOR_PARAMETERS if "{" not in path]
# Each example goes to every list route with every role's token.
CURSOR_EXAMPLES = 10 * MAX_EXAMPLES
_STANDARD_ALPHABET = str.maketrans("-_", "+/")
_CANONICAL_BASE64 = re.compile(r"[A-Za-z0-9_-]*={0,2}")

Answer = Literal["page_or_refused", "refused", "off_schema"]


def _expected_answer(path: str, cursor: str) -> Answer:
    """What `path` must answer to `cursor`, read the way the service reads its own.

    `off_schema`: the cursor breaks the parameter's schema in openapi.yaml (length, pattern), a 422
    `validation_failed` with an error (of any code) on `cursor`. `refused`: the same with code
    `invalid_cursor`; such is every cursor that fits the schema and is in the alphabet the service
    writes, but does not decode to JSON, or not to the name of the list asked and two strings (an
    ISO date and a case id), or to one with a NUL (no date or case id has one). A well-formed
    position the service may take for one of its own, or refuse (`page_or_refused`); and so garbage
    outside that alphabet, which a lenient base64 decoder may read either way."""
    try:
        CURSOR_PARAMETERS[path].validate_python(cursor)
    except ValidationError:
        return "off_schema"
    if not cursor or not _CANONICAL_BASE64.fullmatch(cursor):
        return "page_or_refused"
    padded = cursor.translate(_STANDARD_ALPHABET) + "=" * (-len(cursor) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except binascii.Error:
        return "page_or_refused" if "=" in cursor else "refused"
    try:
        values = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "refused"
    if not (
        isinstance(values, list) and len(values) == 3 and all(isinstance(v, str) for v in values)
    ):
        return "refused"
    list_name, key, case_id = values
    if list_name != LIST_NAMES[path] or "\x00" in key or "\x00" in case_id:
        return "refused"
    if path == ACCESS_LOG_PATH:
        return "page_or_refused" if _is_access_log_position(key, case_id) else "refused"
    try:
        date.fromisoformat(key)
    except ValueError:
        return "refused"
    return "page_or_refused"


def _is_access_log_position(at: str, row_id: str) -> bool:
    """Whether `[at, row_id]` reads as a position in the access log: a timestamp with its offset
    and a row id in decimal."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return False
    return moment.tzinfo is not None and re.fullmatch(r"[1-9][0-9]{0,18}", row_id) is not None


def _is_page(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    return isinstance(body.get("items"), list) and "next_cursor" in body


def _field_errors(response: httpx.Response, field: str) -> list[dict[str, Any]]:
    """The errors on `field` of a 422 `validation_failed` problem; empty for anything else."""
    if response.status_code != 422 or not response.headers.get("content-type", "").startswith(
        "application/problem+json"
    ):
        return []
    body = response.json()
    if body.get("code") != "validation_failed":
        return []
    return [error for error in body.get("errors") or [] if error.get("field") == field]


def _cursor_errors(response: httpx.Response) -> list[dict[str, Any]]:
    return _field_errors(response, "cursor")


def _is_refused_as_invalid_cursor(response: httpx.Response) -> bool:
    return any(error.get("code") == "invalid_cursor" for error in _cursor_errors(response))


def _is_forbidden(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json().get("code") == "forbidden"


def _answers_as_expected(
    response: httpx.Response, cursor: str, expected: Answer, reads: bool = True
) -> bool:
    # A NUL in the query string is refused before any route reads it (`request_gate`).
    nul_refused = any(e.get("code") == "nul_character" for e in _field_errors(response, "query"))
    if "\x00" in cursor and nul_refused:
        return True
    if not reads:  # a role that may not read the list: refused before its parameters are read
        return _is_forbidden(response)
    if expected == "off_schema":
        return bool(_cursor_errors(response))
    if expected == "refused":
        return _is_refused_as_invalid_cursor(response)
    return _is_page(response) or _is_refused_as_invalid_cursor(response)


@pytest.fixture(scope="module")
def anonymous(live: LiveService) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def _as(live: LiveService, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {live.tokens[role]}"}


def _b64_of(values: Any) -> str:
    return _cursor_of(orjson.dumps(values))


@given(cursor=_CURSORS, limit=st.sampled_from([1, 2, 50]))
@example(cursor=_b64_of(["deadlines", "2026-12-31", "\x00"]), limit=1)
@example(
    cursor=_b64_of(["deadlines", "2026-12-31", "0d6e5f1c-\x00-4b1e-9a53-1f6b4b0e8c11"]), limit=2
)
@example(cursor=_b64_of(["deadlines", "\x00", "0d6e5f1c-7d3a-4b1e-9a53-1f6b4b0e8c11"]), limit=1)
@example(cursor=_b64_of(["deadlines", "2026-12-31", "0d6e5f1c\x01\x1f\u2028"]), limit=1)
@example(cursor=_b64_of(["deadlines", "2026-12-31"]), limit=1)
@example(cursor=_b64_of(["deadlines", "2026-12-31", 2**64 - 1]), limit=1)
@example(cursor=_cursor_of(b'["deadlines", "2026-12-31", 1' + b"0" * 40 + b"]"), limit=1)
@example(cursor=_b64_of([["2026-12-31", "x"], {"\x00": None}]), limit=1)
@example(
    cursor=_b64_of(["complaints", "2026-12-31", "0d6e5f1c-7d3a-4b1e-9a53-1f6b4b0e8c11"]), limit=1
)
@example(cursor="%00\x00\x01 !~", limit=1)
@settings(
    max_examples=CURSOR_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_a_cursor_the_service_did_not_give_out_is_refused_as_invalid(
    cursor: str, limit: int, live: LiveService, anonymous: httpx.Client
) -> None:
    """Every role, every paginated list route: never a 5xx, and an `invalid_cursor` 422 for a
    cursor that is not a (date, case id) position."""
    assert LIST_PATHS, "openapi.yaml has no paginated list route"
    wrong = []
    for path in LIST_PATHS:
        expected = _expected_answer(path, cursor)
        for role in sorted(live.tokens):
            params = {"cursor": cursor, "limit": limit}
            try:
                response = anonymous.get(path, params=params, headers=_as(live, role))
            except httpx.TransportError as error:  # the server dropped the connection
                wrong.append(f"GET {path} params={params!r} as {role}: {error!r}")
                continue
            reads = role in LIST_READERS.get(path, live.tokens)
            if response.status_code >= 500 or not _answers_as_expected(
                response, cursor, expected, reads
            ):
                wrong.append(
                    f"GET {path} params={params!r} as {role}: {response.status_code} "
                    f"{response.text[:300]} (expected {expected})"
                )
    assert not wrong, f"cursor {cursor!r} = base64 of {_decoded(cursor)!r}:\n" + "\n".join(wrong)


def _decoded(cursor: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        return None


def _item_key(path: str, item: dict[str, Any]) -> Any:
    if path == ACCESS_LOG_PATH:
        return (item["at"], item["actor"], item["case_id"], item["purpose"])
    return item["id"]


def test_a_cursor_the_service_gave_out_leads_to_the_next_page(
    live: LiveService, anonymous: httpx.Client, staff: httpx.Client, reviewed_case_id: str
) -> None:
    """Pages of one, followed by their `next_cursor`, are the first page of three in order, for
    every role and every paginated list route (a 403 for a role that may not read it)."""
    for days_ago in (1, 1, 2):  # open cases of BR-A, two on the same day (ties on case id)
        _receive(staff, days_ago=days_ago)
    for n in range(3):  # three reveals of its handler's case: three rows of the access log
        reveal = f"/v1/complaints/{reviewed_case_id}/personal-data"
        assert staff.get(reveal, params={"purpose": f"page {n}"}).status_code == 200
    with live.client("admin") as admin:  # three webhooks (never sent to: no BR-B erasure)
        for n in range(3):
            body = {
                "url": f"https://93.184.216.34/fuzz/{n}",
                "institution": "BR-B",
                "events": ["personal_data.erased"],
            }
            assert admin.post(WEBHOOKS_PATH, json=body).status_code == 201
    for path in LIST_PATHS:
        for role in sorted(live.tokens):
            headers = _as(live, role)
            first = anonymous.get(path, params={"limit": 3}, headers=headers)
            if role not in LIST_READERS.get(path, live.tokens):
                assert _is_forbidden(first), (path, role, first.text)
                continue
            assert first.status_code == 200, (path, role, first.text)
            expected = [_item_key(path, item) for item in first.json()["items"]]
            walked: list[Any] = []
            cursor = None
            while len(walked) < 3:
                params: dict[str, Any] = {"limit": 1}
                if cursor is not None:
                    params["cursor"] = cursor
                page = anonymous.get(path, params=params, headers=headers)
                assert page.status_code == 200, (path, role, params, page.text)
                walked += [_item_key(path, item) for item in page.json()["items"]]
                cursor = page.json()["next_cursor"]
                if cursor is None:
                    break
            assert walked == expected, (path, role)
            if role in ("staff_a", "supervisor_ho", "regulator", "admin"):
                assert len(walked) == 3, (path, role, walked)
