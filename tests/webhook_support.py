"""A webhook receiver on loopback for the tests (importable as `webhook_support`): a small
HTTP/1.1 server on `asyncio.start_server`, in a thread with its own event loop, so it answers
whether the test's loop is busy or not. No external network."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from testsupport import free_port, master_key_env, wait_until_ready


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with `answer(received) -> status` (200 by default); `hold` (an Event)
    makes it wait before answering, for a test that cancels the sender mid-request: every
    request from the `hold_from`-th on (counting from 0) waits until `hold` is set.
    `body_delay_s`: the answer's body follows its status line and headers this much later."""

    answer: Callable[[Received], int] = lambda received: 200
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _thread: threading.Thread | None = None
    hold: threading.Event | None = None
    hold_from: int = 0
    connections: int = 0  # TCP connections accepted
    body_delay_s: float = 0.0
    _connections: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self, port: int = 0) -> Receiver:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", port)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            loop = self._loop

            async def close_all() -> None:
                assert self._server is not None
                self._server.close()
                # kept-alive connections end with the receiver (Python 3.11 has no close_clients)
                for task in list(self._connections):
                    task.cancel()
                await asyncio.gather(*self._connections, return_exceptions=True)

            asyncio.run_coroutine_threadsafe(close_all(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(10)
            self._loop = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                received = Received(headers, body)
                index = len(self.received)
                self.received.append(received)
                if self.hold is not None and index >= self.hold_from:
                    while not self.hold.is_set():
                        await asyncio.sleep(0.02)
                status = self.answer(received)
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\n".encode("ascii"))
                if self.body_delay_s:
                    await writer.drain()
                    await asyncio.sleep(self.body_delay_s)
                writer.write(b"ok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(task)
            writer.close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def verify_signature(secret: str, received: Received, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute the HMAC of "<t>.<raw body>" and compare in constant
    time; refuse an old timestamp."""
    header = received.headers["complaintcore-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(
        secret.encode(), parts["t"].encode() + b"." + received.body, hashlib.sha256
    ).hexdigest()
    return (
        hmac.compare_digest(expected, parts["v1"])
        and abs(time.time() - int(parts["t"])) <= tolerance_s
    )


async def insert_alert(
    executor: Any,
    event: str,
    case_id: str,
    institution: str,
    registration_no: str = "TS-2026-000001",
    data: dict[str, Any] | None = None,
) -> int:
    """An alert row as the alert runner writes it (the tests need no runner)."""
    return await executor.fetchval(
        "INSERT INTO alerts (event, case_id, institution, registration_no, occurred_at, data,"
        " dedupe_key) VALUES ($1, $2, $3, $4, now(), $5, $6) RETURNING id",
        event,
        case_id,
        institution,
        registration_no,
        data if data is not None else {"complainant": {"name": "张*"}},
        f"{case_id}:{event}:{time.monotonic_ns()}",
    )


async def wait_for(condition: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    """Poll `condition` (sync or async) until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@contextmanager
def serve_process(
    database_url: str, key_dir: Path, log_path: Path, **extra_env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`complaintcore serve` as `testsupport.live_service` starts it (the master key of
    `key_dir`), but handing out the process, for a test that kills it (SIGKILL) itself; one
    still running on the way out is stopped with SIGINT."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json", **extra_env)
    env.update(master_key_env(key_dir))
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(process, base_url)
            yield process, base_url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
