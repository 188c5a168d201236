"""The webhook workers, and what the routes use.

`webhook_runtime` opens the subscription store (the `webhook-secrets` service key loaded once,
outside any transaction) and, unless disabled (`workers=False`: an API process whose runners run
in a process of their own, `complaintcore runners`; `COMPLAINTCORE_WEBHOOK_WORKERS=false`, for
tests), starts two background tasks for the life of the block: the fan-out loop and the
dispatcher, with its HTTP clients (one per subscription, `clients`). Any number of processes may
run both; the fan-out's checkpoint lock lets one work at a time, and dispatchers share the
deliveries through their claims. The fan-out wakes the dispatcher of its own process when it
made deliveries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from complaintcore.crypto.keys import KeyProvider
from complaintcore.infra.settings import Settings
from complaintcore.infra.tasks import cancel_and_wait
from complaintcore.projections.runner import RUNNER_PROCESS_PREFIX
from complaintcore.reference.institutions import InstitutionDirectory
from complaintcore.webhooks.dispatcher import Dispatcher, RetryPolicy
from complaintcore.webhooks.fanout import DeliveryStatistics, fan_out_once, fanout_lag
from complaintcore.webhooks.signing import SecretKeyring, SecretSource
from complaintcore.webhooks.subscriptions import SubscriptionStore
from complaintcore.webhooks.urls import AllowList, Resolver, resolve_with_loop

__all__ = [
    "WebhookRuntime",
    "run_fanout",
    "webhook_lag",
    "webhook_runtime",
]

log = structlog.get_logger("complaintcore.webhooks")

FANOUT_BATCH = 500
# How long a graceful stop waits for the sends in flight: within the 15 s the runner supervisor
# gives its process before killing it (cli/runner_supervisor.py), the rest of its stop included.
STOP_GRACE_S = 10.0


@dataclass
class WebhookRuntime:
    store: SubscriptionStore
    allow: AllowList
    resolver: Resolver
    dispatcher: Dispatcher | None = None
    # the `application_name` of this deployment's runner process when the workers run there
    # (`serve`'s child), for `webhook_lag` to tell whether they run
    runner_process: str | None = None


def dispatcher_from_settings(
    pool: asyncpg.Pool,
    box: SecretSource,
    allow: AllowList,
    settings: Settings,
    resolver: Resolver = resolve_with_loop,
) -> Dispatcher:
    return Dispatcher(
        pool,
        box,
        allow,
        resolver=resolver,
        retry=RetryPolicy(
            base_s=settings.webhook_retry_base_s,
            cap_s=settings.webhook_retry_cap_s,
            window_s=settings.webhook_retry_window_s,
        ),
        concurrency=settings.webhook_concurrency,
        per_subscription=settings.webhook_per_subscription,
        lease_s=settings.webhook_lease_s,
        timeout_s=settings.webhook_timeout_s,
        poll_s=settings.webhook_poll_s,
    )


async def run_fanout(
    pool: asyncpg.Pool, poll_s: float, on_made: Any = None, batch_size: int = FANOUT_BATCH
) -> None:
    """Fan new alerts out until cancelled (a database outage is waited out)."""
    statistics = DeliveryStatistics()
    while True:
        try:
            async with pool.acquire() as connection:
                read, made = await fan_out_once(connection, batch_size)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("webhook fan-out failed", error=type(error).__name__)
            read, made = 0, 0
        if made and on_made is not None:
            on_made()
        if made:
            await _keep_statistics(pool, statistics, made)
        if read < batch_size:
            await asyncio.sleep(poll_s)


async def _keep_statistics(pool: asyncpg.Pool, statistics: DeliveryStatistics, made: int) -> None:
    try:
        async with pool.acquire() as connection:
            await statistics.after_fan_out(connection, made)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        # the deliveries are made and the dispatcher woken: only the claim's plan may suffer
        log.warning("webhook deliveries not analyzed", error=type(error).__name__)


@asynccontextmanager
async def webhook_runtime(
    pool: asyncpg.Pool,
    directory: InstitutionDirectory,
    provider: KeyProvider,
    settings: Settings,
    resolver: Resolver = resolve_with_loop,
    *,
    workers: bool = True,
    runner_process: str | None = None,
) -> AsyncIterator[WebhookRuntime]:
    box = SecretKeyring(pool, provider, settings.cipher_suite)
    allow = AllowList.parse(settings.webhook_allow_hosts)
    runtime = WebhookRuntime(SubscriptionStore(pool, directory, box), allow, resolver)
    if not (workers and settings.webhook_workers):
        if settings.webhook_workers:
            runtime.runner_process = runner_process
        yield runtime
        return
    dispatcher = dispatcher_from_settings(pool, box, allow, settings, resolver)
    runtime.dispatcher = dispatcher
    fanout = asyncio.create_task(
        run_fanout(pool, settings.webhook_poll_s, dispatcher.wake), name="webhook fan-out"
    )
    dispatching = asyncio.create_task(dispatcher.run(), name="webhook dispatcher")
    try:
        yield runtime
    finally:
        await cancel_and_wait([fanout])
        # the sends in flight answered and recorded first: a restart does not send every one
        # of them again once its lease ends
        dispatcher.stop(STOP_GRACE_S)
        await asyncio.wait([dispatching], timeout=STOP_GRACE_S + 1)
        await cancel_and_wait([dispatching])


_DISPATCH_LAG = """
SELECT count(*) FILTER (WHERE status IN ('pending', 'retrying')) AS open,
       count(*) FILTER (WHERE status = 'retrying') AS retrying,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (
           WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now()
             AND (leased_until IS NULL OR leased_until <= now())
       ) AS due,
       count(*) FILTER (WHERE leased_until > now()) AS in_flight,
       min(d.created_at) FILTER (WHERE status = 'pending' AND attempts = 0) AS oldest_unsent_at
