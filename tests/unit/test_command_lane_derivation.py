"""The command lane (`api/command_lane.py`) is a second door to the command routes: it answers
what it reads from the router, and nothing the router would answer differently. A command route
that takes something the lane does not fill, or a route on a case that the lane does not know,
fails here; so does a content type, path or header the lane would read otherwise than FastAPI."""

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    Cookie,
    Depends,
    FastAPI,
    Header,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from complaintcore.api import command_lane
from complaintcore.api.app import create_app
from complaintcore.api.auth import require_role
from complaintcore.api.command_lane import (
    BODY,
    HANDLED,
    IF_MATCH,
    PRINCIPAL,
    REQUEST,
    CommandLane,
    command_route_contexts,
    dependency_shape,
    described,
    is_json_content,
    why_not_taken,
)
from complaintcore.api.command_lane import CASE_ID as CASE
from complaintcore.api.command_lane import IDEMPOTENCY_KEY as KEY
from complaintcore.api.routes import complaint_commands
from complaintcore.application.requests.complaints import COMMAND_BODIES, NotifyBody
from complaintcore.infra.settings import Settings


def new_app() -> FastAPI:
    """The service's app; its lifespan (and so the database) is never started."""
    return create_app("postgresql://lane-test.invalid/unused", Settings.model_construct())


async def unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("only the lane's table is looked at")


APP = new_app()
LANE = CommandLane(unreachable, APP.router)
COMMAND_ROUTES = command_route_contexts(APP.routes)
CASE_ID = "0b7d3e1c-2f4a-4c1e-9a8b-1234567890ab"


def request_scope(path: str, method: str = "POST") -> Scope:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def path_of(context: RouteContext, case_id: str = CASE_ID) -> str:
    path: str = context.path_format.replace("{case_id}", case_id)
    return path


def routed_to(app: FastAPI, scope: Scope) -> Any:
    """The route the app's router gives `scope` to: the first that matches it fully."""
    for context in iter_route_contexts(app.routes):
        if context.matches(scope)[0] is Match.FULL:
            return context.original_route
    return None


def taken(lane: CommandLane, scope: Scope) -> Any:
    found = lane.command_for(scope)
    return None if found is None else found[0].route


def by_name(context: RouteContext) -> str:
    return str(context.path_format)


# --- every command route is the lane's, and the lane knows them all ----------------------------


def test_the_app_has_the_command_routes() -> None:
    assert len(COMMAND_ROUTES) == len(COMMAND_BODIES) > 0


def test_the_lane_takes_every_command_route() -> None:
    assert [(by_name(context), why) for context, why in LANE.left] == []
    assert [c.route for c in LANE.commands] == [c.original_route for c in COMMAND_ROUTES]


@pytest.mark.parametrize("context", COMMAND_ROUTES, ids=by_name)
def test_a_command_route_takes_exactly_what_the_lane_fills(context: RouteContext) -> None:
    """Its endpoint's parameters and dependencies, security and sub-dependencies included,
    against the lane's list: a new `Header`, `Query`, `Depends`, ... fails here."""
    shape = dependency_shape(context.dependant)
    assert described(shape) == described(HANDLED)
    assert shape == HANDLED
    assert why_not_taken(context) is None


