"""`complaintcore projections rebuild [NAME ...]` (handler: `cli/projections.py`)."""

import argparse
from typing import Any

from complaintcore.cli.parsers.shared import (
    READS_KEYS,
    add_command,
    add_group,
    positive,
    postgres_url,
)

# `projections.rebuild.TARGETS` and `RebuildSettings.page_events` (a unit test holds them
# together); --workers' default, `default_scan_workers()`, is taken when the command runs.
PROJECTIONS = ("case_view", "statistics")
DEFAULT_PAGE_EVENTS = 10_000
# Each worker holds two database connections: 32 of them take 64 of PostgreSQL's default 100
# (found by a review pass: --workers had no bound, and 99 started as many processes).
MAX_SCAN_WORKERS = 32


def register(commands: Any) -> None:
    projection_commands = add_group(
        commands, "projections", help="projections derived from the events"
    )
    rebuild_parser = add_command(
        projection_commands,
        "rebuild",
        help="replay every event into fresh tables and swap them in, without stopping queries;"
        " Ctrl-C stops, running it again resumes",
        handler="complaintcore.cli.projections:rebuild_command",
        environment=READS_KEYS,
    )
    rebuild_parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"projections to rebuild: {', '.join(PROJECTIONS)} (all when none is named)",
    )
    rebuild_parser.add_argument(
        "--restart",
        action="store_true",
        help="discard an interrupted rebuild instead of resuming it",
    )
    rebuild_parser.add_argument(
        "--batch",
        type=positive,
        default=DEFAULT_PAGE_EVENTS,
        help="events read per page (rows are written in batches of half that)",
    )
    rebuild_parser.add_argument(
        "--read-from",
        metavar="URL",
        type=postgres_url,
        help="a hot standby of the database to read the events from (its lag waited out first);"
        " the tables are written on the primary (DATABASE_URL)",
    )
    rebuild_parser.add_argument(
        "--workers",
        type=_scan_workers,
        help="processes replaying the events at once, each a range of the cases (default: the"
        " number of CPUs this process may use, at most 8; at most"
        f" {MAX_SCAN_WORKERS}); 1 replays in this process. A resumed rebuild keeps the ranges"
        " it began with",
    )


def _scan_workers(text: str) -> int:
    value = positive(text)
    if value > MAX_SCAN_WORKERS:
        raise argparse.ArgumentTypeError(
            f"must be at most {MAX_SCAN_WORKERS} (each worker holds two database connections)"
        )
    return value
