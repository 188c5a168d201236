"""The asyncpg connection pool the service runs on.

The event store and the projections speak SQL to asyncpg directly: it is the fastest PostgreSQL
driver for Python and the store's hot path is a handful of fixed statements. SQLAlchemy carries the
Alembic migrations.
"""

import asyncio
import functools
import json
import re
import time
from typing import Any

import asyncpg
import orjson
import structlog

from complaintcore.infra.settings import get_settings

log = structlog.get_logger("complaintcore.infra.database")

# What asyncpg and its pool raise while the server is down, shutting down, starting up or gone
# away mid-query: refused or missing sockets and resets (OSError), connect and acquire timeouts,
# the server's shutdown and start-up refusals (57P01 admin, 57P02 crash, 57P03 cannot connect
# now: OperatorInterventionError), a dropped connection (08xxx: PostgresConnectionError, which
# includes ConnectionDoesNotExistError), a connection asyncpg already closed (InterfaceError:
# "connection is closed", "pool is closing"), a full server (53300), and no host of a multi-host
# URL of the kind `target_session_attrs` asks for (a failover before a standby is promoted: a
# review pass found every command's start ending in a traceback then, with no waiting).
DATABASE_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.TargetServerAttributeNotMatched,
)


@functools.cache
def connect_timeout() -> float:
    """Seconds to connect to one host (COMPLAINTCORE_DATABASE_CONNECT_TIMEOUT)."""
    return get_settings().database_connect_timeout_s


# probes after the idle time, this far apart, this many before the session is ended
KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 10, 3


@functools.cache
def keepalive_statement() -> str | None:
    """What makes PostgreSQL notice a client host gone without closing its connections
    (COMPLAINTCORE_DATABASE_KEEPALIVE): its sessions, and the locks they hold (a runner's, a
    case's, a receipt's serial row), end within about a minute rather than the two hours of the
    server's defaults (found by a review pass cutting a host off); unanswered sends are given up
    after as long (`tcp_user_timeout`). Set once a session starts, by statements rather than
    startup parameters, which pgbouncer refuses unless told to ignore them. None when 0."""
    idle = get_settings().database_keepalive_s
    if not idle:
        return None
    given_up_ms = (idle + KEEPALIVE_INTERVAL_S * KEEPALIVE_PROBES) * 1000
    settings = {
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": KEEPALIVE_INTERVAL_S,
        "tcp_keepalives_count": KEEPALIVE_PROBES,
        "tcp_user_timeout": given_up_ms,
    }
    return "; ".join(f"SET {name} = {value}" for name, value in settings.items())


async def prepare_session(connection: asyncpg.Connection) -> None:
    """Every connection of the service's (`connect`, the pools'): the keepalives, then orjson's
    JSON codecs."""
    if (keepalive := keepalive_statement()) is not None:
        await connection.execute(keepalive)
    await use_binary_json(connection)


@functools.cache
def service_command_timeout() -> float | None:
    """Seconds a statement of the running service (its pools, its runners) may take
    (COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT; None: no limit). Batch work (rebuilds, imports,
    migrations) sets none: its long statements are expected."""
    return get_settings().database_command_timeout_s or None


_JSONB_VERSION = b"\x01"  # jsonb's binary wire format is a version byte and the JSON text


def _encode_jsonb(value: Any) -> bytes:
    return _JSONB_VERSION + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    try:
        return orjson.loads(memoryview(data)[1:])
    except orjson.JSONDecodeError:
        # a number jsonb holds and orjson refuses (beyond a double, 1e400: only in a row altered
        # behind the store's back) is read as the json module reads it, so the row can be judged
        return json.loads(bytes(memoryview(data)[1:]))


async def use_binary_json(connection: asyncpg.Connection) -> None:
    """orjson's codecs for json and jsonb, in PostgreSQL's binary format: what every connection
    of `connect` and of the pool has, and what COPY, which sends rows in binary, needs. Binary
    codecs hand orjson's bytes to the driver as they are (no str in between), and jsonb's are
    read without copying them (a rebuild reads every event). The values are the same as with
    the text codecs."""
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )
    await connection.set_type_codec(
        "json", schema="pg_catalog", encoder=orjson.dumps, decoder=orjson.loads, format="binary"
    )


