"""`complaintcore serve`, `complaintcore runners` and `complaintcore migrate` (handlers:
`cli/server.py`, `cli/runners.py`)."""

import argparse
from typing import Any

from complaintcore.cli.parsers.shared import (
    EVERY_COMMAND,
    READS_KEYS,
    add_command,
    env_default,
    port,
    positive,
)

# serve reads every setting but the file limit: the master key, the database wait and the
# listening address itself, the pool, the projection runner and the request limits through the
# app it serves.
SERVE_ENVIRONMENT = (
    *READS_KEYS,
    "COMPLAINTCORE_HOST",
    "COMPLAINTCORE_PORT",
    "COMPLAINTCORE_DATABASE_WAIT",
    "COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT",
    "COMPLAINTCORE_READ_REPLICA_URLS",
    "COMPLAINTCORE_READ_REPLICA_MAX_LAG",
    "COMPLAINTCORE_READ_REPLICA_CHECK",
    "COMPLAINTCORE_POOL_MIN",
    "COMPLAINTCORE_POOL_MAX",
    "COMPLAINTCORE_RUNNERS",
    "COMPLAINTCORE_RUNNER_PROCESSES",
    "COMPLAINTCORE_PROJECTION_RUNNER",
    "COMPLAINTCORE_PROJECTION_POLL",
    "COMPLAINTCORE_PROJECTION_STANDBY",
    "COMPLAINTCORE_HEADER_TIMEOUT",
    "COMPLAINTCORE_BODY_TIMEOUT",
    "COMPLAINTCORE_MAX_HEADER_BYTES",
    "COMPLAINTCORE_MAX_HEADERS",
    "COMPLAINTCORE_MAX_BODY_BYTES",
    "COMPLAINTCORE_METRICS_TOKEN",
    "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS",
    "COMPLAINTCORE_WEBHOOK_WORKERS",
    "COMPLAINTCORE_WEBHOOK_POLL",
    "COMPLAINTCORE_WEBHOOK_TIMEOUT",
    "COMPLAINTCORE_WEBHOOK_LEASE",
    "COMPLAINTCORE_WEBHOOK_RETRY_BASE",
    "COMPLAINTCORE_WEBHOOK_RETRY_CAP",
    "COMPLAINTCORE_WEBHOOK_RETRY_WINDOW",
    "COMPLAINTCORE_WEBHOOK_CONCURRENCY",
    "COMPLAINTCORE_WEBHOOK_PER_SUBSCRIPTION",
)

# the runner process: the master key, the database wait, its pool (at most 8 connections) and
# the runners' settings
RUNNERS_ENVIRONMENT = (
    *READS_KEYS,
    "COMPLAINTCORE_DATABASE_WAIT",
    "COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT",
    "COMPLAINTCORE_POOL_MAX",
    "COMPLAINTCORE_PROJECTION_RUNNER",
    "COMPLAINTCORE_PROJECTION_POLL",
    "COMPLAINTCORE_PROJECTION_STANDBY",
    *(name for name in SERVE_ENVIRONMENT if name.startswith("COMPLAINTCORE_WEBHOOK_")),
)
RUNNERS_CHOICES = ("separate", "in-process", "none")
RUNNERS_DESCRIPTION = (
    "Run the projection runners (statistics, alerts) and the webhook workers (fan-out, "
    "dispatcher) until SIGTERM or SIGINT. `serve` supervises one by default (`--runners "
    "separate`); run it alone, on this host or another, beside `serve --runners none`. Any "
    "number may run: each projection's runner is active in one process at a time (the others "
    "stand by and take over), and the dispatchers share the deliveries."
)


def register(commands: Any) -> None:
    serve_parser = add_command(
        commands,
        "serve",
        help="apply migrations, then serve the API",
        handler="complaintcore.cli.server:serve",
        environment=SERVE_ENVIRONMENT,
    )
    serve_parser.add_argument(
        "--host", help=f"the address to listen on (default: {env_default('COMPLAINTCORE_HOST')})"
    )
    serve_parser.add_argument(
        "--port",
        type=port,
        help=f"the port to listen on (default: {env_default('COMPLAINTCORE_PORT')})",
    )
    serve_parser.add_argument(
        "--workers", type=positive, default=1, help="server processes, each with its own pool"
    )
    serve_parser.add_argument(
        "--runners",
        choices=RUNNERS_CHOICES,
        help="where the projection runners and the webhook workers run: separate (a "
        "`complaintcore runners` child process, restarted if it dies), in-process (in every "
        f"server process) or none (run `complaintcore runners` elsewhere) (default: "
        f"{env_default('COMPLAINTCORE_RUNNERS')})",
    )

    runners_parser = add_command(
        commands,
        "runners",
        help="run the projection runners and the webhook workers",
        handler="complaintcore.cli.runners:runners",
        environment=RUNNERS_ENVIRONMENT,
        description=RUNNERS_DESCRIPTION,
    )
    # `serve`'s child: the migrations are applied already, and it ends with its parent
    runners_parser.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)

    add_command(
        commands,
        "migrate",
        help="apply migrations to DATABASE_URL (or the embedded database)",
        handler="complaintcore.cli.server:migrate",
        environment=(*EVERY_COMMAND, "COMPLAINTCORE_DATABASE_WAIT"),
    )