@pytest.mark.parametrize("context", COMMAND_ROUTES, ids=by_name)
async def test_a_command_endpoint_only_hands_its_arguments_to_run_command(
    context: RouteContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the lane does with the values it fills: `run_command` with each in its place."""
    calls: list[tuple[Any, ...]] = []
    answer = object()

    async def run_command(*args: Any) -> Any:
        calls.append(args)
        return answer

    monkeypatch.setattr(complaint_commands, "run_command", run_command)
    values = {name: object() for name in (CASE, REQUEST, PRINCIPAL, BODY, IF_MATCH, KEY)}
    assert await context.original_route.endpoint(**values) is answer
    in_order = (REQUEST, PRINCIPAL, CASE, BODY, IF_MATCH, KEY)  # run_command's parameters
    assert calls == [tuple(values[name] for name in in_order)]


def test_every_route_on_a_case_in_complaint_commands_is_a_command_route() -> None:
    """A route added to complaint_commands without `_command_route` is one the lane does not
    know: it would be answered, but only by the router."""
    on_a_case = [
        route
        for route in complaint_commands.router.routes
        if "{case_id}" in getattr(route, "path", "")
    ]
    assert on_a_case
    assert [
        route.path
        for route in on_a_case
        if not complaint_commands.is_command_endpoint(route.endpoint)
    ] == []


def test_the_lane_reads_each_commands_body_model_from_its_route() -> None:
    bodies = {
        command.path_format.rpartition("/")[2]: command.body.field_info.annotation
        for command in LANE.commands
    }
    assert bodies == COMMAND_BODIES


@pytest.mark.parametrize("context", COMMAND_ROUTES, ids=by_name)
@pytest.mark.parametrize("case_id", [CASE_ID, CASE_ID.upper(), "not-a-case-id"])
def test_the_lane_answers_a_command_path_where_the_router_sends_it(
    context: RouteContext, case_id: str
) -> None:
    scope = request_scope(path_of(context, case_id))
    assert routed_to(APP, scope) is context.original_route
    found = LANE.command_for(scope)
    assert found is not None
    command, path_params = found
    assert command.route is context.original_route
    assert path_params == {"case_id": case_id}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/complaints"),
        ("POST", f"/v1/complaints/{CASE_ID}"),
        ("GET", f"/v1/complaints/{CASE_ID}"),
        ("GET", f"/v1/complaints/{CASE_ID}/notify"),
        ("PUT", f"/v1/complaints/{CASE_ID}/notify"),
        ("POST", f"/v1/complaints/{CASE_ID}/notify/"),
        ("POST", f"/v1/complaints/{CASE_ID}/events"),
        ("POST", f"/v1/complaints/{CASE_ID}/unknown"),
        ("POST", f"/v1/complaints/{CASE_ID}/x/notify"),
        ("POST", f"/v2/complaints/{CASE_ID}/notify"),
        ("POST", "/v1/complaints//notify"),
        ("POST", "/notify"),
    ],
)
def test_the_lane_leaves_what_is_not_a_command_path(method: str, path: str) -> None:
    scope = request_scope(path, method)
    assert LANE.command_for(scope) is None
    assert not any(routed_to(APP, scope) is c.original_route for c in COMMAND_ROUTES)


def test_the_lane_leaves_a_path_an_earlier_route_takes() -> None:
    earlier = APIRouter()

    @earlier.post("/v1/complaints/{case_id}/{action}")
    async def catch_all(case_id: str, action: str) -> None:
        return None

    app = FastAPI()
    app.include_router(earlier)
    app.include_router(complaint_commands.router)
    lane = CommandLane(unreachable, app.router)
    scope = request_scope(f"/v1/complaints/{CASE_ID}/notify")
    assert routed_to(app, scope) is earlier.routes[0]
    assert lane.left == []
    assert all(len(command.before) == 1 for command in lane.commands)
    assert lane.command_for(scope) is None

    later = FastAPI()
    later.include_router(complaint_commands.router)
    later.include_router(earlier)
    lane = CommandLane(unreachable, later.router)
    assert all(command.before == () for command in lane.commands)
    assert taken(lane, scope) is routed_to(later, scope)


def test_the_lane_follows_the_prefix_the_router_serves_the_commands_under() -> None:
    app = FastAPI()
    app.include_router(complaint_commands.router, prefix="/api")
    lane = CommandLane(unreachable, app.router)
    assert len(lane.commands) == len(COMMAND_ROUTES)
    moved = request_scope(f"/api/v1/complaints/{CASE_ID}/notify")
    assert taken(lane, moved) is routed_to(app, moved) is not None
    assert lane.command_for(request_scope(f"/v1/complaints/{CASE_ID}/notify")) is None


# --- a command route that takes more than the lane fills is left to the router -----------------


async def trace_id() -> str:
    return "trace"


def extended(
    endpoint: Callable[..., Any], name: str, annotation: Any, default: Any = inspect.Parameter.empty
) -> Callable[..., Any]:
    """`endpoint` with one more keyword parameter, or `name` given a new annotation."""

    async def copy(**kwargs: Any) -> Any:
        return await endpoint(**kwargs)

    signature = inspect.signature(endpoint)
    parameters = dict(signature.parameters)
    if name in parameters:
        parameters[name] = parameters[name].replace(annotation=annotation)
    else:
        parameters[name] = inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
        )
    copy.__signature__ = signature.replace(parameters=list(parameters.values()))  # type: ignore[attr-defined]
    return copy


def app_with(
    monkeypatch: pytest.MonkeyPatch, endpoint: Callable[..., Any], **route: Any
) -> tuple[FastAPI, CommandLane]:
    """An app serving `endpoint`, marked a command's, as `/v1/complaints/{case_id}/notify`."""
    monkeypatch.setattr(
        complaint_commands, "_COMMAND_ENDPOINTS", [*complaint_commands._COMMAND_ENDPOINTS, endpoint]
    )
    router = APIRouter(prefix="/v1/complaints")
    router.add_api_route("/{case_id}/notify", endpoint, methods=["POST"], **route)
    app = FastAPI()
    app.include_router(router)
    return app, CommandLane(unreachable, app.router)


NOTIFY_ENDPOINT = next(
    c.original_route.endpoint for c in COMMAND_ROUTES if c.path_format.endswith("/notify")
)


def test_a_faithful_copy_of_a_command_endpoint_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness of the tests below: what they add is all that makes the lane leave it."""
    copy = extended(NOTIFY_ENDPOINT, "body", Annotated[NotifyBody, Body()])
    _, lane = app_with(monkeypatch, copy)
    assert lane.left == []
    assert len(lane.commands) == 1


@pytest.mark.parametrize(
    ("name", "annotation", "default", "words"),
    [
        ("x_trace", Annotated[str | None, Header()], None, "header x_trace"),
        ("dry_run", Annotated[bool, Query()], False, "query dry_run"),
        ("session", Annotated[str | None, Cookie()], None, "cookie session"),
        ("trace", Annotated[str, Depends(trace_id)], inspect.Parameter.empty, "depends trace"),
        (
            "extra_credentials",
            Annotated[HTTPAuthorizationCredentials | None, Security(HTTPBearer(auto_error=False))],
            None,
            "security extra_credentials",
        ),
        ("tasks", BackgroundTasks, inspect.Parameter.empty, "background_tasks tasks"),
        ("response", Response, inspect.Parameter.empty, "response response"),
        (
            "principal",
            Annotated[Any, Depends(require_role("staff"))],
            inspect.Parameter.empty,
            "principal_with_role",
        ),
        ("body", Annotated[NotifyBody, Body(embed=True)], None, "one JSON body"),
        ("if_match", Annotated[int | None, Header()], None, "plain"),
        ("if_match", Annotated[str | None, Header(alias="X-If-Match")], None, None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_command_route_taking_more_is_left_to_the_router(
    monkeypatch: pytest.MonkeyPatch, name: str, annotation: Any, default: Any, words: str | None
) -> None:
    app, lane = app_with(monkeypatch, extended(NOTIFY_ENDPOINT, name, annotation, default))
    scope = request_scope(f"/v1/complaints/{CASE_ID}/notify")
    if words is None:  # a header read under another name: the lane reads it there too
        assert lane.left == []
        assert lane.commands[0].header_params[0].key == "X-If-Match"
        return
    assert lane.commands == []
    [(context, why)] = lane.left
    assert words in why
    assert lane.command_for(scope) is None
    assert routed_to(app, scope) is context.original_route


def test_a_dependency_of_the_including_router_leaves_every_command_route() -> None:
    app = FastAPI()
    app.include_router(complaint_commands.router, dependencies=[Depends(trace_id)])
    lane = CommandLane(unreachable, app.router)
    assert lane.commands == []
    assert len(lane.left) == len(COMMAND_ROUTES)
    assert all("depends None=trace_id" in why for _, why in lane.left)


def test_a_command_route_with_a_body_limit_of_its_own_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, lane = app_with(monkeypatch, NOTIFY_ENDPOINT, max_body_size=1000)
    [(_, why)] = lane.left
    assert "body size limit" in why


# --- what the lane reads, it reads as FastAPI reads it -------------------------------------------

PROBE = FastAPI()


async def probe(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Whether FastAPI read the body as JSON, and the content type it saw."""
    return {
        "json": not isinstance(body, bytes),
        "content_type": request.headers.get("content-type"),
    }


PROBE_ROUTES = APIRouter()
PROBE_ROUTES.add_api_route("/strict", probe, methods=["POST"])
PROBE_ROUTES.add_api_route("/lenient", probe, methods=["POST"], strict_content_type=False)
PROBE.include_router(PROBE_ROUTES)
PROBE_CLIENT = TestClient(PROBE)

CONTENT_TYPES = [
    None,
    "",
    "application/json",
    "Application/JSON",
    " application/json ",
    "application/json; charset=utf-8",
    "application/json;charset=latin-1",
    "application/json ; q=1",
    "application/problem+json",
    "application/vnd.api+json; charset=utf-8",
    "application/+json",
    "application/jsonx",
    "application/json-seq",
    "application/x-json",
    "application /json",
    "application/ json",
    "application/json, text/plain",
    "application/json/extra",
    "applicationjson",
    "text/json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    '"application/json"',
    "application/json\t",
    ";application/json",
    "*/*",
]


def fastapi_reads_json(content_type: str | None, strict: bool) -> bool:
    headers = {} if content_type is None else {"content-type": content_type}
    response = PROBE_CLIENT.post(
        "/strict" if strict else "/lenient", content=b'{"a": 1}', headers=headers
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["content_type"] == content_type
    return bool(seen["json"])


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_the_lane_reads_json_where_fastapi_does(content_type: str | None, strict: bool) -> None:
    assert is_json_content(content_type, strict) == fastapi_reads_json(content_type, strict)


HEADER_PIECES = st.sampled_from(
    ["application", "APPLICATION", "text", "/", "json", "JSON", "+json", "+", "problem", ";", " ",
     "\t", ",", "=", '"', "charset=utf-8", "x", "*", "-"]
)  # fmt: skip
HEADER_TEXT = st.lists(HEADER_PIECES | st.characters(min_codepoint=0x20, max_codepoint=0x7E)).map(
    "".join
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content_type=HEADER_TEXT, strict=st.booleans())
def test_the_lane_reads_json_where_fastapi_does_for_any_content_type(
    content_type: str, strict: bool
) -> None:
    assert is_json_content(content_type, strict) == fastapi_reads_json(content_type, strict)


HEADER_VALUES = (
    st.none()
    | st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=210)
    | st.sampled_from(['"3"', "*", 'W/"3"', "k-1", "k" * 200, "k" * 201, "has space", ""])
)
SEGMENTS = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x24F, exclude_characters="/"), min_size=1
) | st.sampled_from([CASE_ID, CASE_ID.upper(), CASE_ID + "\n", CASE_ID[:-1] + "g"])