FROM webhook_deliveries AS d
JOIN webhook_subscriptions AS s ON s.id = d.subscription_id AND s.deleted_at IS NULL
WHERE status IN ('pending', 'retrying', 'failed')
"""


# the runner processes connected to this database (`complaintcore runners`, by their sessions'
# `application_name`)
_RUNNER_PROCESSES = """
SELECT coalesce(array_agg(DISTINCT application_name), '{}') FROM pg_stat_activity
WHERE starts_with(application_name, $1) AND datname = current_database()
"""


async def webhook_lag(pool: asyncpg.Pool, runtime: WebhookRuntime | None) -> dict[str, Any]:
    """How far the fan-out is behind `alerts`, and how many deliveries wait (and for how long
    the oldest never-tried one has); `workers`: `here` when this process runs the workers, or
    its `serve`'s runner process does and is connected; `elsewhere` when another runner process
    is connected (on this host or another); else `none`."""
    async with pool.acquire() as connection:
        fanout = await fanout_lag(connection)
        dispatch = dict(await connection.fetchrow(_DISPATCH_LAG))
        now = await connection.fetchval("SELECT now()")
        runner_processes = set(await connection.fetchval(_RUNNER_PROCESSES, RUNNER_PROCESS_PREFIX))
    if runtime is not None and (
        runtime.dispatcher is not None or runtime.runner_process in runner_processes
    ):
        workers = "here"
    else:
        workers = "elsewhere" if runner_processes else "none"
    oldest = dispatch.pop("oldest_unsent_at")
    return {
        "fanout": {
            "checkpoint": fanout.get("position", 0),
            "head": fanout.get("head", 0),
            "lag_alerts": fanout.get("lag_alerts", 0),
        },
        "dispatch": {
            **dispatch,
            "oldest_unsent_age_s": (now - oldest).total_seconds() if oldest else 0.0,
        },
        "workers": workers,
    }
