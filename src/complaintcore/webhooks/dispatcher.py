"""The dispatcher: sends the due deliveries of `webhook_deliveries`, at least once, in order per
case and subscription, with back-off.

Claim, send, record
-------------------
1. **Claim** (one short transaction): the due deliveries are selected `FOR UPDATE SKIP LOCKED`
   and leased: `leased_until = now() + lease` and a fresh `lease_id`; committed before any
   request is sent. Dispatchers in other processes or hosts skip locked rows and see leased ones
   as not due, so a delivery is with one dispatcher at a time.
2. **Send**: each claimed delivery is its own task: the URL is checked again (DNS re-resolved),
   the body signed, one POST through its subscription's `httpx.AsyncClient` (`clients`), 10 s
   in all; a short answer is read to its end so the connection is kept for the next delivery.
3. **Record** (after the response): delivered, or the next attempt scheduled, or `failed`; only
   while the lease is still ours (`lease_id`), and the lease is cleared. Outcomes that arrive
   while one batch of them is being written are written together by the next statement.

A dispatcher that dies between 2 and 3 (killed, or cancelled) leaves the lease, which expires
after `lease` seconds (much longer than a request may take); the delivery is then due again and
sent once more, with the same `delivery_id` and body. At least once: a crash costs at most one
extra send of the deliveries sent and not yet recorded at that moment, never a lost one.

Order per case
--------------
Only the oldest open (`pending` or `retrying`) delivery of a (subscription, case) is eligible;
a later one waits, even when due, while an earlier one is pending, in flight or waiting out its
back-off. A `failed` delivery (24 hours of retries spent) no longer blocks: the case's later
alerts go on, and the receiver can tell from the gap and `GET /v1/webhooks/{id}/deliveries`. A
failed delivery retried by hand (`POST …/retry`) is sent when due, after deliveries that
overtook it. A re-send after a crash may repeat a delivery, never reorder it: its successor is
not eligible before it is recorded delivered.

Back-off and failure
--------------------
After a failed attempt (no 2xx, no answer within 10 s, a URL no longer allowed, a secret the
key provider could not open), the next one waits `base * 2^(attempts - 1)` seconds (10 s, 20 s,
40 s …), capped (1 hour), with jitter (a random half to whole of it), and never past the end of
the retry window (24 hours from the first attempt); an attempt that fails at or after the
window's end marks the delivery `failed`.
Times are the database's clock, so dispatchers on several hosts agree.

Isolation
---------
At most `per_subscription` deliveries of one subscription are in flight in a process (sent and
not yet answered; the claim asks for no more), `concurrency` in all, each bounded by the
timeout; so a slow or dead receiver holds a few slots for 10 s at most and backs off, and other
subscriptions and cases go on. A slot is free again once the receiver has answered, while the
outcome is written: on loopback that took the bench's figure from about 650 to 1,000 a second.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import structlog

from complaintcore.crypto.suites import CiphertextRejected
from complaintcore.webhooks.clients import SubscriptionClients
from complaintcore.webhooks.signing import (
    SIGNATURE_HEADER,
    Secret,
    SecretSource,
    signature_header,
)
from complaintcore.webhooks.urls import (
    AllowList,
    Resolver,
    UrlNotAllowed,
    check_url,
    resolve_with_loop,
)

__all__ = ["Dispatcher", "RetryPolicy", "delivery_body"]

log = structlog.get_logger("complaintcore.webhooks")

CLAIM_GATHER_S = 0.005
RESPONSE_READ_LIMIT = 64 * 1024  # bytes of a receiver's answer read (and then ignored)


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 10.0
    cap_s: float = 3600.0
    window_s: float = 24 * 3600.0

    def delay_after(self, attempts: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds before the next attempt after `attempts` failed ones (1, 2, …), jittered."""
        full = min(self.cap_s, self.base_s * 2 ** min(attempts - 1, 40))
        return full / 2 + rand() * full / 2


@dataclass(frozen=True)
class _Claim:
    delivery_id: str
    lease_id: str
    subscription_id: str
    url: str
    secret_sealed: bytes
    attempts: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    status_code: int | None
    error: str | None


