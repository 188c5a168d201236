"""Input the OpenAPI document calls invalid is refused with a 422, never stored nor a 500: the
cases schemathesis found (tests/e2e/test_api_schema_fuzz.py), pinned one by one."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from complaintcore.api.app import create_app
from complaintcore.api.routes.calendars import CalendarYearBody
from complaintcore.api.routes.institutions import InstitutionBody
from complaintcore.application.requests import complaints as bodies
from complaintcore.auth.principals import Principal
from complaintcore.auth.tokens import SeenTokens, hash_token
from complaintcore.infra.settings import Settings
from complaintcore.reference.institutions import InstitutionNode

TOKEN = "cc_" + "t" * 43

NOTICE = {"method": "sms", "notified_on": "2026-11-21", "proof_ref": "SMS-1"}
AGENT = {"name": "李四", "id_type": "passport", "id_number": "E12345678", "contact": "1390000"}
RECEIPT = {
    "respondent_institution": "BR-A",
    "channel": "phone",
    "complainant": {"kind": "natural_person", "name": "张三"},
    "claims": "退还年费",
    "facts": "未经同意扣收",
    "category": {"business": "credit_card", "reason": "pricing_and_fees"},
}


def refused(model: type[BaseModel], body: dict[str, Any]) -> list[tuple[str, ...]]:
    """The locations pydantic refuses in `body`, read as FastAPI reads a request: from JSON."""
    with pytest.raises(ValidationError) as refusal:
        model.model_validate(json.loads(json.dumps(body)))
    return [tuple(str(part) for part in error["loc"]) for error in refusal.value.errors()]


DECISION = {"handler_id": "s1", "outcome": "upheld", "findings": "f", "basis": "b"}
NOT_COERCED = {
    "false as an integer": (
        bodies.ExtendBody,
        {"reason": "复杂", "notice": {**NOTICE, "attempts": False}},
        "attempts",
    ),
    "0 as a boolean": (bodies.NoticeBody, {**NOTICE, "unreachable": 0}, "unreachable"),
    "1 as a boolean": (
        bodies.SupplementBody,
        {"new_facts_and_reasons": 1, "summary": "录音"},
        "new_facts_and_reasons",
    ),
    # (100.0 is an integer in OpenAPI 3.1's JSON Schema, and taken: tests/unit/test_request_fields)
    "a fraction as fen": (
        bodies.DecideBody,
        {**DECISION, "redress_fen": 100.5, "notice": NOTICE},
        "redress_fen",
    ),
    "true as a count": (bodies.JointBody, {"complainants": True}, "complainants"),
    "a Unix time as a date": (bodies.ResumeBody, {"resumed_on": 1_763_000_000}, "resumed_on"),
    "a timestamp as a date": (bodies.ResumeBody, {"resumed_on": "2026-11-21T00:00"}, "resumed_on"),
    "a number as a holiday": (
        CalendarYearBody,
        {"holidays": [1_763_000_000], "adjusted_working_days": []},
        "holidays",
    ),
}


@pytest.mark.parametrize(("model", "body", "location"), NOT_COERCED.values(), ids=NOT_COERCED)
def test_json_values_of_another_type_are_not_coerced(
    model: type[BaseModel], body: dict[str, Any], location: str
) -> None:
    assert location in {part for loc in refused(model, body) for part in loc}


def test_a_given_heir_proof_or_an_agent_needs_its_reference() -> None:
    assert ("heir_proof_ref",) in refused(bodies.ReceiveBody, {**RECEIPT, "heir_proof_ref": " "})
    assert ("agent", "authorization_ref") in refused(
        bodies.ReceiveBody, {**RECEIPT, "agent": AGENT}
    )


def test_nul_characters_never_reach_postgresql() -> None:
    assert ("name",) in refused(InstitutionBody, {"name": "总\x00行", "kind": "head_office"})
    assert ("agent", "id_number") in refused(
        bodies.ReceiveBody,
        {**RECEIPT, "agent": {**AGENT, "id_number": "E1\x00", "authorization_ref": "委托书"}},
    )
    with pytest.raises(ValueError, match="NUL"):
        InstitutionNode("HO", "总\x00行", "head_office").validated()


def _client_without_a_database() -> TestClient:
    app = create_app("postgresql://bad-input-test.invalid/unused", Settings.model_construct())
    # a token this process has seen valid passes the gate without a database
    app.state.seen_tokens = SeenTokens()
    app.state.seen_tokens.remember(hash_token(TOKEN), Principal("staff-1", "staff", "BR-A"))
    return TestClient(app)


NOT_JSON_BODIES = {
    "not UTF-8": b'{"claims": "\xff\xfe"}',
    "cut short": b'{"handler_id": ',
    "an integer of 5,000 digits": b'{"handler_id": ' + b"7" * 5000 + b"}",
    "arrays nested 1,200 deep": b"[" * 1200 + b"]" * 1200,
}
ROUTES_TAKING_A_BODY = [
    ("POST", "/v1/complaints"),
    ("POST", "/v1/complaints/0b5e4c1e-54a4-4d7e-9c1e-6a51b1f0c2d3/assign"),
    ("PUT", "/v1/institutions/X1"),
]


@pytest.mark.parametrize("body", NOT_JSON_BODIES.values(), ids=NOT_JSON_BODIES)
@pytest.mark.parametrize(("method", "path"), ROUTES_TAKING_A_BODY)
def test_a_body_that_is_not_json_is_a_422_problem_naming_the_body(
    method: str, path: str, body: bytes
) -> None:
    response = _client_without_a_database().request(
        method,
        path,
        content=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("body", "json_invalid")]
