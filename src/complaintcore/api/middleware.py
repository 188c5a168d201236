"""Per-request correlation id, one access log line (method, path, status, time; no bodies), the
request's count and latency (api/metrics.py), and the 500 answer to an error nothing else
handled."""

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from complaintcore.api.metrics import ANSWERED_BY_THE_PROTOCOL, observe_request
from complaintcore.api.problems import internal_error, problem_response
from complaintcore.domain.identity import looks_like_a_personal_number, personal_numbers_redacted

CORRELATION_HEADER = "x-correlation-id"
_SAFE_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")

log = structlog.get_logger("complaintcore.http")


class CorrelationIdMiddleware:
    """Binds a correlation id (the caller's, if well-formed, else a new one) to every log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = _correlation_id(scope)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        began = time.perf_counter()
        status = 500
        started = False

        async def send_with_header(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                headers = list(message.get("headers", []))
                headers.append((CORRELATION_HEADER.encode(), correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            try:
                await self.app(scope, receive, send_with_header)
            except Exception as error:
                # Answered here rather than by Starlette's outermost handler, so the 500 carries
                # the correlation id and the connection stays open; raised on only when the
                # response had started and can no longer be replaced.
                if started:
                    raise
                log.exception("unexpected error", error=type(error).__name__)
                await problem_response(internal_error())(scope, receive, send_with_header)
            finally:
                elapsed = time.perf_counter() - began
                status = scope.get(ANSWERED_BY_THE_PROTOCOL, status)
                observe_request(scope, status, elapsed)
                log.info(
                    "request",
                    method=scope["method"],
                    # a client may type a personal number into a path (found by a review pass)
                    path=personal_numbers_redacted(scope["path"]),
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )


def _correlation_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key == CORRELATION_HEADER.encode():
            candidate = value.decode("latin-1")
            # one bound to every log line and stored in each event's metadata: never a
            # personal number (found by a review pass)
            if _SAFE_CORRELATION_ID.match(candidate) and not looks_like_a_personal_number(
                candidate
            ):
                return candidate
    return uuid.uuid4().hex


class HeadAsGet:
    """HEAD answered as GET is, without the body (RFC 9110 9.1 and 9.3.2: a general-purpose
    server supports both; FastAPI's routes take GET alone, so `curl -I /healthz` or a
    balancer's HEAD probe got 405: found by a review pass). Its headers are GET's, Content-Length
    included; a 405 that allows GET allows HEAD too. The scope is changed in place and put back,
    so the access log and the metrics see the HEAD and the route it matched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                message = {**message, "headers": _head_allowed_with_get(message["headers"])}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        if head:
            scope["method"] = "GET"
        try:
            await self.app(scope, receive, answer)
        finally:
            if head:
                scope["method"] = "HEAD"


def _head_allowed_with_get(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    allowed = []
    for name, value in headers:
        methods = [method.strip() for method in value.split(b",")]
        if name.lower() == b"allow" and b"GET" in methods and b"HEAD" not in methods:
            value = b", ".join([*methods, b"HEAD"])
        allowed.append((name, value))
    return allowed
