"""uvicorn's httptools protocol with the limits uvicorn lacks, against slow and bloated clients.

uvicorn bounds neither the time a client takes to send a request's headers or body nor the
number of headers, and httptools buffers a header of any size: a few hundred connections
trickling a byte a second, or headers of megabytes, tie the server up. This subclass of
`HttpToolsProtocol` (the parser served today; it is the fast one) adds, from `Settings`:

- `header_timeout_s`: a request's headers must be complete this long after the connection
  opened or went idle (keep-alive), or after the request's first byte when it follows another
  request at once (pipelining);
- `body_timeout_s`: its body must be complete this long after its headers;
- `max_header_bytes` and `max_header_count`: request line plus headers, 431 beyond.

A late request gets 408, one over a limit 431, and one httptools cannot parse 400 (uvicorn's
own answer is plain text), all `application/problem+json` like the app's other errors, with
`Connection: close`; the connection is then closed. An idle connection that times out is closed
without an answer (no request to answer), as a keep-alive timeout closes it.

`uvicorn.run(http="complaintcore.api.http_protocol:LimitedHttpToolsProtocol")` selects it (an
import string, so each worker process imports it); every connection reads the limits from
`get_settings()` (cached), the same settings the app is built from.
"""

import asyncio
import json
from typing import Any, Literal

import structlog
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from complaintcore.api.metrics import ANSWERED_BY_THE_PROTOCOL, UNMATCHED
from complaintcore.api.problems import PROBLEM_JSON, Problem, http_problem
from complaintcore.infra.metrics import HTTP_REQUESTS
from complaintcore.infra.settings import get_settings

Phase = Literal["headers", "body"]

log = structlog.get_logger("complaintcore.http")


class _Refused(Exception):
    """Raised in a parser callback to stop httptools mid-request; uvicorn catches the
    `HttpParserError` httptools turns it into and calls `send_400_response`, which answers the
    refusal stored on the protocol instead (after uvicorn's log line "Invalid HTTP request
    received.", which it writes for every parser error)."""


