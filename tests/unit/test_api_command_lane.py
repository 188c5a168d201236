"""The command lane reads a request's token and body as the routes do, or leaves it to them."""

import json
from typing import Any

import pytest
from fastapi.dependencies.utils import request_body_to_args
from starlette.requests import Request

from complaintcore.api.app import create_app
from complaintcore.api.auth import bearer_token, bearer_token_of
from complaintcore.api.command_lane import _valid_body, command_route_contexts
from complaintcore.application.requests.complaints import NotifyBody
from complaintcore.infra.settings import Settings

NOTIFY = next(
    context
    for context in command_route_contexts(
        create_app("postgresql://lane-test.invalid/unused", Settings.model_construct()).routes
    )
    if context.path_format.endswith("/notify")
)
BODY_FIELD = NOTIFY.body_field

NOTICE = '{"method": "sms", "notified_on": "2026-11-20", "proof_ref": "SMS-1"}'


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer cc_abc",
        "bearer cc_abc",
        "BEARER  cc_abc ",
        "Bearer",
        "Bearer ",
        "Basic cc_abc",
        "cc_abc",
        "",
        "Bearer cc_abc extra",
    ],
)
async def test_the_token_is_what_fastapis_bearer_scheme_reads(authorization: str) -> None:
    request = Request({"type": "http", "headers": [(b"authorization", authorization.encode())]})
    credentials = await bearer_token(request)
    expected = credentials.credentials if credentials is not None else ""
    assert bearer_token_of(authorization) == expected


async def route_reading(raw: bytes) -> Any | None:
    """What the route makes of a JSON body: `json.loads` (`Request.json`), then FastAPI's own
    `request_body_to_args` with the route's body parameters."""
    try:
        received = json.loads(raw)
    except ValueError:
        return None
    values, errors = await request_body_to_args(
        NOTIFY.dependant.body_params, received, embed_body_fields=False
    )
    return None if errors else values["body"]


@pytest.mark.parametrize(
    "raw",
    [
        f'{{"subject": "progress", "notice": {NOTICE}}}',
        f'{{"subject": "progress", "notice": {NOTICE}, "summary": "  处理进展  "}}',
        f'{{"subject": "progress", "subject": "acceptance", "notice": {NOTICE}}}',
        f'\ufeff{{"subject": "progress", "notice": {NOTICE}}}',
        f'{{"subject": "progress", "notice": {NOTICE}, "summary": "\\ud800"}}',
        '{"subject": "progress", "notice": {"unreachable": true, "attempts": NaN}}',
        '{"subject": "progress", "notice": {"unreachable": true, "attempts": 1e400}}',
        '{"subject": "progress", "notice": {"unreachable": true, "attempts": 1.0}}',
        '{"subject": "progress", "notice": {"unreachable": 1, "attempts": 2}}',
        f'{{"subject": "progress", "notice": {NOTICE}, "extra": null}}',
        f'[{{"subject": "progress", "notice": {NOTICE}}}]',
        '"progress"',
        "",
        "{",
    ],
)
async def test_a_body_is_taken_only_as_the_route_would_take_it(raw: str) -> None:
    encoded = raw.encode("utf-8", "surrogatepass")
    taken = _valid_body(BODY_FIELD, encoded)
    by_route = await route_reading(encoded)
    assert taken is None or taken == by_route
    if by_route is None:
        assert taken is None


async def test_a_plain_valid_body_is_taken() -> None:
    raw = f'{{"subject": "progress", "notice": {NOTICE}, "summary": " 处理进展 "}}'.encode()
    taken = _valid_body(BODY_FIELD, raw)
    assert isinstance(taken, NotifyBody)
    assert taken == await route_reading(raw)
    assert taken.summary == "处理进展"
