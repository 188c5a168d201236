"""`complaintcore runners` (its arguments: `cli/parsers/server.py`; `serve` supervises one:
`cli/runner_supervisor.py`).

The runner process keeps the work that follows the database rather than the requests: the feed
projections' runners (statistics, alerts; single-active across every process and host by their
advisory locks, a standby takes over when the holder's session ends) and the webhook workers
(the fan-out, one at a time by its checkpoint row, and the dispatcher, which shares deliveries
with any other by their claims). Any number may run, here or on other hosts.

`serve` starts one as a child process by default (`COMPLAINTCORE_RUNNERS=separate`): started
after the migrations and the master key check, restarted with back-off if it dies, stopped when
`serve` stops. The child runs in a session of its own (a Ctrl-C meant for `serve` reaches
`serve`, which then stops it) and ends itself when `serve` is gone, even killed
(`PR_SET_PDEATHSIG`, and a watch on its parent), so it never holds a runner's lock for a dead
deployment.
"""

import argparse
import asyncio
import os
import signal
import socket
from contextlib import AsyncExitStack
from urllib.parse import quote

import structlog
import uvloop

from complaintcore.application.business_day import shanghai_today
from complaintcore.application.policy_store import PolicyStore
from complaintcore.cli.common import database_url, fail
from complaintcore.cli.runner_supervisor import RUNNER_PARENT_VARIABLE
from complaintcore.cli.server import StartRefused, key_and_database
from complaintcore.crypto.keys import KeyProvider
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool, service_command_timeout
from complaintcore.infra.garbage_collection import exempt_startup_objects
from complaintcore.infra.metrics import mark_this_process_dead
from complaintcore.infra.parent_process import die_with_parent
from complaintcore.infra.settings import Settings
from complaintcore.infra.tasks import cancel_and_wait
from complaintcore.projections.alerts import alerts_projection
from complaintcore.projections.runner import (
    SERVE_ID_VARIABLE,
    background_runners,
    runner_process_name,
)
from complaintcore.reference.institutions import InstitutionDirectory
from complaintcore.webhooks.runtime import webhook_runtime

log = structlog.get_logger("complaintcore.runners")

# Events a runner applies per transaction: the in-process runners take fewer, as they share
# the event loop with requests; here nothing else waits on the loop.
BATCH_SIZE = 1000
PARENT_WATCH_S = 1.0


def runners(args: argparse.Namespace, settings: Settings) -> int:
    supervised = bool(getattr(args, "supervised", False))
    parent = None
    if supervised:
        # `serve`'s pid as `serve` gave it: one that died while this process started (before
        # the death signal was asked for) is told apart from a parent still there
        parent = int(os.environ.get(RUNNER_PARENT_VARIABLE) or os.getppid())
        die_with_parent()
        if os.getppid() != parent:
            log.warning("serve is gone: the runner process does not start")
            return 0
    with database_url(settings) as url:
        try:
            # under `serve`, which has applied the migrations already
            _, provider = key_and_database(url, settings, migrate=not supervised)
        except StartRefused as refused:
            if supervised:  # on serve's stderr, as a log line like serve's own
                log.error("runner process refused to start", reason=str(refused))
                return 1
            return fail(str(refused))
        try:
            # uvloop, as uvicorn runs the requests: the runners fold every command's events
            # beside the server, on the same cores, and its loop costs less per round trip
            uvloop.run(run_runners(url, provider, settings, parent=parent))
        finally:
            mark_this_process_dead()
    return 0


def application_name() -> str:
    """What the runner process's database sessions are called (`pg_stat_activity`): after the
    `serve` it belongs to, or its own host and process id when it runs alone."""
    serve_id = os.environ.get(SERVE_ID_VARIABLE) or f"{socket.gethostname()}:{os.getpid()}"
    return runner_process_name(serve_id)


def with_application_name(url: str, name: str) -> str:
    """`url` with `application_name` set: asyncpg passes query parameters it does not know to
    the server as settings, the last of a name winning (so over one the URL names already)."""
    base, _, query = url.partition("?")
    parameter = f"application_name={quote(name, safe='')}"
    return f"{base}?{query}&{parameter}" if query else f"{base}?{parameter}"


async def run_runners(
    url: str, provider: KeyProvider, settings: Settings, *, parent: int | None = None
) -> None:
    """The projection runners and the webhook workers until SIGTERM or SIGINT (or, `parent`
    given, until this process's parent is gone)."""
    url = with_application_name(url, application_name())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watch = (
        asyncio.create_task(_watch_parent(parent, stop), name="parent watch")
        if parent is not None
        else None
    )
    pool = await create_pool(
        url,
        min_size=1,
        max_size=max(2, min(settings.pool_max_size, 8)),
        command_timeout=service_command_timeout(),
    )
    try:
        store = PostgresEventStore(pool)
        policies = PolicyStore(pool)
        institutions = InstitutionDirectory(pool)
        async with AsyncExitStack() as stack:
            runners = await stack.enter_async_context(
                background_runners(
                    url,
                    store,
                    enabled=settings.projection_runner,
                    poll_interval=settings.projection_poll_s,
                    standby_retry=settings.projection_standby_s,
                    also=[alerts_projection(shanghai_today, policies.due_soon_days)],
                    batch_size=BATCH_SIZE,
                )
            )
            webhooks = await stack.enter_async_context(
                webhook_runtime(pool, institutions, provider, settings)
            )
            exempt_startup_objects()
            log.info(
                "runner process started",
                pid=os.getpid(),
                projections=sorted(runners),
                webhook_workers=webhooks.dispatcher is not None,
            )
            await stop.wait()
            log.info("runner process stopping")
    finally:
        if watch is not None:
            await cancel_and_wait([watch])
        await pool.close()
    log.info("runner process stopped")


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_WATCH_S)
    log.warning("serve is gone: the runner process stops")
    stop.set()
