"""The composition root: builds the FastAPI app and the services it runs on."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from complaintcore.api import health
from complaintcore.api import metrics as metrics_route
from complaintcore.api.command_lane import CommandLane
from complaintcore.api.error_mapping import install_domain_problem_handlers
from complaintcore.api.middleware import CorrelationIdMiddleware, HeadAsGet
from complaintcore.api.openapi_standard import install_standard_openapi
from complaintcore.api.problems import install_problem_handlers, install_problem_openapi
from complaintcore.api.request_gate import RequestGate
from complaintcore.api.routes import calendars as calendar_routes
from complaintcore.api.routes import complainants as complainant_routes
from complaintcore.api.routes import complaint_commands, complaint_queries, feed
from complaintcore.api.routes import institution_policy as institution_policy_routes
from complaintcore.api.routes import institutions as institution_routes
from complaintcore.api.routes import personal_data as personal_data_routes
from complaintcore.api.routes import statistics as statistics_routes
from complaintcore.api.routes import webhooks as webhook_routes
from complaintcore.application.business_day import shanghai_today
from complaintcore.application.complaint_service import ComplaintService
from complaintcore.application.idempotency import load_fingerprint_key
from complaintcore.application.master_key import (
    MasterKeyNotConfigured,
    case_keys_of,
    load_key_provider,
)
from complaintcore.application.policy_store import PolicyStore
from complaintcore.auth.tokens import SeenTokens
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.crypto.keyed_hash import KeyedHash
from complaintcore.crypto.keys import KeyProvider
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import connect, create_pool, service_command_timeout
from complaintcore.infra.garbage_collection import exempt_startup_objects
from complaintcore.infra.log_config import configure_logging
from complaintcore.infra.metrics import (
    mark_this_process_dead,
    record_replicas,
    refresh_pool_gauge,
)
from complaintcore.infra.parent_process import die_with_parent
from complaintcore.infra.read_replicas import ReplicaSet
from complaintcore.infra.settings import Settings, get_settings, otel_traces_url
from complaintcore.projections import alerts, statistics
from complaintcore.projections.alerts import alerts_projection
from complaintcore.projections.case_view import load_index_key
from complaintcore.projections.runner import (
    SERVE_ID_VARIABLE,
    RunnerProcess,
    background_runners,
    runner_process_name,
)
from complaintcore.reference.calendars import CalendarRepository
from complaintcore.reference.institutions import InstitutionDirectory
from complaintcore.webhooks.runtime import webhook_runtime


def create_app(
    database_url: str,
    settings: Settings | None = None,
    *,
    runners_in_process: bool = True,
    runner_process: str | None = None,
) -> FastAPI:
    """`runners_in_process`: this process runs the projection runners and the webhook workers
    (a single process, tests); else they run in a process of their own (`complaintcore
    runners`), `runner_process` naming this deployment's one (`serve`'s child) if it has one."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the master key: `serve` resolved and checked the file (and set
        # COMPLAINTCORE_MASTER_KEY_FILE for its workers). Loaded first: a refusal leaks no pool
        if settings.master_key_file is None:
            raise MasterKeyNotConfigured(
                "COMPLAINTCORE_MASTER_KEY_FILE is not set: the service never stores personal "
                "data in clear; start it with `complaintcore serve`, which resolves the key"
            )
        app.state.key_provider = load_key_provider(settings.master_key_file, settings.cipher_suite)
        app.state.case_keys = case_keys_of(app.state.key_provider, settings.cipher_suite)
        app.state.index_key, app.state.fingerprint_key = await _service_keys_of(
            database_url, app.state.key_provider, settings.cipher_suite
        )
        pool = await create_pool(
            database_url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            command_timeout=service_command_timeout(),
        )
        app.state.pool = pool
        # the health check and the metrics scrape each read on a connection of their own: with
        # every connection of the pool held by commands (queued on one case's lock, say), they
        # answered "database unreachable" and hung, and with one pool for both, two scrapes
        # waiting on a lock starved the health check (found by review passes)
        app.state.health_pool = await create_pool(
            database_url, min_size=0, max_size=1, command_timeout=WATCH_STATEMENT_TIMEOUT_S
        )
        app.state.scrape_pool = await create_pool(
            database_url, min_size=0, max_size=1, command_timeout=WATCH_STATEMENT_TIMEOUT_S
        )
        app.state.scrape_calendars = CalendarRepository(app.state.scrape_pool)
        app.state.reads = ReplicaSet(
            pool,
            settings.read_replicas,
            max_lag_s=settings.read_replica_max_lag_s,
            check_s=settings.read_replica_check_s,
        )
        app.state.store = PostgresEventStore(pool)
        # reference data: the institution tree and the holiday calendars
        app.state.institutions = InstitutionDirectory(pool)
        app.state.calendars = CalendarRepository(pool)
        app.state.policies = PolicyStore(pool)
        app.state.complaints = ComplaintService(
            pool,
            app.state.store,
            app.state.institutions,
            app.state.calendars,
            app.state.case_keys,
            app.state.index_key,
            policies=app.state.policies,
        )
        app.state.seen_tokens = SeenTokens()
        try:
            async with (
                background_runners(
                    database_url,
                    app.state.store,
                    enabled=settings.projection_runner and runners_in_process,
                    poll_interval=settings.projection_poll_s,
                    standby_retry=settings.projection_standby_s,
                    also=[alerts_projection(shanghai_today, app.state.policies.due_soon_days)],
                ) as runners,
                webhook_runtime(
                    pool,
                    app.state.institutions,
                    app.state.key_provider,
                    settings,
                    workers=runners_in_process,
                    runner_process=runner_process,
                ) as webhooks,
            ):
                app.state.projection_runners = runners
                if runner_process is not None and settings.projection_runner:
                    # `GET /v1/projections` tells "here" for the runner of this `serve`'s child
                    process = RunnerProcess(runner_process)
                    app.state.projection_runners = dict.fromkeys(FEED_PROJECTION_NAMES, process)
                app.state.webhooks = webhooks
                pool_gauge = asyncio.get_running_loop().create_task(
                    refresh_pool_gauge(pool.get_size, pool.get_idle_size)
                )
                replica_checks = asyncio.get_running_loop().create_task(
                    app.state.reads.run_checks(record_replicas)
                )
                exempt_startup_objects()
                try:
                    yield
                finally:
                    pool_gauge.cancel()
                    replica_checks.cancel()
        finally:
            await app.state.reads.close()
            await app.state.health_pool.close()
            await app.state.scrape_pool.close()
            await pool.close()
            mark_this_process_dead()

    # FastAPI with /docs and /redoc loading their scripts and styles from the package
    app = FastAPIOffline(
        static_url=DOCS_ASSETS_PATH,
        title="complaintcore",
        version="1",
        summary="Event-sourced consumer-complaint handling under CBIRC Order 2020 No. 3",
        lifespan=lifespan,
    )
    # the last added runs first: every request is logged with its correlation id, and passes
    # the gate (NUL, body size, token) before the lane or a route reads its body
    app.add_middleware(HeadAsGet)  # innermost: the lane and the routes see a GET
    app.add_middleware(CommandLane, router=app.router)
    app.add_middleware(RequestGate, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(CorrelationIdMiddleware)
    install_problem_handlers(app)
    install_domain_problem_handlers(app)
    install_problem_openapi(app)
    install_standard_openapi(app)
    app.include_router(health.router)
    app.state.metrics_token = settings.metrics_token
    app.include_router(metrics_route.router)  # GET /metrics, outside the OpenAPI document
    # /v1 routers
    app.include_router(institution_routes.router)
    app.include_router(institution_policy_routes.router)
    app.include_router(calendar_routes.router)
    app.include_router(complaint_commands.router)
    app.include_router(complaint_queries.router)
    app.include_router(feed.router)
    app.include_router(statistics_routes.router)
    app.include_router(personal_data_routes.router)
    app.include_router(complainant_routes.router)
    app.include_router(webhook_routes.router)
    if traces_url := otel_traces_url():  # OpenTelemetry traces, off by default
        from complaintcore.api.tracing import install_tracing

        install_tracing(app, traces_url)
    return app


async def _service_keys_of(
    database_url: str, provider: KeyProvider, suite_name: str
) -> tuple[IndexKey, KeyedHash]:
    """The blind index's key (what the commands write and the search looks up with) and the
    request fingerprints' (`IdempotentRequest`), read (made on a new database) once at start, on
    a connection of their own, before the pool."""
    connection = await connect(database_url)
    try:
        index_key = await load_index_key(connection, provider, suite_name)
        return index_key, await load_fingerprint_key(connection, provider, suite_name)
    finally:
        await connection.close()


DOCS_ASSETS_PATH = "/docs-assets"
FEED_PROJECTION_NAMES = (statistics.NAME, alerts.NAME)  # the runners of `background_runners`
WATCH_STATEMENT_TIMEOUT_S = 5.0  # a health check's or a scrape's statement: longer is no answer


def _end_with_serve(serve_id: str) -> None:
    """A request worker of `serve --workers N` ends with its `serve`, as the runner process
    does: a `serve` killed could not stop them, and they went on answering on its port with no
    runner behind them, keeping the next `serve` from binding it (found by a review pass)."""
    serve_pid = int(serve_id.rsplit(":", 1)[-1])
    if os.getpid() == serve_pid:  # `serve`'s own process, its one worker
        return
    die_with_parent()
    if os.getppid() != serve_pid:  # `serve` ended before this worker could ask
        raise SystemExit("serve is gone: the request worker does not start")


def create_app_from_environment() -> FastAPI:
    """Factory for `uvicorn --factory` workers; `complaintcore serve` sets DATABASE_URL and
    COMPLAINTCORE_MASTER_KEY_FILE first."""
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    key_file = os.environ.get("COMPLAINTCORE_MASTER_KEY_FILE")
    if key_file and settings.master_key_file is None:
        # one worker runs in `serve`'s own process, whose settings were read before `serve`
        # resolved the embedded default's key file
        settings = settings.model_copy(update={"master_key_file": Path(key_file)})
    # `serve --runners` (or COMPLAINTCORE_RUNNERS): in this process, in `serve`'s child process
    # (named after the `serve`, cli/runners.py), or elsewhere; `serve` sets the variable to its
    # choice, which its own process read before (when it is the one worker)
    runners = os.environ.get("COMPLAINTCORE_RUNNERS")
    if runners in ("separate", "in-process", "none") and runners != settings.runners:
        settings = settings.model_copy(update={"runners": runners})
    serve_id = os.environ.get(SERVE_ID_VARIABLE)
    if serve_id:
        _end_with_serve(serve_id)
    return create_app(
        os.environ["DATABASE_URL"],
        settings,
        runners_in_process=settings.runners == "in-process",
        runner_process=(
            runner_process_name(serve_id) if settings.runners == "separate" and serve_id else None
        ),
    )


def pool_of(app: FastAPI) -> asyncpg.Pool:
    return app.state.pool
