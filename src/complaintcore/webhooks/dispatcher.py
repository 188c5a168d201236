"""The dispatcher: sends the due deliveries of `webhook_deliveries`, at least once, in order per
case and subscription, with back-off.

Claim, send, record
-------------------
1. **Claim** (one short transaction): the due deliveries are selected `FOR UPDATE SKIP LOCKED`
   and leased: `leased_until = now() + lease` and a fresh `lease_id`; committed before any
   request is sent. Dispatchers in other processes or hosts skip locked rows and see leased ones
   as not due, so a delivery is with one dispatcher at a time.
2. **Send**: each claimed delivery is its own task: the URL is checked again (DNS re-resolved),
   the body signed, one POST through the process's shared `httpx.AsyncClient`, 10 s in all.
3. **Record** (after the response): delivered, or the next attempt scheduled, or `failed`; only
   while the lease is still ours (`lease_id`), and the lease is cleared.

A dispatcher that dies between 2 and 3 (killed, or cancelled) leaves the lease, which expires
after `lease` seconds (much longer than a request may take); the delivery is then due again and
sent once more, with the same `delivery_id` and body. At least once: a crash costs at most one
extra send of the deliveries in flight at that moment, never a lost one.

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
After a failed attempt (no 2xx, no answer within 10 s, a URL no longer allowed), the next one
waits `base * 2^(attempts - 1)` seconds (10 s, 20 s, 40 s …), capped (1 hour), with jitter (a
random half to whole of it), and never past the end of the retry window (24 hours from the
first attempt); an attempt that fails at or after the window's end marks the delivery `failed`.
Times are the database's clock, so dispatchers on several hosts agree.

Isolation
---------
At most `per_subscription` deliveries of one subscription are in flight in a process (the claim
asks for no more), `concurrency` in all, each bounded by the timeout; so a slow or dead receiver
holds a few slots for 10 s at most and backs off, and other subscriptions and cases go on.
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

__all__ = ["Dispatcher", "RetryPolicy", "delivery_body", "make_http_client"]

log = structlog.get_logger("complaintcore.webhooks")

USER_AGENT = "complaintcore-webhooks/1"


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
WITH due AS (
    SELECT d.delivery_id, d.subscription_id, d.next_attempt_at, d.alert_id
    FROM webhook_deliveries AS d
    JOIN webhook_subscriptions AS s ON s.id = d.subscription_id AND s.deleted_at IS NULL
    WHERE d.status IN ('pending', 'retrying') AND d.next_attempt_at <= now()
      AND (d.leased_until IS NULL OR d.leased_until <= now())
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries AS e
          WHERE e.subscription_id = d.subscription_id AND e.case_id = d.case_id
            AND e.status IN ('pending', 'retrying') AND e.alert_id < d.alert_id
      )
),
ranked AS (
    SELECT delivery_id, subscription_id, next_attempt_at, alert_id,
           row_number() OVER (
               PARTITION BY subscription_id ORDER BY next_attempt_at, alert_id
           ) AS rank
    FROM due
),
chosen AS MATERIALIZED (  -- computed once: never the inner side of a loop over the due rows
    SELECT ranked.delivery_id FROM ranked
    LEFT JOIN unnest($1::uuid[], $2::int[]) AS busy (subscription_id, in_flight)
      ON busy.subscription_id = ranked.subscription_id
    WHERE ranked.rank + coalesce(busy.in_flight, 0) <= $3
    -- ranked per subscription over every due row first: one subscription's backlog never
    -- fills the batch and starves the others
    ORDER BY ranked.next_attempt_at, ranked.alert_id
    LIMIT $5
),
locked AS (
    SELECT d.delivery_id FROM webhook_deliveries AS d
    WHERE d.delivery_id IN (SELECT delivery_id FROM chosen)
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

_DELIVERED = """
UPDATE webhook_deliveries
SET status = 'delivered', attempts = attempts + 1, last_status_code = $3, last_error = NULL,
    delivered_at = now(), leased_until = NULL, lease_id = NULL