_CLAIM = """
WITH chosen AS MATERIALIZED (  -- computed once: never the inner side of a loop
    -- per subscription, its first due deliveries up to its free slots: each walk stops there
    -- (index webhook_deliveries_due_by_subscription), so one subscription's backlog neither
    -- fills the batch and starves the others nor makes every claim read all of it
    SELECT first.delivery_id, first.next_attempt_at, first.alert_id
    FROM webhook_subscriptions AS s
    LEFT JOIN unnest($1::uuid[], $2::int[]) AS busy (subscription_id, in_flight)
      ON busy.subscription_id = s.id
    CROSS JOIN LATERAL (
        SELECT d.delivery_id, d.next_attempt_at, d.alert_id
        FROM webhook_deliveries AS d
        WHERE d.subscription_id = s.id
          AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= now()
          AND (d.leased_until IS NULL OR d.leased_until <= now())
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries AS e
              WHERE e.subscription_id = d.subscription_id AND e.case_id = d.case_id
                AND e.status IN ('pending', 'retrying') AND e.alert_id < d.alert_id
          )
        ORDER BY d.next_attempt_at, d.alert_id
        LIMIT greatest($3 - coalesce(busy.in_flight, 0), 0)
    ) AS first
    WHERE s.deleted_at IS NULL
    ORDER BY first.next_attempt_at, first.alert_id
    LIMIT $5
),
locked AS (
    -- the chosen rows found by their primary key, whatever number the planner expects: as
    -- `IN (SELECT ...)`, planned for the 256 rows the limit allows, it hashed them and read
    -- every open delivery (6.4 against 1.4 ms a claim with 16,000 due)
    SELECT d.delivery_id FROM webhook_deliveries AS d
    WHERE d.delivery_id = ANY (ARRAY(SELECT delivery_id FROM chosen))
      AND d.status IN ('pending', 'retrying') AND d.next_attempt_at <= now()
      AND (d.leased_until IS NULL OR d.leased_until <= now())
    ORDER BY d.next_attempt_at, d.alert_id
    LIMIT $4
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries AS d
SET leased_until = now() + make_interval(secs => $6),
    lease_id = gen_random_uuid(),
    first_attempt_at = coalesce(d.first_attempt_at, now())
FROM locked, webhook_subscriptions AS s
WHERE d.delivery_id = locked.delivery_id AND s.id = d.subscription_id
RETURNING d.delivery_id::text AS delivery_id, d.lease_id::text AS lease_id,
          d.subscription_id::text AS subscription_id, s.url, s.secret_sealed, d.attempts,
          d.event, d.case_id, d.institution, d.registration_no, d.occurred_at, d.data,
          d.alert_id
"""

# The outcomes of several attempts in one statement (see `_record`): delivered, or the next
# attempt scheduled, or `failed` once the retry window is spent; only while the lease is ours.
_RECORD = """
UPDATE webhook_deliveries AS d
SET attempts = d.attempts + 1, last_status_code = o.status_code, last_error = o.error,
    leased_until = NULL, lease_id = NULL,
    status = CASE WHEN o.delivered THEN 'delivered'
                  WHEN now() >= d.first_attempt_at + make_interval(secs => $7) THEN 'failed'
                  ELSE 'retrying' END,
    delivered_at = CASE WHEN o.delivered THEN now() ELSE d.delivered_at END,
    next_attempt_at = CASE WHEN o.delivered THEN d.next_attempt_at ELSE least(
        now() + make_interval(secs => o.delay_s),
        d.first_attempt_at + make_interval(secs => $7)
    ) END
FROM unnest($1::uuid[], $2::uuid[], $3::bool[], $4::int[], $5::text[], $6::float8[])
     AS o (delivery_id, lease_id, delivered, status_code, error, delay_s)
WHERE d.delivery_id = o.delivery_id AND d.lease_id = o.lease_id
"""
RECORD_BATCH = 256  # outcomes written by one statement at most


