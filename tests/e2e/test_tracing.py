"""OpenTelemetry traces (issue 16, item 4): with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `serve` sends
a server span per request and a client span per SQL statement under it to a real OTLP/HTTP
receiver on loopback (protobuf, decoded with OpenTelemetry's own messages), with no personal data
in any of them; statement values are never captured; without the variable nothing of the SDK is
even imported."""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanMessage

from api_support import complaint, days_ago
from complaintcore.api.app import create_app
from complaintcore.auth.tokens import create_token
from complaintcore.infra.settings import otel_traces_url
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import live_service

# what the request sends about the complainant (api_support.complaint)
PERSONAL = ("张三", "11010519491231002X", "13800138000", "李四")
WAIT_S = 20


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1: POST /v1/traces, protobuf bodies decoded."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                encoding = self.headers.get("Content-Encoding")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.take(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            attributes=_attributes(span.attributes),
                            events=[(e.name, _attributes(e.attributes)) for e in span.events],
                            resource=resource,
                        )
                    )
        with self._lock:
            self.bodies.append(body)
            self.spans.extend(spans)

    def received(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self.spans)

    def wait_for(self, route: str, timeout_s: float = WAIT_S) -> ReceivedSpan:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for span in self.received():
                if span.kind == SpanMessage.SPAN_KIND_SERVER and (
                    span.attributes.get("http.route") == route
                ):
                    return span
            time.sleep(0.1)
        pytest.fail(f"no server span for {route} in {timeout_s} s: {self.received()}")

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
async def staff_token(pool: asyncpg.Pool) -> str:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    return await create_token(pool, "staff-a1", "staff", "BR-A")


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)


def everything_said(span: ReceivedSpan) -> list[str]:
    """Every string a span carries: its name, attributes, events and resource."""
    return [
        span.name,
        *_texts(span.attributes),
        *_texts(span.resource),
        *(text for name, attributes in span.events for text in [name, *_texts(attributes)]),
    ]


@pytest.mark.parametrize("serve_args", [(), ("--workers", "2")], ids=["one-process", "workers-2"])
async def test_serve_traces_a_request_and_its_statements_without_personal_data(
    serve_args: tuple[str, ...],
    database_url: str,
    staff_token: str,
    receiver: OtlpReceiver,
    tmp_path: Path,
) -> None:
    tracing = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    tokens = {"staff": staff_token}
    with live_service(database_url, tokens, tmp_path, serve_args, **tracing) as service:
        client = service.client("staff")
        for path in ("/healthz", "/readyz", "/metrics"):  # loopback: /metrics answers
            assert client.get(path).status_code == 200, path
        received = client.post("/v1/complaints", json=complaint())
        assert received.status_code == 201, received.text
        case_id = received.json()["id"]
        # exported by the batch processor while the service runs (200 ms schedule)
        receipt = receiver.wait_for("/v1/complaints")
        assert client.get("/v1/complaints", params={"limit": 5}).status_code == 200
        withdraw = {"received_on": days_ago(0), "reason": "已协商"}  # answered by the lane
        withdrawn = client.post(f"/v1/complaints/{case_id}/withdraw", json=withdraw)
        assert withdrawn.status_code == 200, withdrawn.text
    # the service has stopped: its lifespan flushed what was still queued
    spans = receiver.received()
    by_route = {
        span.attributes.get("http.route"): span
        for span in spans
        if span.kind == SpanMessage.SPAN_KIND_SERVER
    }
    assert by_route.keys() == {
        "/v1/complaints",
        "/v1/complaints/{case_id}/withdraw",
    }, by_route.keys()

    assert receipt.name == "POST /v1/complaints"
    assert receipt.parent_span_id == ""  # the trace's root
    assert receipt.attributes["http.status_code"] == 201
    assert receipt.resource["service.name"] == "complaintcore"
    assert receipt.resource["service.instance.id"]
    statements = [
        span
        for span in spans
        if span.trace_id == receipt.trace_id and span.kind == SpanMessage.SPAN_KIND_CLIENT
    ]
    assert statements, "no asyncpg span under the request"
    span_ids = {span.span_id for span in spans if span.trace_id == receipt.trace_id}
    for statement in statements:
        assert statement.parent_span_id in span_ids
        assert statement.attributes["db.system"] == "postgresql"
        assert statement.attributes["db.statement"]
        assert "db.statement.parameters" not in statement.attributes
        assert statement.resource == receipt.resource
    assert any("$1" in statement.attributes["db.statement"] for statement in statements)

    # every span belongs to a request's trace: none of /healthz, /readyz, /metrics, nor of the
    # background loops (projection runners, webhook workers) or start-up
    roots = {span.trace_id for span in spans if span.kind == SpanMessage.SPAN_KIND_SERVER}
    assert {span.trace_id for span in spans} == roots
    assert not any(
        path in text
        for span in spans
        for text in everything_said(span)
        for path in ("/healthz", "/readyz", "/metrics")
    )
    # no personal data: not in any decoded value, not anywhere in the bytes sent
    said = [text for span in spans for text in everything_said(span)]
    assert not [text for text in said if any(value in text for value in PERSONAL)]
    for body in receiver.bodies:
        assert not any(value.encode() in body for value in PERSONAL)
    assert not [text for text in said if "limit=5" in text]  # no query string