def plain_url(database_url: str) -> str:
    """asyncpg wants `postgresql://`; accept the SQLAlchemy spelling too."""
    scheme, _, rest = database_url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else database_url


def single_host_urls(database_url: str) -> list[str]:
    """`postgresql://u@h1:p1,h2:p2/db?q` as one URL per host, in order (a URL with one host, or
    hosts given as `host=` parameters, as it is)."""
    url = plain_url(database_url)
    scheme, _, rest = url.partition("://")
    # the authority ends at the path, the query or the fragment, whichever comes first: a URL
    # naming no database (`h1,h2?target_session_attrs=...`, the database then the user's name)
    # gave its parameters to the last host only (found by a review pass)
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(netloc) :]
    user, at, hosts = netloc.rpartition("@")
    if "," not in hosts:
        return [url]
    return [f"{scheme}://{user}{at}{host}{tail}" for host in hosts.split(",") if host]


async def connect_each_host(dsn: str, **options: Any) -> asyncpg.Connection:
    """`asyncpg.connect`, each host of a multi-host URL in turn with a timeout of its own (the
    pools' `connect`). asyncpg gives all the hosts one timeout, so a host that takes the TCP
    connection and never answers (a hung or partitioned primary) used it all up and the next
    host was never tried; libpq's `connect_timeout` is per host, as this is. Each host is
    judged by the URL's `target_session_attrs` as asyncpg judges it."""
    options.setdefault("timeout", connect_timeout())
    last_error: BaseException | None = None
    for url in single_host_urls(dsn):
        try:
            return await asyncpg.connect(url, **options)
        except DATABASE_UNAVAILABLE_ERRORS as error:
            last_error = error
    assert last_error is not None
    raise last_error


async def connect(database_url: str, *, command_timeout: float | None = None) -> asyncpg.Connection:
    """One connection outside the pool, with the pool's JSON codecs (for a session that must
    outlive any pooled use, such as a held advisory lock)."""
    connection = await connect_each_host(plain_url(database_url), command_timeout=command_timeout)
    await prepare_session(connection)
    return connection


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Pooled connections carry no session state when they are released: nothing sets, listens
    or opens a cursor outside a transaction; the session locks taken on them, a command's case
    lock (and a merge's target's), are released by the command itself on every path, failures
    included (`application.complaint_service`, `case_command_store.release`, which closes a
    connection it cannot release on); any other session lock lives on a connection of its own,
    from `connect`. So a released connection needs no reset query (which would cost one round trip
    per release); asyncpg still rolls back a transaction left open."""


async def create_pool(
    database_url: str,
    *,
    min_size: int = 2,
    max_size: int = 20,
    command_timeout: float | None = None,
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        plain_url(database_url),
        min_size=min_size,
        max_size=max_size,
        connect=connect_each_host,
        command_timeout=command_timeout,
        init=prepare_session,
        reset=_keep_session,
        # No inactivity timer: it costs a timer armed on every release and cancelled on every
        # acquire, and the pool never holds more than `max_size` idle connections anyway.
        max_inactive_connection_lifetime=0,
    )
    assert pool is not None
    return pool


async def wait_until_reachable(database_url: str, timeout_s: float) -> None:
    """Return once the database accepts a connection; retry for up to `timeout_s` seconds.

    Lets `serve` start alongside a database that is still starting (containers, restarts).
    A refusal that waiting cannot cure (bad password, no such database) is raised at once, and so
    is the last connection error when time runs out.
    """
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            connection = await connect_each_host(plain_url(database_url), timeout=5)
        except DATABASE_UNAVAILABLE_ERRORS as error:
            # a URL asyncpg cannot read is an interface error too, which waiting cannot cure
            if isinstance(error, asyncpg.ClientConfigurationError):
                raise
            if time.monotonic() + delay > deadline:
                raise
            log.warning("waiting for the database", error=type(error).__name__, retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        else:
            await connection.close()
            return
