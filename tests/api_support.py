"""Request bodies and response checks shared by the HTTP tests (importable as `api_support`)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx

from complaintcore.application.business_day import shanghai_today

TODAY = shanghai_today()
NOTICE = {"method": "sms", "proof_ref": "SMS-1"}


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


# A company complainant, every field a legal person has (DOMAIN.md "Receiving a complaint").
COMPANY = {
    "kind": "legal_person",
    "name": "福州某某贸易有限公司",
    "address": "福州市鼓楼区某路1号",
    "unified_social_credit_code": "91350100M000100Y43",
    "legal_representative_name": "李四",
    "legal_representative_contact": "13900001111",
}


def complaint(institution: str = "BR-A", received_days_ago: int = 1, **extra: Any) -> dict:
    body = {
        "respondent_institution": institution,
        "channel": "phone",
        "received_on": days_ago(received_days_ago),
        "complainant": {
            "kind": "natural_person",
            "name": "张三",
            "id_type": "resident_id",
            "id_number": "11010519491231002X",
            "contact": "13800138000",
        },
        "claims": "退还信用卡年费",
        "facts": "未经同意扣收年费",
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        "respondent_staff": [{"staff_id": "staff-a2", "name": "李四"}],
    }
    body.update(extra)
    return body


def notice(on: str) -> dict:
    return {**NOTICE, "notified_on": on}


def receive(client: httpx.Client, **kwargs: Any) -> dict:
    response = client.post("/v1/complaints", json=complaint(**kwargs))
    assert response.status_code == 201, response.text
    return response.json()


def post(
    client: httpx.Client, case: dict, command: str, body: dict, **headers: str
) -> httpx.Response:
    return client.post(f"/v1/complaints/{case['id']}/{command}", json=body, headers=headers)


def ok(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, code: str, status: int = 409) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code, problem
    assert problem["status"] == status
    return problem


def decision(on: str, handler: str = "staff-a1") -> dict:
    return {
        "handler_id": handler,
        "outcome": "partially_upheld",
        "findings": "未提示",
        "basis": "章程",
        "redress_fen": 30000,
        "remedies": ["review", "litigation"],
        "notice": notice(on),
    }


@asynccontextmanager
async def app_client(
    database_url: str, settings: Any = None, **client_options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """The app made for `database_url` (with `settings`, else the environment's), started (its
    lifespan), with a client that calls it in process (no socket)."""
    async with (
        started_app(database_url, settings) as app,
        asgi_client(app, **client_options) as client,
    ):
        yield client


@asynccontextmanager
async def started_app(
    database_url: str, settings: Any = None, **options: Any
) -> AsyncIterator[Any]:
    """The app made for `database_url` (`create_app`'s `settings` and `options`), started."""
    from complaintcore.api.app import create_app

    app = create_app(database_url, settings, **options)
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def asgi_client(app: Any, **client_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client that calls the (started) `app` in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://cc.test", **client_options
    ) as client:
        yield client