def delivery_body(delivery_id: str, row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The JSON body of a delivery (API.md): fixed by the delivery's row, the same on a re-send."""
    occurred_at: datetime = row["occurred_at"]
    return {
        "delivery_id": delivery_id,
        "event": row["event"],
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "institution": row["institution"],
        "case_id": row["case_id"],
        "registration_no": row["registration_no"],
        "data": row["data"],
    }


async def _read_a_little(response: httpx.Response) -> None:
    """Read a short answer to its end, so that its connection goes back to the pool and the next
    delivery to that receiver reuses it; a long one is cut off (and its connection closed)."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > RESPONSE_READ_LIMIT:
            return


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretSource,
        allow: AllowList,
        *,
        resolver: Resolver = resolve_with_loop,
        retry: RetryPolicy | None = None,
        concurrency: int = 64,
        per_subscription: int = 4,
        lease_s: float = 60.0,
        timeout_s: float = 10.0,
        poll_s: float = 0.25,
    ) -> None:
        self._pool = pool
        self._box = box
        self._allow = allow
        # one client per subscription, its pool bounded at the subscription's sends in flight
        self._clients = SubscriptionClients(timeout_s, per_subscription)
        self._resolver = resolver
        self._retry = retry or RetryPolicy()
        self._concurrency = concurrency
        self._per_subscription = per_subscription
        self._lease_s = lease_s
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._in_flight: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._secrets: dict[str, Secret] = {}
        self._wake = asyncio.Event()
        self._outcomes: list[tuple[_Claim, _Outcome, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_grace_s = 0.0
        self.sent = 0

    def wake(self) -> None:
        """Look for due deliveries now (new ones were made, or a slot freed)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered: the slots that `concurrency` bounds (an answered
        delivery whose outcome is being written holds none; its lease keeps it from being
        claimed again, and from letting its case's next delivery overtake it)."""
        return self._in_flight.total()

    async def run(self) -> None:
        """Claim and send until cancelled or stopped (`stop`: the sends in flight are first
        given its grace to be answered and recorded); those still in flight then are cancelled
        (their leases expire and they are sent again)."""
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    claimed = await self.claim_and_start()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("webhook claim failed", error=type(error).__name__)
                    claimed = 0
                if claimed == 0 or self.in_flight >= self._concurrency:
                    # not asyncio.wait_for: on Python 3.11 it loses a cancellation that comes in
                    # the same turn as the wake-up, and the dispatcher would never stop
                    with suppress(TimeoutError):
                        async with asyncio.timeout(self._poll_s):
                            await self._wake.wait()
                    if self.in_flight:
                        # sends finishing within a few ms of each other share the next claim
                        await asyncio.sleep(CLAIM_GATHER_S)
            # stopped: the sends in flight are answered and recorded first (`stop`)
            await self.drain(self._stop_grace_s)
        finally:
            for task in [*self._tasks, self._writer]:
                if task is not None:
                    task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._writer is not None:
                await asyncio.gather(self._writer, return_exceptions=True)
            await self._clients.aclose()

    async def claim_and_start(self) -> int:
        """Claim what is due within the free slots and start sending each; how many."""
        free = self._concurrency - self.in_flight
        if free <= 0:
            return 0
        busy = [(key, count) for key, count in self._in_flight.items() if count > 0]
        await self._clients.close_idle(busy=self._in_flight)
        async with self._pool.acquire() as connection, connection.transaction():
            # planned for the rows there are now: a cached generic plan, made while the table
            # was small, turned a 10 ms claim into a second and more once thousands were due
            await connection.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            rows = await connection.fetch(
                _CLAIM,
                [key for key, _ in busy],
                [count for _, count in busy],
                self._per_subscription,
                free,
                max(free * 4, 100),
                self._lease_s,
            )
        for row in rows:
            claim = _Claim(
                delivery_id=row["delivery_id"],
                lease_id=row["lease_id"],
                subscription_id=row["subscription_id"],
                url=row["url"],
                secret_sealed=row["secret_sealed"],
                attempts=row["attempts"],
                body=delivery_body(row["delivery_id"], row),
            )
            self._in_flight[claim.subscription_id] += 1
            task = asyncio.create_task(self._deliver(claim), name="webhook delivery")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for the sends in flight (tests, and a graceful stop)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout_s)

    def stop(self, grace_s: float) -> None:
        """A graceful stop: `run` claims nothing more, gives the sends in flight `grace_s` to be
        answered and their outcomes written (what a receiver acknowledged is not sent again
        once its lease ends), then returns, cancelling what is still open."""
        self._stop_grace_s = grace_s
        self._stopping = True
        self._wake.set()

    async def _deliver(self, claim: _Claim) -> None:
        try:
            try:
                outcome = await self._send(claim)
            except Exception as error:  # a fault before any request (the key provider): an attempt
                outcome = _Outcome(False, None, type(error).__name__)
            finally:
                self._answered(claim.subscription_id)
            await self._record(claim, outcome)
        except Exception as error:  # one delivery's fault stops no other
            # the outcome could not be recorded: the lease expires and the delivery goes again
            log.warning(
                "webhook outcome not recorded",
                delivery_id=claim.delivery_id,
                error=type(error).__name__,
            )

    def _answered(self, subscription_id: str) -> None:
        """The receiver has answered (or the send failed): its slot is free for the next claim
        while the outcome is written."""
        self._in_flight[subscription_id] -= 1
        if self._in_flight[subscription_id] <= 0:
            del self._in_flight[subscription_id]
        self._wake.set()

    async def _send(self, claim: _Claim) -> _Outcome:
        try:
            target = await check_url(claim.url, self._allow, self._resolver)
        except UrlNotAllowed:
            return _Outcome(False, None, "url_not_allowed")
        try:
            secret = await self._secret(claim)
        except CiphertextRejected:
            return _Outcome(False, None, "secret_unreadable")
        body = orjson.dumps(claim.body)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, int(time.time()), body),
        }
        if target.scheme == "http":
            # plain http (allowed hosts only): connect to the address just checked
            url, headers["Host"] = target.pinned_url, target.host_header
        else:
            # https: connect by name; the certificate must match the name, so a name re-pointed
            # at another server between check and connect fails the handshake
            url = target.url
        status: int | None = None
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._clients.for_subscription(claim.subscription_id).stream(
                    "POST", url, content=body, headers=headers
                ) as response,
            ):
                status = response.status_code
                await _read_a_little(response)
        # A status that came in time is the answer, whatever becomes of the body after it (read
        # only so that the connection can be reused): a 2xx with a slow body is delivered.
        except TimeoutError:
            if status is None:
                return _Outcome(False, None, "timeout")
        except Exception as error:  # any failure is an attempt: recorded, retried, then failed
            if status is None:
                return _Outcome(False, None, type(error).__name__)
        assert status is not None
        return _Outcome(200 <= status < 300, status, None if status < 300 else "http_status")

    async def _secret(self, claim: _Claim) -> Secret:
        secret = self._secrets.get(claim.subscription_id)
        if secret is None:
            box = await self._box.box()
            secret = box.open(claim.subscription_id, claim.secret_sealed)
            self._secrets[claim.subscription_id] = secret
        return secret

    async def _record(self, claim: _Claim, outcome: _Outcome) -> None:
        """Write the attempt's outcome, sharing a statement with the outcomes that arrive while
        another batch is being written (one round trip for many sends, none waited for when the
        dispatcher is quiet); returns once it is committed."""
        written = asyncio.get_running_loop().create_future()
        self._outcomes.append((claim, outcome, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_outcomes(), name="webhook outcomes")
        await written
        if outcome.delivered:
            self.sent += 1
        log.info(
            "webhook attempt",
            delivery_id=claim.delivery_id,
            subscription_id=claim.subscription_id,
            alert=claim.body["event"],
            status_code=outcome.status_code,
            error=outcome.error,
            delivered=outcome.delivered,
        )

    async def _write_outcomes(self) -> None:
        while self._outcomes:
            batch = self._outcomes[:RECORD_BATCH]
            del self._outcomes[:RECORD_BATCH]
            try:
                await self._pool.execute(
                    _RECORD,
                    [claim.delivery_id for claim, _, _ in batch],
                    [claim.lease_id for claim, _, _ in batch],
                    [outcome.delivered for _, outcome, _ in batch],
                    [outcome.status_code for _, outcome, _ in batch],
                    [outcome.error for _, outcome, _ in batch],
                    [self._retry.delay_after(claim.attempts + 1) for claim, _, _ in batch],
                    self._retry.window_s,
                )
            except Exception as error:  # each waiting delivery logs it; their leases expire
                for _, _, written in batch:
                    if not written.done():
                        written.set_exception(error)
            else:
                for _, _, written in batch:
                    if not written.done():
                        written.set_result(None)
