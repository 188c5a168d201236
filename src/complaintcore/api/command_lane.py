"""The commands on a case, `POST /v1/complaints/{case_id}/{command}`, the short way.

Under load FastAPI's routing, dependency injection and body validation machinery cost the server
more CPU than the command itself (bench/results/profiles/commands.txt). This middleware answers
the requests it can answer exactly as the routes would, with the routes' own code
(`complaint_commands.run_command`): a bearer token this process has seen valid, a JSON body its
model accepts, well-formed headers. A remembered token is confirmed again in the command's
transaction (`tokens.TokenCheck`), so a revoked one acts no more, and costs no round trip of its
own: confirmed as of the start of the statement that takes the case's lock, so a command already
waiting for that lock when its token is revoked finishes, as any request under way does.
Everything else goes on to the routes untouched, its body replayed: every refusal of bad input
(401, 422, ...) keeps one definition, the routes'. Refusals raised while a command runs are
answered by the app's own exception handlers, as for a route.

What it answers is read from the router once, when the middleware stack is built (`Command`):
the routes whose endpoint `complaint_commands._command_route` made, each with its path pattern
(and the routes before it that the router would try first), its path and header parameters, its
body field and its content-type strictness; the parameters are validated by the routes' own
pydantic fields. A route whose endpoint or its dependencies take anything the lane does not fill
(`HANDLED`) is left to the router: `why_not_taken` says why, and tests/unit/
test_command_lane_derivation.py fails while any command route is left so.

Why one file of 500 lines: the lane's derivation from the router and its answering of requests
are one contract with the routes; split, a reader could change one half without the other.
"""

import email.message
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

import orjson
from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_validation_alias
from fastapi.routing import APIRoute, APIRouter, RouteContext, iter_route_contexts
from fastapi.security.base import SecurityBase
from starlette.convertors import FloatConvertor, IntegerConvertor, StringConvertor, UUIDConvertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from complaintcore.api.auth import authenticate, bearer_token, bearer_token_of
from complaintcore.api.routes.complaint_commands import is_command_endpoint, run_command
from complaintcore.application.complaint_service import ActorNotConfirmed
from complaintcore.application.requests.json_numbers import loads_exact
from complaintcore.auth.tokens import SeenTokens

# The command endpoint's parameters, each filled by the lane as `solve_dependencies` would.
CASE_ID, REQUEST, PRINCIPAL, BODY, IF_MATCH, IDEMPOTENCY_KEY = (
    "case_id",
    "request",
    "principal",
    "body",
    "if_match",
    "idempotency_key",
)

Shape = frozenset[tuple[Any, ...]]

_PARAMETER = re.compile(r"{([^}]*)}")
_ONE_SEGMENT = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)
_IMMUTABLE = (NoneType, str, bytes, int, float, bool)

HANDLED: Shape = frozenset(
    {
        ("path", CASE_ID),  # validated by the route's field, passed as is
        ("request", REQUEST),
        # `authenticate`, its bearer token read with `bearer_token_of`: a token seen valid,
        # confirmed in the first round trip of the command (before any stored answer is replayed)
        (
            "depends",
            PRINCIPAL,
            authenticate,
            frozenset(
                {
                    ("request", "request"),
                    (
                        "security",
                        "credentials",
                        bearer_token,
                        frozenset({("http_connection", "request")}),
                    ),
                }
            ),
        ),
        ("body", BODY),  # JSON, validated by the route's body field
        ("header", IF_MATCH),  # validated by the route's field, passed as is
        ("header", IDEMPOTENCY_KEY),  # likewise
    }
)
"""What the lane fills of a command endpoint, as `dependency_shape` describes a route's."""

_PARAMETER_KINDS = (
    ("request", "request_param_name"),
    ("websocket", "websocket_param_name"),
    ("http_connection", "http_connection_param_name"),
    ("response", "response_param_name"),
    ("background_tasks", "background_tasks_param_name"),
    ("security_scopes", "security_scopes_param_name"),
)


