"""openapi.yaml documents every answer the app gives (API.md: it "is the full, authoritative
description and must equal what the running app serves"). Found by a review pass comparing
API.md, openapi.yaml and the live app: the 410 every command answers on an erased case, the 413
of a body over the limit, the `Location` of a new webhook subscription, none documented; a 403
documented on the case reads, which never answer one.
"""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api_support import app_client, complaint, days_ago, notice
from projection_support import tree_and_tokens

OPENAPI = yaml.safe_load((Path(__file__).resolve().parents[2] / "openapi.yaml").read_text())
PROBLEM_JSON = "application/problem+json"

PRINCIPALS = {
    "staff_a": ("staff-a1", "staff", "BR-A"),
    "staff_b": ("staff-b1", "staff", "BR-B"),
    "sup_a": ("sup-a1", "supervisor", "BR-A"),
    "sup_b": ("sup-b1", "supervisor", "BR-B"),
    "regulator": ("reg-1", "regulator", None),
    "admin": ("admin-1", "admin", None),
}

# Every command route of API.md "Commands" and "Internal control commands" (and `notify`,
# DOMAIN.md's extra command): each runs through `ComplaintService.handle`, whose decider refuses
# any command on an erased case with `personal_data_erased`, answered 410.
COMMAND_ROUTES = [
    "assign",
    "recuse",
    "extend",
    "pause",
    "resume",
    "supplement",
    "merge",
    "decide",
    "notify",
    "appeal",
    "decide-review",
    "withdraw",
    "decline",
    "flag-major",
    "approve-redress",
    "attribute",
    "rectify",
    "follow-up",
]