def _problem_bytes(problem: Problem) -> bytes:
    details = problem.details.model_dump(exclude_none=True)
    return json.dumps(details, separators=(",", ":")).encode()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.header_timeout_s = settings.header_timeout_s
        self.body_timeout_s = settings.body_timeout_s
        self.max_header_bytes = settings.max_header_bytes
        self.max_header_count = settings.max_header_count
        # One deadline at a time: the headers' (idle or a request begun), then the body's. It is
        # a number, checked by one lazy timer per connection: arming and cancelling an event
        # loop timer costs microseconds, and each request would arm and cancel two.
        self._deadline: float | None = None
        self._phase: Phase = "headers"
        self._timer: asyncio.TimerHandle | None = None
        # The timer never waits longer than the shorter timeout, so it never sleeps past a
        # deadline set after it was armed.
        self._tick = min(self.header_timeout_s, self.body_timeout_s)
        # The request whose headers are being read: its number, and what has come of it.
        self._reading_headers = False
        self._requests = 0
        self._header_bytes = 0  # request target, header names and values, as parsed
        self._raw_header_bytes = 0  # whole chunks received while its headers were incomplete
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None

    # Deadlines

    def _arm(self, phase: Phase) -> None:
        delay = self.header_timeout_s if phase == "headers" else self.body_timeout_s
        self._deadline = self.loop.time() + delay
        self._phase = phase
        if self._timer is None:
            self._timer = self.loop.call_later(self._tick, self._check_deadline)

    def _disarm(self) -> None:
        self._deadline = None  # the timer, when it fires, finds no deadline and stops

    def _check_deadline(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        remaining = self._deadline - self.loop.time()
        if remaining > 0:
            self._timer = self.loop.call_later(min(remaining, self._tick), self._check_deadline)
        else:
            self._deadline = None
            self._timed_out(self._phase)

    def _timed_out(self, phase: Phase) -> None:
        if self.transport.is_closing():
            return
        # Answer 408 only for a request that has begun, and only when no response of the app's
        # is under way or queued on this connection (ours would interleave with it): otherwise
        # just close, as the client is too slow to be owed more.
        cycle = self.cycle
        if phase == "headers":
            answer = self._reading_headers and (cycle is None or cycle.response_complete)
        else:
            answer = cycle is not None and not cycle.response_started
        if answer and not self.pipeline:
            if cycle is not None and phase == "body":
                # The app waiting for the body sees the client gone, and its answer is dropped:
                # it records the 408 the client got (counted there, once)
                cycle.scope[ANSWERED_BY_THE_PROTOCOL] = 408
                cycle.disconnected = True
                cycle.message_event.set()
            what = "headers" if phase == "headers" else "body"
            seconds = self.header_timeout_s if phase == "headers" else self.body_timeout_s
            self._answer(408, f"The request {what} did not arrive within {seconds:g} s.")
        else:
            self.transport.close()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers")  # a connection that never sends a request is not kept either

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # httptools hands a header to `on_header` only once it is whole, buffering it until
        # then: a header of megabytes is never seen by `on_header` before it is all in memory.
        # So also count every chunk that arrives while the same request's headers were and
        # still are incomplete (a lower bound: the chunk they began in is not counted).
        continuing = self._reading_headers
        request = self._requests
        super().data_received(data)
        if continuing and self._reading_headers and self._requests == request:
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._answer(431, self._too_large())

    # Parser callbacks (httptools calls them while uvicorn feeds it in `data_received`)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # else the idle deadline, started before this first byte
            self._arm("headers")
        self._reading_headers = True
        self._requests += 1
        self._header_bytes = self._raw_header_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, self._too_large())
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if self._header_count > self.max_header_count:
            detail = f"The request has more than {self.max_header_count} headers."
            self._refuse(431, detail)
        if self._header_bytes > self.max_header_bytes:
            self._refuse(431, self._too_large())
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_headers = False
        self._disarm()
        super().on_headers_complete()
        # Not for a WebSocket upgrade (no cycle of its own), nor for a request queued behind
        # another (pipelining): uvicorn reads nothing more until it starts that one.
        if self.cycle is not None and self.cycle.scope is self.scope and not self.pipeline:
            self._arm("body")

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # answered before its body was all in (413, say): idle from now on
            self._arm("headers")

    def on_response_complete(self) -> None:
        queued = self.pipeline[-1][0] if self.pipeline else None  # the one uvicorn starts next
        super().on_response_complete()
        if self.transport.is_closing() or self._deadline is not None:
            return  # closing, or the body of the request just answered is still coming in
        if queued is None:
            # Idle: uvicorn armed its keep-alive timeout, but any byte cancels that one, even
            # the CRLFs httptools skips before a request; this deadline only headers stop.
            self._arm("headers")
        elif queued.more_body:
            self._arm("body")  # a pipelined request started now, its body not all in yet

    # Answers of the protocol's own

    def send_400_response(self, msg: str) -> None:
        """Where uvicorn answers a request httptools refused (plain text): problem+json, and
        431 for a refusal of ours raised from a callback."""
        status, detail = self._refusal or (
            400,
            "The request is not valid HTTP/1.1 (malformed request line or headers).",
        )
        self._answer(status, detail)

    def _too_large(self) -> str:
        return f"The request line and headers are larger than {self.max_header_bytes} bytes."

    def _refuse(self, status: int, detail: str) -> None:
        self._refusal = (status, detail)
        raise _Refused(detail)

    def _method_so_far(self) -> str:
        """The request's method when its request line was read, else ""."""
        try:
            return str(self.parser.get_method().decode("ascii", "replace"))
        except Exception:  # httptools has not read one (or refused the line)
            return ""

    def _answer(self, status: int, detail: str) -> None:
        """Write a problem+json response and close (the callers see that no response of the
        app's is under way)."""
        self._disarm()
        problem = http_problem(status, detail)
        log.warning("request refused", status=status, code=problem.details.code, detail=detail)
        # counted as the app counts a refusal before routing (a review pass found slow and
        # bloated clients, the refusals this protocol exists for, missing from the metrics);
        # a request the app has in hand (a body too slow) is counted by the app, once
        if self.cycle is None or self.cycle.response_complete:
            HTTP_REQUESTS.labels(UNMATCHED, self._method_so_far(), str(status)).inc()
        body = _problem_bytes(problem)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM_JSON.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