WHERE delivery_id = $1 AND lease_id = $2
"""
_NOT_DELIVERED = """
UPDATE webhook_deliveries
SET attempts = attempts + 1, last_status_code = $3, last_error = $4,
    leased_until = NULL, lease_id = NULL,
    status = CASE WHEN now() >= first_attempt_at + make_interval(secs => $5)
                  THEN 'failed' ELSE 'retrying' END,
    next_attempt_at = least(
        now() + make_interval(secs => $6), first_attempt_at + make_interval(secs => $5)
    )
WHERE delivery_id = $1 AND lease_id = $2
"""


def make_http_client(timeout_s: float, max_connections: int) -> httpx.AsyncClient:
    """The one client of a process's dispatcher: no redirects followed, no proxies from the
    environment, bounded connections and a timeout on every phase (the whole request is bounded
    by the dispatcher as well)."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


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


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretSource,
        allow: AllowList,
        client: httpx.AsyncClient,
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
        self._client = client
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
        self.sent = 0

    def wake(self) -> None:
        """Look for due deliveries now (new ones were made, or a slot freed)."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        """Claim and send until cancelled; in-flight sends are cancelled with it (their leases
        expire and they are sent again)."""
        try:
            while True:
                self._wake.clear()
                try:
                    claimed = await self.claim_and_start()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    log.warning("webhook claim failed", error=type(error).__name__)
                    claimed = 0
                if claimed == 0 or self.in_flight >= self._concurrency:
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def claim_and_start(self) -> int:
        """Claim what is due within the free slots and start sending each; how many."""
        free = self._concurrency - self.in_flight
        if free <= 0:
            return 0
        busy = [(key, count) for key, count in self._in_flight.items() if count > 0]
        rows = await self._pool.fetch(
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

    async def _deliver(self, claim: _Claim) -> None:
        try:
            outcome = await self._send(claim)
            await self._record(claim, outcome)
        except Exception as error:  # one delivery's fault stops no other
            # the outcome could not be recorded: the lease expires and the delivery goes again
            log.warning(
                "webhook outcome not recorded",
                delivery_id=claim.delivery_id,
                error=type(error).__name__,
            )
        finally:
            self._in_flight[claim.subscription_id] -= 1
            if self._in_flight[claim.subscription_id] <= 0:
                del self._in_flight[claim.subscription_id]
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
        if target.url.startswith("http:"):
            # plain http (allowed hosts only): connect to the address just checked
            url, headers["Host"] = target.pinned_url, target.host_header
        else:
            # https: connect by name; the certificate must match the name, so a name re-pointed
            # at another server between check and connect fails the handshake
            url = target.url
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                self._client.stream("POST", url, content=body, headers=headers) as response,
            ):
                status = response.status_code
        except TimeoutError:
            return _Outcome(False, None, "timeout")
        except Exception as error:  # any failure is an attempt: recorded, retried, then failed
            return _Outcome(False, None, type(error).__name__)
        return _Outcome(200 <= status < 300, status, None if status < 300 else "http_status")

    async def _secret(self, claim: _Claim) -> Secret:
        secret = self._secrets.get(claim.subscription_id)
        if secret is None:
            box = await self._box.box()
            secret = box.open(claim.subscription_id, claim.secret_sealed)
            self._secrets[claim.subscription_id] = secret
        return secret

    async def _record(self, claim: _Claim, outcome: _Outcome) -> None:
        if outcome.delivered:
            await self._pool.execute(
                _DELIVERED, claim.delivery_id, claim.lease_id, outcome.status_code
            )
            self.sent += 1
        else:
            attempts = claim.attempts + 1
            await self._pool.execute(
                _NOT_DELIVERED,
                claim.delivery_id,
                claim.lease_id,
                outcome.status_code,
                outcome.error,
                self._retry.window_s,
                self._retry.delay_after(attempts),
            )
        log.info(
            "webhook attempt",
            delivery_id=claim.delivery_id,
            subscription_id=claim.subscription_id,
            alert=claim.body["event"],
            status_code=outcome.status_code,
            error=outcome.error,
            delivered=outcome.delivered,
        )
