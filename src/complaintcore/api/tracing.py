"""OpenTelemetry traces, sent over OTLP/HTTP when an endpoint is set (README "Metrics").

Off by default: `api/app.py` imports this module only when `settings.otel_traces_url()` finds
an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), so a service
without one imports nothing of the SDK, builds no provider and instruments nothing.

On, each process builds its own tracer provider when its app is made (every `serve --workers N`
worker builds its app itself, after it started), and flushes and stops it when the app's
lifespan ends. The provider is this app's, passed to the instrumentations, never installed as the
process's global one. What is traced:

- a server span per request (OpenTelemetry's FastAPI instrumentation), named by its route
  template with `http.route`; `/metrics`, `/healthz` and `/readyz` are not traced, and the
  instrumentation's spans of each ASGI message (`http send`, `http receive`) are not made;
- a client span per SQL statement under it (the asyncpg instrumentation): `db.statement` is the
  statement's text, its values are `$n` placeholders; the values themselves are never captured
  (`capture_parameters=False`, checked by tests/e2e/test_tracing.py);
- nothing else: a span with no parent is kept only if it is a request's (`RequestsOnly`), so
  the statements of the background loops (projection runners, webhook workers), of start-up and
  of the untraced routes make no traces of their own.

Personal data never leaves in a span (Art. 22, as in the logs): before export every span loses
its URLs' query strings, any captured header and any statement parameter, and its exceptions
keep their type and stack frames but not their message (a driver's or a validator's message may
quote a value; infra/log_config.py drops it from the logs the same way).

The SDK's and the exporter's own variables apply as OpenTelemetry documents them, read from the
process environment: `OTEL_SERVICE_NAME` (default here `complaintcore`),
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_BSP_*` (the batch processor),
`OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`, `_CERTIFICATE`, `_COMPRESSION`.
"""

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from fastapi import FastAPI
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from complaintcore.domain.identity import personal_numbers_redacted

UNTRACED_PATHS = ("/metrics", "/healthz", "/readyz")

# The asyncpg instrumentation records a statement's values under this key when asked to
# (`capture_parameters=True`); never asked here, and dropped before export all the same.
STATEMENT_PARAMETERS = "db.statement.parameters"
_URL_ATTRIBUTES = frozenset({"http.url", "url.full", "http.target", "url.path"})
# what a client writes freely, as the access log and the event metadata keep it: its personal
# numbers redacted (found by a review pass: exported in clear)
_CLIENT_TEXT_ATTRIBUTES = frozenset({"http.user_agent", "user_agent.original"})
_DROPPED_ATTRIBUTES = frozenset({"url.query", STATEMENT_PARAMETERS})
_DROPPED_PREFIXES = ("http.request.header.", "http.response.header.", "db.query.parameter.")
_EXCEPTION_MESSAGE = "exception.message"
_EXCEPTION_STACKTRACE = "exception.stacktrace"
_EXCEPTION_TYPE = "exception.type"


def install_tracing(app: FastAPI, endpoint: str) -> TracerProvider:
    """Trace `app` and its asyncpg statements to `endpoint` (an OTLP/HTTP traces URL) from now
    until the end of the app's lifespan, which flushes the spans still queued. The provider is
    kept in `app.state.tracer_provider`."""
    provider = TracerProvider(resource=_resource())
    # the sampler of OTEL_TRACES_SAMPLER (or the SDK's default), for requests only
    provider.sampler = RequestsOnly(provider.sampler)
    provider.add_span_processor(
        BatchSpanProcessor(WithoutPersonalData(OTLPSpanExporter(endpoint=endpoint)))
    )
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=",".join(f"^[^/]*//[^/]*{path}$" for path in UNTRACED_PATHS),
        exclude_spans=["receive", "send"],
    )
    # a patch of asyncpg's classes, for the whole process: undone when the lifespan ends
    asyncpg_instrumentor = AsyncPGInstrumentor(capture_parameters=False)
    asyncpg_instrumentor.instrument(tracer_provider=provider)
    app.state.tracer_provider = provider

    lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def traced_lifespan(app: FastAPI) -> AsyncIterator[Any]:
        try:
            async with lifespan(app) as state:
                yield state
        finally:
            asyncpg_instrumentor.uninstrument()
            # blocking (the last export, bounded by the exporter's timeout): off the event loop
            await asyncio.to_thread(provider.shutdown)

    app.router.lifespan_context = traced_lifespan
    return provider


def _resource() -> Resource:
    """`service.name`, the package's version and an id of this process (each worker has its
    own), over what OTEL_RESOURCE_ATTRIBUTES adds."""
    try:
        service_version = version("complaintcore")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree not installed
        service_version = "unknown"
    return Resource.create(
        {
            SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "").strip() or "complaintcore",
            SERVICE_VERSION: service_version,
            SERVICE_INSTANCE_ID: str(uuid.uuid4()),
        }
    )


class RequestsOnly(Sampler):
    """`delegate`'s decision for a request's span and whatever runs under a span; no span for
    anything else: a span with no parent that is not a server span (a statement of a
    background loop, of start-up or of an untraced route) is dropped."""

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind is not SpanKind.SERVER:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"RequestsOnly{{{self._delegate.get_description()}}}"


class WithoutPersonalData(SpanExporter):
    """`exporter`, sent each span without what could carry personal data (module docstring)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    if status.status_code is StatusCode.ERROR and status.description:
        status = Status(StatusCode.ERROR)  # its description is the exception's message
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=scrubbed_attributes(span.attributes),
        events=[_scrubbed_event(event) for event in span.events],
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


# a run of digits as long as a mobile's or longer (identity, mobile and bank card numbers): a
# client may type one into a path (found by a review pass). A case id whose last group is all
# digits (one in about 280) is shown so too
_LONG_NUMBER = re.compile(r"[0-9]{11,}[Xx]?")


def scrubbed_attributes(attributes: Attributes) -> dict[str, Any]:
    """No query string in a URL nor personal or long number in its path (however typed: in
    groups, in full-width digits), none in the client's user agent, no captured header, no
    statement parameter."""
    kept: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if key in _DROPPED_ATTRIBUTES or key.startswith(_DROPPED_PREFIXES):
            continue
        if key in _URL_ATTRIBUTES and isinstance(value, str):
            path = value.partition("?")[0].partition("#")[0]
            value = _LONG_NUMBER.sub("[number]", personal_numbers_redacted(path))
        elif key in _CLIENT_TEXT_ATTRIBUTES and isinstance(value, str):
            value = personal_numbers_redacted(value)
        kept[key] = value
    return kept


def _scrubbed_event(event: Event) -> Event:
    attributes = scrubbed_attributes(event.attributes)
    if event.name == "exception":
        attributes.pop(_EXCEPTION_MESSAGE, None)
        stacktrace = attributes.get(_EXCEPTION_STACKTRACE)
        if isinstance(stacktrace, str):
            attributes[_EXCEPTION_STACKTRACE] = frames_only(
                stacktrace, str(attributes.get(_EXCEPTION_TYPE, ""))
            )
    return Event(event.name, attributes, event.timestamp)


def frames_only(stacktrace: str, exception_type: str) -> str:
    """A formatted traceback (chained ones included) as its `File "...", line N, in f` lines
    and the exception's type: every message line and quoted source line left out."""
    kept = [
        line
        for line in stacktrace.splitlines()
        if line == "Traceback (most recent call last):" or line.startswith('  File "')
    ]
    return "\n".join([*kept, exception_type])
