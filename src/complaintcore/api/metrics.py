"""`GET /metrics`: the Prometheus text format (README "Metrics").

Two kinds of series:

- counted where things happen (`infra/metrics.py`): requests, commands, store appends, the pool.
  With `serve --workers N` each worker writes its samples to files in `PROMETHEUS_MULTIPROC_DIR`
  and whichever worker answers a scrape sums them all;
- read from the database when scraped, by the answering process alone (never summed over
  workers, for every worker would read the same figures): projection lag, the webhook queue,
  open and overdue handling clocks per head office, how far ahead the holiday calendar reaches.
  One short query each, as `GET /v1/projections` and `GET /v1/projections/webhooks` make.

Access: with `COMPLAINTCORE_METRICS_TOKEN` set, a scraper sends `Authorization: Bearer <it>`
(401 otherwise); unset, only loopback clients are answered (403 otherwise). Not part of the
HTTP contract (`openapi.yaml`): an operator's endpoint, like the scrape config that reads it.
"""

import asyncio
import hmac
import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

import asyncpg
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import SecretStr
from starlette.types import Scope

from complaintcore.api.auth import bearer_token_of, forbidden, unauthorized
from complaintcore.api.routes.statistics import FEED_PROJECTIONS
from complaintcore.application.business_day import shanghai_today
from complaintcore.domain.deadlines import ClockStatus
from complaintcore.infra.database import DATABASE_UNAVAILABLE_ERRORS
from complaintcore.infra.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    forget_dead_processes,
    multiprocess_dir,
    record_pool,
)
from complaintcore.projections.clock_sql import case_view_columns, handling_clock_is, running
from complaintcore.projections.runner import projection_lag
from complaintcore.webhooks.runtime import webhook_lag

router = APIRouter(include_in_schema=False)
log = structlog.get_logger("complaintcore.metrics")

UNMATCHED = "unmatched"
# Set in a request's scope by the HTTP protocol when it answered the client itself while the app
# had the request in hand (a body too slow: 408): what the app then records is not what the
# client got (found by a review pass: a 400 never sent was counted, beside the 408).
ANSWERED_BY_THE_PROTOCOL = "complaintcore.answered_status"


# --- requests (CorrelationIdMiddleware calls this once a request is answered) ------------------


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """Count a request under its route's template: the one the router (or the command lane)
    chose, `unmatched` when none took it (an unknown path, or a refusal before routing)."""
    route = route_template(scope)
    method = scope["method"]
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_REQUEST_DURATION.labels(route, method).observe(seconds)


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


# --- the scrape --------------------------------------------------------------------------------


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every series, in the Prometheus text format."""
    _check_access(request)
    pool: asyncpg.Pool = request.app.state.pool
    record_pool(pool.get_size(), pool.get_idle_size())
    read = await read_from_database(request.app)
    body = generate_latest(_counted_registry()) + generate_latest(_Families(read))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _check_access(request: Request) -> None:
    token: SecretStr | None = request.app.state.metrics_token
    if token is not None:
        sent = bearer_token_of(request.headers.get("authorization"))
        # no token sent is never the token, whatever the setting holds
        if not sent or not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
            raise unauthorized("Send the metrics token: `Authorization: Bearer <token>`.")
        return
    host = request.client.host if request.client else ""
    if not _is_loopback(host):
        raise forbidden(
            "/metrics answers loopback clients only while COMPLAINTCORE_METRICS_TOKEN is unset."
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_multiprocess_registry: CollectorRegistry | None = None


def _counted_registry() -> Any:
    """The counted series: every worker's (summed from their files), or this process's."""
    global _multiprocess_registry
    folder = multiprocess_dir()
    if folder is None:
        return REGISTRY
    forget_dead_processes()
    if _multiprocess_registry is None:
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=folder)
        _multiprocess_registry = registry
    return _multiprocess_registry


class _Families:
    """Metric families read at scrape time, in the shape `generate_latest` reads a registry."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


SCRAPE_DATABASE_TIMEOUT_S = 10.0


