"""The commands on a case, `POST /v1/complaints/{case_id}/{command}`, the short way.

Under load FastAPI's routing, dependency injection and body validation machinery cost the server
more CPU than the command itself (bench/results/profiles/commands.txt). This middleware answers
the requests it can answer exactly as the routes would, with the routes' own code
(`complaint_commands.run_command`): a bearer token this process has seen valid, a JSON body its
model accepts, well-formed headers. A remembered token is confirmed again in the command's
transaction (`tokens.TokenCheck`), so a revoked one acts no more, and costs no round trip of its
own. Everything else goes on to the routes untouched, its body replayed: every refusal of bad
input (401, 422, ...) keeps one definition, the routes'. Refusals raised while a command runs are
answered by the app's own exception handlers, as for a route.
"""

import re
from collections import deque
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from complaintcore.api.auth import bearer_token_of
from complaintcore.api.routes.complaint_commands import (
    CASE_ID_PATTERN,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    IDEMPOTENCY_KEY_PATTERN,
    run_command,
)
from complaintcore.application.complaint_service import ActorNotConfirmed
from complaintcore.auth.principals import Principal
from complaintcore.auth.tokens import SeenTokens, TokenCheck, principal_for_token

PREFIX = "/v1/complaints/"
_CASE_ID = re.compile(CASE_ID_PATTERN)
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


class CommandLane:
    """ASGI middleware: see the module docstring. `bodies` maps a command's last path segment
    to its body model."""

    def __init__(self, app: ASGIApp, bodies: Mapping[str, type[BaseModel]]) -> None:
        self.app = app
        self._bodies = dict(bodies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_type = self._body_type(scope)
        if body_type is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _receive_whole(receive)
        receive = _replaying(messages, receive)
        response = None
        if body is not None:
            response = await self._answer(Request(scope, receive), body_type, body)
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def _body_type(self, scope: Scope) -> type[BaseModel] | None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return None
        path: str = scope["path"]
        if not path.startswith(PREFIX):
            return None
        case_id, _, command = path[len(PREFIX) :].partition("/")
        body_type = self._bodies.get(command)
        if body_type is None or not _CASE_ID.fullmatch(case_id):
            return None
        return body_type

    async def _answer(
        self, request: Request, body_type: type[BaseModel], raw_body: bytes
    ) -> Response | None:
        """The command's response; None for a request the routes should answer."""
        headers = request.headers
        idempotency_key = headers.get("idempotency-key")
        if idempotency_key is not None and not _good_idempotency_key(idempotency_key):
            return None
        if not _is_json(headers.get("content-type")):
            return None
        body = _valid_body(body_type, raw_body)
        if body is None:
            return None
        seen: SeenTokens = request.app.state.seen_tokens
        check = seen.check_for(bearer_token_of(headers.get("authorization")))
        if check is None:
            return None
        case_id = request.scope["path"][len(PREFIX) :].partition("/")[0]
        try:
            principal, confirmation = await self._principal(request, check, idempotency_key)
            if principal is None:
                return None
            return await run_command(
                request,
                principal,
                case_id,
                body,
                headers.get("if-match"),
                idempotency_key,
                confirmation,
            )
        except ActorNotConfirmed:
            # Revoked (or changed) since it was seen: the routes authenticate it afresh.
            seen.forget(check.token_hash)
            return None
        except Exception as error:
            return await _handled(request, error)

    @staticmethod
    async def _principal(
        request: Request, check: TokenCheck, idempotency_key: str | None
    ) -> tuple[Principal | None, TokenCheck | None]:
        """The principal to act for, and what its command's transaction must confirm.

        A command with an `Idempotency-Key` may be answered from its stored response before
        any transaction: its token is looked up first, as the routes do."""
        if idempotency_key is None:
            return check.principal, check
        token = bearer_token_of(request.headers.get("authorization"))
        principal = await principal_for_token(request.app.state.pool, token)
        if principal != check.principal:
            request.app.state.seen_tokens.forget(check.token_hash)
            return None, None
        return principal, None


async def _receive_whole(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the request as received, and its body (None if the client left)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """`receive` as if nothing had been read from it yet."""
    pending = deque(messages)

    async def replayed() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replayed


def _good_idempotency_key(key: str) -> bool:
    return len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH and _IDEMPOTENCY_KEY.fullmatch(key) is not None


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip().lower() == "application/json"


def _valid_body(body_type: type[BaseModel], raw_body: bytes) -> BaseModel | None:
    """The body as its route would validate it (JSON in Python mode); None when in doubt.

    orjson takes only standard JSON in UTF-8, which the json module reads to the same values."""
    try:
        return body_type.model_validate(orjson.loads(raw_body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


async def _handled(request: Request, error: Exception) -> Response:
    """`error` answered by the app's handler for it, as a route's would be; an error with no
    handler of its own goes on to the server error middleware (500)."""
    app: FastAPI = request.app
    handlers: dict[Any, Any] = app.exception_handlers
    for error_type in type(error).__mro__:
        if error_type is Exception:
            break
        handler = handlers.get(error_type)
        if handler is not None:
            response: Response = await handler(request, error)
            return response
    raise error
