"""TARGETS.md's alert row: "alert from commit to webhook delivery, local receiver: p99 <= 2 s;
>= 500 deliveries/s sustained", measured against a `complaintcore serve` with its default
alert runner and webhook workers, on a database of its own, to a receiver on loopback.

- **Latency**: complaints received over HTTP one at a time (about 40 a second, jittered), a
  subscription to `case.received`; from each command's answer (its commit is before it) to its
  delivery's arrival at the receiver: the alert runner's poll, the fan-out's, the dispatcher's
  claim and the POST, all in.
- **Deliveries per second**: `n` alerts written at once (one transaction, as the alert runner
  writes a batch; each its own case, so order per case holds nothing back) for `subscriptions`
  subscriptions; from the commit to the last arrival, fan-out included. Thousands of them (4,000
  in the full run), so that the rate is the sustained one: a backlog of that size once made the
  claim's cached plan slow, which a hundred never showed.

The receiver is a small HTTP/1.1 server (keep-alive, answers 200) in a thread of this process
with its own event loop, so arrival and commit times come from the same monotonic clock.
"""

import asyncio
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import orjson

from bench import histories
from bench.measure import Throughput
from bench.service import serving
from complaintcore.application.business_day import shanghai_today
from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool

WEBHOOK_ENV = {"COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
LATENCY_RATE = 40  # complaints a second, one at a time
THROUGHPUT_SUBSCRIPTIONS = 4
ARRIVAL_TIMEOUT_S = 60  # bounds the bench's time whatever the pace


@dataclass
class LoopbackReceiver:
    """Records the monotonic arrival time of each delivery by `case_id` (first arrival), and
    which deliveries arrived; answers 200 at once."""

    arrivals: dict[str, float] = field(default_factory=dict)
    delivery_ids: set[str] = field(default_factory=set)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def count(self) -> int:
        """Deliveries arrived, each once: one sent again (at least once) is not one more."""
        return len(self.delivery_ids)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def __enter__(self) -> "LoopbackReceiver":
        ready = threading.Event()
        holder: dict[str, asyncio.Server] = {}

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            holder["server"] = server
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            server.close()
            loop.run_until_complete(_end_connections())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True, name="bench receiver")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the bench receiver did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                length = 0
                while True:
                    header = await reader.readline()
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                now = time.monotonic()
                delivery = orjson.loads(body)
                self.delivery_ids.add(delivery["delivery_id"])
                self.arrivals.setdefault(delivery["case_id"], now)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def _end_connections() -> None:
    """End the connections still open as the receiver stops (not in the collector later)."""
    serving = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in serving:
        task.cancel()
    await asyncio.gather(*serving, return_exceptions=True)


@dataclass(frozen=True)
class WebhookFigures:
    latency: Throughput  # latencies in ms, one per alert
    deliveries: Throughput
    subscriptions: int
    lost: int  # alerts of the latency run that never arrived in time
    expected: int  # deliveries the deliveries/s run waited for

    @property
    def short(self) -> bool:
        return self.deliveries.operations < self.expected


async def _tokens(url: str) -> tuple[str, str]:
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        return (
            await create_token(pool, "bench-webhook-admin", "admin", None),
            await create_token(pool, "bench-webhook-staff", "staff", histories.HEAD_OFFICE),
        )
    finally:
        await pool.close()


def _subscribe(base_url: str, admin: str, url: str, events: list[str]) -> None:
    response = httpx.post(
        f"{base_url}/v1/webhooks",
        json={"url": url, "institution": histories.HEAD_OFFICE, "events": events},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"webhook subscription refused: {response.text}")


def _wait_for(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def alert_latency(
    base_url: str, staff: str, receiver: LoopbackReceiver, seconds: float
) -> tuple[Throughput, int]:
    """Complaints one at a time for `seconds`; per alert, ms from the answer to the arrival."""
    rng = random.Random(15)
    received_on = shanghai_today() - timedelta(days=1)
    committed: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {staff}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            body = histories.receipt_body(rng, histories.HEAD_OFFICE, received_on)
            response = client.post("/v1/complaints", json=body)
            answered = time.monotonic()
            if response.status_code != 201:
                raise RuntimeError(f"complaint refused: {response.text}")
            committed[response.json()["id"]] = answered
            time.sleep(rng.uniform(0.5, 1.5) / LATENCY_RATE)
    started = min(committed.values())
    _wait_for(lambda: set(committed) <= set(receiver.arrivals), ARRIVAL_TIMEOUT_S)
    latencies = [
        (receiver.arrivals[case] - at) * 1000
        for case, at in committed.items()
        if case in receiver.arrivals
    ]
    elapsed = max(receiver.arrivals.get(case, started) for case in committed) - started
    return Throughput(len(latencies), elapsed, latencies), len(committed) - len(latencies)


_INSERT_ALERTS = """
INSERT INTO alerts (event, case_id, institution, registration_no, occurred_at, data, dedupe_key)
SELECT 'case.major', $1 || n, $2, 'BENCH-' || n, now(),
       '{"cause": "joint_complaint", "marked_on": "2026-01-01"}'::jsonb,
       'case.major:' || $1 || n || ':1'
FROM generate_series(1, $3::int) AS n
"""


async def _insert_alerts(url: str, prefix: str, count: int) -> float:
    """`count` alerts in one transaction; the monotonic time of its commit."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(_INSERT_ALERTS, prefix, histories.HEAD_OFFICE, count)
        return time.monotonic()
    finally:
        await connection.close()


def deliveries_per_second(url: str, receiver: LoopbackReceiver, alerts: int) -> Throughput:
    """`alerts` alerts at once to every subscription: deliveries from commit to last arrival."""
    before = receiver.count
    expected = alerts * THROUGHPUT_SUBSCRIPTIONS
    committed = asyncio.run(_insert_alerts(url, f"bench-hook-{uuid.uuid4().hex[:6]}-", alerts))
    _wait_for(lambda: receiver.count - before >= expected, ARRIVAL_TIMEOUT_S)
    last = time.monotonic()
    arrived = receiver.count - before
    return Throughput(arrived, last - committed)


def measure(url: str, log_path: Any, seconds: float, alerts: int) -> WebhookFigures:
    """Both figures over one `serve` on `url` (a fresh database with the institution tree)."""
    admin, staff = asyncio.run(_tokens(url))
    with LoopbackReceiver() as receiver, serving(url, log_path, extra_env=WEBHOOK_ENV) as base:
        _subscribe(base, admin, receiver.url("latency"), ["case.received"])
        for n in range(THROUGHPUT_SUBSCRIPTIONS):
            _subscribe(base, admin, receiver.url(f"bulk-{n}"), ["case.major"])
        latency, lost = alert_latency(base, staff, receiver, seconds)
        deliveries = deliveries_per_second(url, receiver, alerts)
    expected = alerts * THROUGHPUT_SUBSCRIPTIONS
    return WebhookFigures(latency, deliveries, THROUGHPUT_SUBSCRIPTIONS, lost, expected)