class Api:
    def __init__(self, client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    async def get(self, who: str, url: str) -> httpx.Response:
        return await self.client.get(url, headers=self.headers(who))

    async def post(self, who: str, url: str, body: Any = None) -> httpx.Response:
        return await self.client.post(url, json=body, headers=self.headers(who))


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    # webhooks to a loopback receiver (COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS)
    from complaintcore.infra.settings import get_settings

    settings = get_settings().model_copy(update={"webhook_allow_hosts": "127.0.0.1"})
    tokens = await tree_and_tokens(database_url, PRINCIPALS)
    async with app_client(database_url, settings) as client:
        yield Api(client, tokens)


def documented_statuses(method: str, path: str) -> set[str]:
    return set(OPENAPI["paths"][path][method]["responses"])


async def erased_case(api: Api) -> str:
    """A case received and withdrawn six years ago, its retention (5 years) over, erased."""
    response = await api.post("staff_a", "/v1/complaints", complaint(received_days_ago=6 * 366))
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    withdrawn = await api.post(
        "staff_a",
        f"/v1/complaints/{case_id}/withdraw",
        {"received_on": days_ago(6 * 366 - 1)},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    erased = await api.post(
        "admin",
        f"/v1/complaints/{case_id}/erase-personal-data",
        {"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"},
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["personal_data"] == "erased"
    return case_id


# --- 1. openapi.yaml leaves out the 410 every command answers on an erased case ----------------


async def test_every_command_route_documents_the_410_it_answers_once_the_case_is_erased(
    api: Api,
) -> None:
    """API.md: "`openapi.yaml` ... is the full, authoritative description and must equal what the
    running app serves". Every command on an erased case answers 410 `personal_data_erased`
    (README "Personal data", Erasure: "the reveal answers 410 ... and every command 410"), but
    only `erase-personal-data` and `personal-data` list a 410 in openapi.yaml: the 18 command
    routes list 200, 401, 403, 404, 409, 412, 422, 503, so a client generated from the file has
    no model for the answer it gets."""
    case_id = await erased_case(api)
    bodies = {
        "notify": {"subject": "acceptance", "notice": notice(days_ago(0))},
        "assign": {"handler_id": "staff-a1"},
        "withdraw": {},
        "approve-redress": {"up_to_fen": 100, "note": "n"},
    }
    for command, body in bodies.items():
        who = "sup_a" if command == "approve-redress" else "staff_a"
        response = await api.post(who, f"/v1/complaints/{case_id}/{command}", body)
        assert response.status_code == 410, (command, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.json()["code"] == "personal_data_erased"

    undocumented = [
        command
        for command in COMMAND_ROUTES
        if "410" not in documented_statuses("post", f"/v1/complaints/{{case_id}}/{command}")
    ]
    assert undocumented == [], f"410 answered but not in openapi.yaml for: {undocumented}"


# --- 2. openapi.yaml documents API.md's 413 on no route --------------------------------------


async def test_the_413_api_md_names_for_large_bodies_is_in_openapi(api: Api) -> None:
    """API.md "Conventions": "A body larger than 1 MiB (a setting) gets 413 before it is read."
    The app does answer 413 `payload_too_large` (problem+json), but no operation of openapi.yaml
    lists a 413, not even the routes that take a body."""
    body = json.dumps({"claims": "x" * (1024 * 1024 + 1)}).encode()
    response = await api.client.post(
        "/v1/complaints",
        content=body,
        headers=api.headers("staff_a", **{"Content-Type": "application/json"}),
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "payload_too_large"

    with_a_body = [
        (method, path)
        for path, item in OPENAPI["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert with_a_body, "openapi.yaml lists no route with a body?"
    missing = [f"{m.upper()} {p}" for m, p in with_a_body if "413" not in documented_statuses(m, p)]
    assert missing == [], f"413 not documented for: {missing}"


# --- 3. POST /v1/webhooks answers 201 without Location ---------------------------------------


async def test_a_webhook_created_201_says_where_it_is(api: Api) -> None:
    """The app's own convention for 201 (API.md: `POST /v1/complaints` "201 + `Location`"; so do
    `PUT /v1/institutions/{code}` and `PUT /v1/calendars/{year}` when they create), and RFC 9110
    15.3.2 (a 201 without Location names the request target, `/v1/webhooks`, as the resource
    created). `POST /v1/webhooks` answers 201 with no Location, and openapi.yaml documents
    none."""
    response = await api.post(
        "admin",
        "/v1/webhooks",
        {"url": "http://127.0.0.1:9/hook", "institution": "BR-A", "events": ["*"]},
    )
    assert response.status_code == 201, response.text
    webhook_id = response.json()["id"]
    assert response.headers.get("location") == f"/v1/webhooks/{webhook_id}", dict(response.headers)
    assert "Location" in (
        OPENAPI["paths"]["/v1/webhooks"]["post"]["responses"]["201"].get("headers") or {}
    ), "openapi.yaml documents no Location on the webhook's 201"


# --- 4. openapi.yaml lists a 403 the case reads never answer ----------------------------------


async def test_case_reads_document_only_statuses_they_can_answer(api: Api) -> None:
    """openapi.yaml lists 403 for `GET /v1/complaints/{case_id}`, `/events` and `/audit`, but
    no role is ever refused there: every role reads a case of its subtree (staff, supervisors)
    or any case (regulators, admins), and a case outside one's subtree is 404 (API.md). A
    documented status that cannot occur (cosmetic; generated clients carry a dead branch)."""
    response = await api.post("staff_a", "/v1/complaints", complaint())
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    for suffix in ("", "/events", "/audit"):
        for who in PRINCIPALS:
            read = await api.get(who, f"/v1/complaints/{case_id}{suffix}")
            assert read.status_code in (200, 404), (who, suffix, read.text)
    documented_but_never = [
        path
        for path in (
            "/v1/complaints/{case_id}",
            "/v1/complaints/{case_id}/events",
            "/v1/complaints/{case_id}/audit",
        )
        if "403" in documented_statuses("get", path)
    ]
    assert documented_but_never == [], f"403 documented, never answered: {documented_but_never}"