def dependency_shape(dependant: Dependant) -> Shape:
    """Everything FastAPI fills for `dependant` (`solve_dependencies`): its path, query, header,
    cookie and body parameters and its special ones (request, response, ...) by name, its
    security scopes, and each sub-dependency, security schemes among them, with its own shape."""
    shape: set[tuple[Any, ...]] = set()
    for kind, fields in (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
        ("header", dependant.header_params),
        ("cookie", dependant.cookie_params),
        ("body", dependant.body_params),
    ):
        shape.update((kind, field.name) for field in fields)
    for kind, attribute in _PARAMETER_KINDS:
        name = getattr(dependant, attribute)
        if name is not None:
            shape.add((kind, name))
    if dependant.own_oauth_scopes:
        shape.add(("scopes", tuple(dependant.own_oauth_scopes)))
    for sub in dependant.dependencies:
        kind = "security" if isinstance(sub.call, SecurityBase) else "depends"
        shape.add((kind, sub.name, sub.call, dependency_shape(sub)))
    return frozenset(shape)


def described(shape: Shape) -> str:
    """`shape` in words: `header if_match`, `depends principal=authenticate(request request)`."""

    def entry(item: tuple[Any, ...]) -> str:
        if len(item) == 2:
            return f"{item[0]} {item[1]}"
        kind, name, call, sub = item
        call_name = getattr(call, "__qualname__", type(call).__qualname__)
        return f"{kind} {name}={call_name}({described(sub)})"

    return ", ".join(sorted(map(entry, shape))) or "nothing"


def command_route_contexts(routes: Sequence[BaseRoute]) -> list[RouteContext]:
    """The command routes among `routes` (included routers' too), as the router serves them."""
    return [
        context
        for context in iter_route_contexts(routes)
        if isinstance(context.original_route, APIRoute)
        and is_command_endpoint(context.original_route.endpoint)
    ]


@dataclass(frozen=True, slots=True)
class _Param:
    """A path or header parameter of a route, read as `request_params_to_args` reads a plain
    (one name, one `str`) one."""

    name: str
    key: str
    field: Any  # fastapi's ModelField
    loc: tuple[str, str]
    absent: tuple[bool, Any] | None
    """What reading it comes to when the request lacks it, when that is known beforehand."""

    @classmethod
    def of(cls, field: Any, where: str) -> "_Param":
        key = get_validation_alias(field)
        info = field.field_info
        absent: tuple[bool, Any] | None = None
        if info.is_required():
            absent = (False, None)
        elif not info.validate_default and isinstance(field.default, _IMMUTABLE):
            absent = (True, field.default)  # deepcopy would give it back as is
        return cls(field.name, key, field, (where, key), absent)

    def read(self, source: Mapping[str, str]) -> tuple[bool, Any]:
        """(True, its value) as the route validates it; (False, None) for what it refuses."""
        raw: Any = source.get(self.key)
        if raw is None:
            if self.absent is not None:
                return self.absent
            raw = deepcopy(self.field.default)
            if not self.field.field_info.validate_default:
                return True, raw
        value, errors = self.field.validate(raw, {}, loc=self.loc)
        return not errors, value


def _is_plain(field: Any) -> bool:
    """A `str` (or `str | None`) parameter with one name: `request_params_to_args` reads it
    with `.get(alias)`, no list, model or alias choices."""
    annotation = field.field_info.annotation
    members = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else ()
    return (
        (annotation is str or (str in members and set(members) <= {str, NoneType}))
        and isinstance(field.field_info.validation_alias, str | None)
        and not field.config
    )


@dataclass(frozen=True, slots=True)
class Command:
    """A command route as the lane answers it, read from the router at start-up."""

    route: APIRoute
    path_format: str
    """Its path as the router serves it, `/v1/complaints/{case_id}/assign`."""
    matches: Callable[[Scope], tuple[Match, Scope]]
    before: tuple[Callable[[Scope], tuple[Match, Scope]], ...]
    """The routes the router tries first that could take the same requests."""
    path_params: tuple[_Param, ...]
    header_params: tuple[_Param, ...]
    body: Any  # fastapi's ModelField
    strict_content_type: bool
    overrides_of: Any  # the app, whose dependency_overrides the lane does not apply

    def match(self, scope: Scope) -> dict[str, Any] | None:
        """The path parameters when the router would give `scope` to this route, else None."""
        match, child_scope = self.matches(scope)
        if match is not Match.FULL:
            return None
        for earlier in self.before:
            if earlier(scope)[0] is Match.FULL:
                return None
        path_params: dict[str, Any] = child_scope["path_params"]
        return path_params


