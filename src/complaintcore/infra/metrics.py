"""The service's Prometheus series, recorded where things happen (README "Metrics").

Every layer above may count here; `api/metrics.py` answers `GET /metrics` with them and with the
figures read from the database at scrape time.

Several worker processes (`complaintcore serve --workers N`): `serve` sets
`PROMETHEUS_MULTIPROC_DIR` to a fresh folder before uvicorn starts its workers, so that
`prometheus_client`, imported after, writes each process's samples to files there and a scrape
answered by any worker sums them all (`MultiProcessCollector`). Without it (one process, tests)
the samples live in this process's default registry.

Labels are few and bounded: route templates (never raw paths), command names, rule codes,
outcomes; never an id.
"""

import asyncio
import math
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram

if TYPE_CHECKING:
    from complaintcore.infra.read_replicas import ReplicaSet

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "complaintcore_http_requests",
    "HTTP requests answered, by route template (`unmatched` when no route took the request), "
    "method and status.",
    ("route", "method", "status"),
)
HTTP_REQUEST_DURATION = Histogram(
    "complaintcore_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template and method.",
    ("route", "method"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
COMMANDS = Counter(
    "complaintcore_commands",
    "Commands on cases by outcome (accepted, refused by a rule, invalid, conflict with a "
    "concurrent change or If-Match, error) and rule code (empty unless refused).",
    ("command", "outcome", "code"),
)
STORE_APPENDS = Counter(
    "complaintcore_store_appends",
    "Events written by the event store, by path: `grouped` (the group commit), `alone` (one "
    "append's statement), `batch` (one statement for many streams), `bulk` (COPY).",
    ("path",),
)
GROUP_COMMIT_BATCH_SIZE = Histogram(
    "complaintcore_store_group_commit_batch_size",
    "Appends sharing one statement and one commit in the store's group commit.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
DB_POOL_CONNECTIONS = Gauge(
    "complaintcore_db_pool_connections",
    "This process's database pool: connections in use, idle, and open in all (size).",
    ("state",),
    multiprocess_mode="liveall",  # one series per live worker (label `pid`)
)

READ_REPLICA_LAG = Gauge(
    "complaintcore_read_replica_lag_seconds",
    "How far each read replica is behind the primary, as this process last read it (NaN "
    "while it does not answer).",
    ("replica",),
    multiprocess_mode="liveall",
)
READ_REPLICA_LAG_BYTES = Gauge(
    "complaintcore_read_replica_lag_bytes",
    "The primary's WAL position minus the replica's replayed position.",
    ("replica",),
    multiprocess_mode="liveall",
)
READ_REPLICA_SERVING = Gauge(
    "complaintcore_read_replica_serving",
    "1 while this process sends reads to the replica (up, a standby, within the lag allowed).",
    ("replica",),
    multiprocess_mode="liveall",
)


def multiprocess_dir() -> str | None:
    """The folder of the workers' sample files, when several processes share them."""
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def mark_this_process_dead() -> None:
    """Drop this process's live gauges from the shared files (a worker shutting down); its
    counters stay, so that totals never go down."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]*_(\d+)\.db$")


def forget_dead_processes() -> list[int]:
    """Drop the live gauges of the processes gone without their shutdown (killed: the OOM
    killer, uvicorn ending a worker that stopped answering), which `mark_this_process_dead`
    never ran for: a scrape summed a dead worker's pool in for ever (found by a review pass).
    The process ids dropped."""
    folder = multiprocess_dir()
    if folder is None:
        return []
    from prometheus_client import multiprocess

    found = {
        int(match[1]) for name in os.listdir(folder) if (match := _LIVE_GAUGE_FILE.match(name))
    }
    dead = sorted(pid for pid in found if not _alive(pid))
    for pid in dead:
        multiprocess.mark_process_dead(pid, folder)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process of that id
    return True


def record_pool(size: int, idle: int) -> None:
    DB_POOL_CONNECTIONS.labels("in_use").set(size - idle)
    DB_POOL_CONNECTIONS.labels("idle").set(idle)
    DB_POOL_CONNECTIONS.labels("size").set(size)


async def refresh_pool_gauge(
    size: Callable[[], int], idle: Callable[[], int], every_s: float = 1.0
) -> None:
    """Keep this process's pool gauge current (a worker that answers no scrape too)."""
    while True:
        record_pool(size(), idle())
        await asyncio.sleep(every_s)


def record_replicas(reads: "ReplicaSet") -> None:
    """The read replicas' lag and use as just checked (`ReplicaSet.run_checks`); a lag not
    known (the replica down) is NaN."""
    for replica in reads.replicas:
        known = replica.up and replica.lag_s is not None
        serving = replica.usable(reads.max_lag_s, reads.fresh_for_s)
        READ_REPLICA_SERVING.labels(replica.name).set(1 if serving else 0)
        READ_REPLICA_LAG.labels(replica.name).set(replica.lag_s if known else math.nan)
        lag_bytes = replica.lag_bytes if replica.up and replica.lag_bytes is not None else math.nan
        READ_REPLICA_LAG_BYTES.labels(replica.name).set(lag_bytes)