async def test_statement_values_are_never_captured(
    database_url: str, staff_token: str, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the instrumentation records, before the export's scrubbing: SQL text only."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    app = create_app(database_url)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    recorded = InMemorySpanExporter()
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(recorded))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {staff_token}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://cc.test", headers=headers
        ) as client:
            answer = await client.post("/v1/complaints", json=complaint())
            assert answer.status_code == 201, answer.text

    spans = recorded.get_finished_spans()
    statements = [span for span in spans if span.attributes.get("db.system") == "postgresql"]
    assert statements
    for span in spans:
        assert "db.statement.parameters" not in span.attributes
        values = [str(value) for value in span.attributes.values()]
        assert not [value for value in values if any(p in value for p in PERSONAL)], span.name
    assert receiver.wait_for("/v1/complaints").attributes["http.method"] == "POST"


def test_exceptions_leave_without_their_messages() -> None:
    """A span's exception keeps its type and stack frames; its message, URLs' query strings,
    captured headers and statement parameters never leave."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    from complaintcore.api.tracing import WithoutPersonalData

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(WithoutPersonalData(exported)))
    attributes = {
        "http.url": "http://cc.test/v1/complaints?name=张三",
        "url.query": "name=张三",
        "http.target": "/v1/complaints",
        "http.request.header.x_name": ("张三",),
        "db.statement": "SELECT $1",
        "db.statement.parameters": "('11010519491231002X',)",
    }
    with (
        pytest.raises(ValueError),
        provider.get_tracer("test").start_as_current_span("GET", attributes=attributes),
    ):
        try:
            raise KeyError("13800138000")
        except KeyError as error:
            raise ValueError("invalid input: 张三 11010519491231002X") from error

    (span,) = exported.get_finished_spans()
    assert dict(span.attributes) == {
        "http.url": "http://cc.test/v1/complaints",
        "http.target": "/v1/complaints",
        "db.statement": "SELECT $1",
    }
    assert span.status.status_code is StatusCode.ERROR
    assert not span.status.description
    ((event),) = span.events
    assert event.name == "exception"
    assert "exception.message" not in event.attributes
    assert event.attributes["exception.type"] == "ValueError"
    stack = event.attributes["exception.stacktrace"]
    assert stack.count("Traceback (most recent call last):") == 2
    assert 'File "' in stack and "test_exceptions_leave_without_their_messages" in stack
    assert stack.endswith("ValueError")
    assert not any(value in stack for value in PERSONAL)
    provider.shutdown()


_UNTRACED_APP = """
import json, sys
from opentelemetry import trace
from complaintcore.api.app import create_app
app = create_app("postgresql://nobody@127.0.0.1:1/none")
print(json.dumps({
    "sdk_imported": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
    "instrumented": getattr(app, "_is_instrumented_by_opentelemetry", False),
    "provider": type(trace.get_tracer_provider()).__name__,
    "app_provider": hasattr(app.state, "tracer_provider"),
}))
"""


@pytest.mark.parametrize(
    "otel_env",
    [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}],
    ids=["no-endpoint", "sdk-disabled"],
)
def test_without_an_endpoint_nothing_of_the_sdk_is_loaded(
    otel_env: dict[str, str], tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.pop("DATABASE_URL", None)
    env.update(otel_env)
    done = subprocess.run(
        [sys.executable, "-c", _UNTRACED_APP],
        env=env,
        cwd=tmp_path,  # no .env file of the work tree
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "sdk_imported": [],
        "instrumented": False,
        "provider": "ProxyTracerProvider",
        "app_provider": False,
    }


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c/otlp/"}, "http://c/otlp/v1/traces"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/in",
            },
            "http://t/in",
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t/in", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_the_traces_url_is_opentelemetry_s(environ: dict[str, str], url: str | None) -> None:
    assert otel_traces_url(environ) == url


_MOBILE = "13800138000"


async def test_spans_export_no_personal_number_the_access_log_redacts(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mobile typed into a path in groups ("138-0013-8000"), and one in the User-Agent (which
    the access log and the event metadata redact), are not in the exported spans (found by a
    review pass: the scrubber knew only unbroken runs of 11 digits or more, in URLs only)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from complaintcore.api.tracing import WithoutPersonalData

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    app = create_app(database_url)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    exported = InMemorySpanExporter()
    # what the OTLP exporter is handed: the spans after WithoutPersonalData
    app.state.tracer_provider.add_span_processor(SimpleSpanProcessor(WithoutPersonalData(exported)))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cc.test") as client:
            await client.get("/v1/complaints/138-0013-8000")
            await client.get(
                "/v1/complaints",
                headers={"User-Agent": f"BankApp/2.1 ({_MOBILE})"},
            )
    said = {
        f"{key}={value}"
        for span in exported.get_finished_spans()
        for key, value in (span.attributes or {}).items()
    }
    leaked = sorted(text for text in said if "138-0013-8000" in text or _MOBILE in text)
    assert not leaked
