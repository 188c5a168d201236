"""Bad input (TARGETS.md "Reliability"): schemathesis drives every operation of the root
`openapi.yaml` against the live service. No request may get a 5xx, no request the document calls
invalid may be accepted, and every answer must be one the document declares: its status code,
content type, headers and body.

Generated data alone would meet little but unknown ids: so one valid case id in two is swapped for
a real case of the caller's branch (a fresh one for a command, a decided and reviewed one for a
query), and one valid receipt in two names that branch. The commands then reach the domain rules,
and the case bodies show their decision and review parts.
"""

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
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
# The admin routes, and the feed (regulators and admins): everything else as a branch's staff.
ADMIN_OPERATIONS = {"put_institution", "put_calendar_year", "read_event_feed"}
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