@settings(max_examples=300, deadline=None)
@given(if_match=HEADER_VALUES, key=HEADER_VALUES, repeated=st.booleans(), case_id=SEGMENTS)
def test_the_lane_reads_path_and_headers_as_fastapi_does(
    if_match: str | None, key: str | None, repeated: bool, case_id: str
) -> None:
    raw: list[tuple[bytes, bytes]] = []
    for name, value in ((b"If-Match", if_match), (b"Idempotency-Key", key)):
        if value is not None:
            raw.append((name.lower(), value.encode("latin-1")))
            if repeated:
                raw.append((name.lower(), b"second"))
    headers = Headers(raw=raw)
    path_params = {"case_id": case_id}
    for command in LANE.commands:
        for params, source, fields in (
            (command.header_params, headers, "header_params"),
            (command.path_params, path_params, "path_params"),
        ):
            context = next(c for c in COMMAND_ROUTES if c.original_route is command.route)
            for param, field in zip(params, getattr(context.dependant, fields), strict=True):
                values, errors = request_params_to_args([field], source)
                assert param.read(source) == (
                    (True, values[field.name]) if not errors else (False, None)
                )


def test_the_lane_never_derives_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table is read once, when the middleware is made."""

    def no(*args: Any) -> Any:
        raise AssertionError("derived per request")

    monkeypatch.setattr(command_lane, "iter_route_contexts", no)
    monkeypatch.setattr(command_lane, "dependency_shape", no)
    for context in COMMAND_ROUTES:
        assert taken(LANE, request_scope(path_of(context))) is context.original_route