def why_not_taken(context: RouteContext) -> str | None:
    """Why the lane must leave a command route to the router; None when it can answer it."""
    shape = dependency_shape(context.dependant)
    if shape != HANDLED:
        return (
            f"it takes {described(shape - HANDLED)}, which the lane does not fill,"
            f" instead of {described(HANDLED - shape)}"
        )
    body_params = context.dependant.body_params
    if context.body_field is not body_params[0] or isinstance(
        body_params[0].field_info, params.Form
    ):
        return "its body is not one JSON body parameter"
    params_ = [*context.dependant.path_params, *context.dependant.header_params]
    if not all(map(_is_plain, params_)):
        return "a path or header parameter is not a plain `str`"
    if context.max_body_size is not None:
        return "it has a body size limit of its own"
    return None


def read_commands(
    routes: Sequence[BaseRoute],
) -> tuple[list[Command], list[tuple[RouteContext, str]]]:
    """The command routes the lane answers, and those it leaves to the router with why."""
    commands: list[Command] = []
    left: list[tuple[RouteContext, str]] = []
    contexts = list(iter_route_contexts(routes))
    for index, context in enumerate(contexts):
        route = context.original_route
        if not (isinstance(route, APIRoute) and is_command_endpoint(route.endpoint)):
            continue
        reason = why_not_taken(context)
        if reason is not None:
            left.append((context, reason))
            continue
        # the router takes the first route that matches a request fully, method included
        before = tuple(
            earlier.matches
            for earlier in contexts[:index]
            if (earlier.methods is None or earlier.methods & route.methods)
            and _may_take_the_same_paths(earlier, context)
        )
        commands.append(_command(context, before))
    return commands, left


def _segments(context: RouteContext) -> list[str | None] | None:
    """A route's whole path a segment at a time, None for one a parameter fills; None for a
    route that is not matched on a whole path (a mount, ...) or with a parameter that may span
    segments (`{rest:path}`, a convertor of one's own)."""
    if not isinstance(context.original_route, Route):
        return None
    path_format: str = context.path_format
    convertors = context.param_convertors
    segments: list[str | None] = []
    for segment in path_format.split("/"):
        names = _PARAMETER.findall(segment)
        if not names:
            segments.append(segment)
        elif all(type(convertors.get(name)) in _ONE_SEGMENT for name in names):
            segments.append(None)
        else:
            return None
    return segments


def _may_take_the_same_paths(earlier: RouteContext, command: RouteContext) -> bool:
    """False when no path can match both routes: as many segments, and where both are fixed,
    the same."""
    mine, theirs = _segments(command), _segments(earlier)
    if mine is None or theirs is None:
        return True
    return len(mine) == len(theirs) and all(
        a is None or b is None or a == b for a, b in zip(mine, theirs, strict=True)
    )


def _command(context: RouteContext, before: tuple[Any, ...]) -> Command:
    strict = context.strict_content_type
    if isinstance(strict, DefaultPlaceholder):
        strict = strict.value
    return Command(
        route=context.original_route,
        path_format=context.path_format,
        matches=context.matches,
        before=before,
        path_params=tuple(_Param.of(field, "path") for field in context.dependant.path_params),
        header_params=tuple(
            _Param.of(field, "header") for field in context.dependant.header_params
        ),
        body=context.body_field,
        strict_content_type=bool(strict),
        overrides_of=context.dependency_overrides_provider,
    )