async def read_from_database(app: Any) -> list[Metric]:
    """The figures read at scrape time; with the database unreachable, only
    `complaintcore_scrape_database_up` 0 (the counted series are still answered)."""
    up = GaugeMetricFamily(
        "complaintcore_scrape_database_up",
        "1 when this scrape could read the database-derived series below, else 0.",
    )
    pool: asyncpg.Pool = app.state.scrape_pool  # the service's pool may be all taken
    try:
        async with asyncio.timeout(SCRAPE_DATABASE_TIMEOUT_S):  # a scrape answers, with or without
            families = [
                await _projection_lag(pool),
                *await _webhook_queue(pool),
                await _open_clocks(pool),
                await _calendar_known_through(app),
            ]
    except (*DATABASE_UNAVAILABLE_ERRORS, asyncpg.PostgresError) as error:
        # a statement the server refused (a lock or statement timeout met behind a migration or
        # a rebuild's swap, a schema another release made) is as unreadable, as /readyz takes
        # it: a 500 lost every counted series of the scrape (found by a review pass)
        log.warning("metrics without the database", error=type(error).__name__)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, *families]


async def _projection_lag(pool: asyncpg.Pool) -> Metric:
    family = GaugeMetricFamily(
        "complaintcore_projection_lag_events",
        "Events of the feed a projection has not applied yet (as GET /v1/projections).",
        labels=["projection"],
    )
    for name in FEED_PROJECTIONS:
        lag = await projection_lag(pool, name)
        family.add_metric([name], lag["lag_events"])
    return family


async def _webhook_queue(pool: asyncpg.Pool) -> list[Metric]:
    lag = await webhook_lag(pool, None)
    fanout = GaugeMetricFamily(
        "complaintcore_webhook_fanout_lag_alerts",
        "Alerts the webhook fan-out has not turned into deliveries yet.",
    )
    fanout.add_metric([], lag["fanout"]["lag_alerts"])
    dispatch = lag["dispatch"]
    deliveries = GaugeMetricFamily(
        "complaintcore_webhook_deliveries",
        "Webhook deliveries of live subscriptions by state: open (pending or retrying), "
        "retrying, due now, in flight (leased), failed.",
        labels=["state"],
    )
    for state in ("open", "retrying", "due", "in_flight", "failed"):
        deliveries.add_metric([state], dispatch[state])
    oldest = GaugeMetricFamily(
        "complaintcore_webhook_oldest_unsent_age_seconds",
        "Age of the oldest delivery never tried yet (0: none waits).",
    )
    oldest.add_metric([], dispatch["oldest_unsent_age_s"])
    return [fanout, deliveries, oldest]


_CLOCKS = case_view_columns("v")
_OPEN_CLOCKS = f"""
WITH RECURSIVE tree (code, head_office) AS (
    SELECT code, code FROM institutions WHERE parent IS NULL
    UNION ALL
    SELECT i.code, t.head_office FROM institutions AS i JOIN tree AS t ON i.parent = t.code
),
clocks AS (
    SELECT t.head_office,
           count(*) AS open,
           count(*) FILTER (
               WHERE {" AND ".join(handling_clock_is(ClockStatus.OVERDUE, _CLOCKS, lambda: "$1", lambda: "$1"))}
           ) AS overdue
    FROM case_view AS v JOIN tree AS t ON t.code = v.respondent_institution
    WHERE {" AND ".join(running(_CLOCKS))}
    GROUP BY t.head_office
)
SELECT h.code AS head_office, coalesce(c.open, 0) AS open, coalesce(c.overdue, 0) AS overdue
FROM institutions AS h LEFT JOIN clocks AS c ON c.head_office = h.code
WHERE h.parent IS NULL
"""  # noqa: E501


async def _open_clocks(pool: asyncpg.Pool) -> Metric:
    family = GaugeMetricFamily(
        "complaintcore_open_clocks",
        "Handling clocks running (or paused) per head office's tree, and those overdue today "
        "(Asia/Shanghai), from the case list.",
        labels=["head_office", "status"],
    )
    for row in await pool.fetch(_OPEN_CLOCKS, shanghai_today()):
        family.add_metric([row["head_office"], "open"], row["open"])
        family.add_metric([row["head_office"], "overdue"], row["overdue"])
    return family


async def _calendar_known_through(app: Any) -> Metric:
    family = GaugeMetricFamily(
        "complaintcore_calendar_known_through_year",
        "The last year up to which every year from this one (Asia/Shanghai) has holiday calendar "
        "data, stored or seeded: a date computation reaching past it is refused "
        "(calendar_year_missing). Load the next year as soon as it is published.",
    )
    calendar = await app.state.scrape_calendars.working_day_calendar()
    family.add_metric([], calendar.known_through(shanghai_today().year))
    return family
