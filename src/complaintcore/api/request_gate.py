"""What a request must pass before anything reads its body (API.md "Conventions").

- No NUL in its path or query string (PostgreSQL's text cannot hold one, and no value of the
  contract contains one): 422, whatever the route.
- A body no larger than the limit (`COMPLAINTCORE_MAX_BODY_BYTES`): 413 before it is read when
  `Content-Length` says so, and as soon as the limit is crossed when it does not (chunked).
- For a `/v1` request that may carry a body, a bearer token that stands for a principal: 401
  before the body is read, so an anonymous caller cannot make the server read megabytes. A token
  this process saw valid lately passes without a round trip; the route or the command lane
  confirms it again, as for every request.
"""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from complaintcore.api.auth import bearer_token_of, missing_token, unknown_token
from complaintcore.api.problems import (
    DATABASE_DOWN,
    FieldProblem,
    Problem,
    database_unavailable,
    http_problem,
    invalid,
    problem_response,
)
from complaintcore.auth.tokens import principal_for_token

_METHODS_WITHOUT_BODY = frozenset({"GET", "HEAD", "OPTIONS"})
_NUL_ESCAPES = (b"%00", b"\x00")


class BodyTooLarge(HTTPException):
    """Raised by `receive` once the body crosses the limit; the app's handler for HTTP errors
    answers it (413 problem+json), or the gate does when it reaches it first."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is larger than {limit} bytes.",
            headers={"Connection": "close"},
        )


class RequestGate:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _nul_in(scope) or self._too_large(scope) or await _unauthenticated(scope)
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _limited(receive, self.max_body_bytes), tracked_send)
        except BodyTooLarge as error:
            if started:
                raise
            await problem_response(_problem_of(error))(scope, receive, send)

    def _too_large(self, scope: Scope) -> Problem | None:
        declared = _header(scope, b"content-length")
        if declared is None or not declared.isdigit() or int(declared) <= self.max_body_bytes:
            return None
        return _problem_of(BodyTooLarge(self.max_body_bytes))


def _problem_of(error: BodyTooLarge) -> Problem:
    return http_problem(error.status_code, error.detail, error.headers)


def _nul_in(scope: Scope) -> Problem | None:
    query: bytes = scope.get("query_string", b"")
    if any(escape in query.lower() for escape in _NUL_ESCAPES):
        where = "query"
    elif "\x00" in scope["path"]:
        where = "path"
    else:
        return None
    return invalid(
        [FieldProblem(field=where, code="nul_character", message="NUL is not allowed here")]
    )


async def _unauthenticated(scope: Scope) -> Problem | None:
    """401 for a `/v1` request that may carry a body and has no valid token; None otherwise."""
    if scope["method"] in _METHODS_WITHOUT_BODY or not scope["path"].startswith("/v1/"):
        return None
    token = bearer_token_of(_header(scope, b"authorization"))
    if not token:
        return missing_token()
    state = scope["app"].state
    if state.seen_tokens.check_for(token) is not None:
        return None
    try:
        principal = await principal_for_token(state.pool, token, state.seen_tokens)
    except DATABASE_DOWN:
        return database_unavailable()
    return unknown_token() if principal is None else None


def _limited(receive: Receive, limit: int) -> Receive:
    """`receive`, raising `BodyTooLarge` once more than `limit` body bytes have come."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return limited


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