class CommandLane:
    """ASGI middleware: see the module docstring. `router` is the app's, read when the
    middleware stack is built (all routes included by then)."""

    def __init__(self, app: ASGIApp, router: APIRouter) -> None:
        self.app = app
        commands, left = read_commands(router.routes)
        self.commands = commands
        self.left = left  # to the router, each with why: tests see that there are none
        # Looked up by the path's last segment (when the route's is fixed), then matched whole.
        self._by_tail: dict[str, list[Command]] = {}
        self._anywhere: list[Command] = []
        for command in commands:
            tail = command.path_format.rpartition("/")[2]
            if "{" in tail:
                self._anywhere.append(command)
            else:
                self._by_tail.setdefault(tail, []).append(command)
        self._methods = frozenset(m for c in commands for m in (c.route.methods or ()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.command_for(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        messages, body = await _receive_whole(receive)
        receive = _replaying(messages, receive)
        response = None
        if body is not None:
            command, path_params = found
            scope["route"] = command.route  # as the router would: its template for the metrics
            response = await self._answer(Request(scope, receive), command, path_params, body)
        if response is None:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    def command_for(self, scope: Scope) -> tuple[Command, dict[str, Any]] | None:
        """The command route the router would give `scope` to, and its path parameters."""
        if scope["type"] != "http" or scope["method"] not in self._methods:
            return None
        path: str = scope["path"]
        for command in (*self._by_tail.get(path[path.rfind("/") + 1 :], ()), *self._anywhere):
            path_params = command.match(scope)
            if path_params is not None:
                return command, path_params
        return None

    async def _answer(
        self, request: Request, command: Command, path_params: dict[str, Any], raw_body: bytes
    ) -> Response | None:
        """The command's response; None for a request the routes should answer."""
        if getattr(command.overrides_of, "dependency_overrides", None):
            return None
        headers = request.headers
        if not is_json_content(headers.get("content-type"), command.strict_content_type):
            return None
        values: dict[str, Any] = {}
        for params_, source in (
            (command.path_params, path_params),
            (command.header_params, headers),
        ):
            for param in params_:
                ok, value = param.read(source)
                if not ok:
                    return None
                values[param.name] = value
        body = _valid_body(command.body, raw_body)
        if body is None:
            return None
        seen: SeenTokens = request.app.state.seen_tokens
        check = seen.check_for(bearer_token_of(headers.get("authorization")))
        if check is None:
            return None
        try:
            # the command's first round trip confirms the token before it replays a stored
            # answer or decides anything
            return await run_command(
                request,
                check.principal,
                values[CASE_ID],
                body,
                values[IF_MATCH],
                values[IDEMPOTENCY_KEY],
                check,
            )
        except ActorNotConfirmed:
            # Revoked (or changed) since it was seen: the routes authenticate it afresh.
            seen.forget(check.token_hash)
            return None
        except Exception as error:
            return await _handled(request, error)


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


def is_json_content(content_type: str | None, strict: bool) -> bool:
    """Whether a route reads a body sent with `content_type` as JSON: FastAPI's test in
    `fastapi.routing.get_request_handler` (an empty or missing type is JSON only to a route
    whose `strict_content_type` is off); tests/unit/test_command_lane_derivation.py holds the
    two to the same answers."""
    if not content_type:
        return not strict
    return _is_json_media_type(content_type)


@lru_cache(maxsize=256)
def _is_json_media_type(content_type: str) -> bool:
    try:
        message = email.message.Message()
        message["content-type"] = content_type
        if message.get_content_maintype() != "application":
            return False
        subtype = message.get_content_subtype()
    except Exception:
        return False  # FastAPI answers 400: the routes' to give
    return subtype == "json" or subtype.endswith("+json")


def _valid_body(field: Any, raw_body: bytes) -> Any | None:
    """The body as its route validates it (`request_body_to_args`: the JSON in Python mode,
    by the route's body field); None when in doubt.

    orjson takes only standard JSON in UTF-8, which the json module reads to the same values."""
    try:
        value = loads_exact(raw_body)
    except orjson.JSONDecodeError:
        return None
    body, errors = field.validate(value, {}, loc=("body",))
    return None if errors else body


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
