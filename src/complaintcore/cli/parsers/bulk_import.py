"""`complaintcore import FILE` (handler: `cli/bulk_import.py`)."""

from pathlib import Path
from typing import Any

from complaintcore.cli.parsers.shared import KEYS, READS_FILES, add_command, positive

# `application.bulk_import.DEFAULT_BATCH_CASES` (a unit test holds the two together)
DEFAULT_BATCH_CASES = 1000


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "import",
        help="import historical cases from JSON Lines through the domain rules",
        description="import historical cases from JSON Lines through the domain rules; exit"
        " status 0 when every case was imported or was already stored, 2 when some were refused,"
        " 1 when the file cannot be read",
        handler="complaintcore.cli.bulk_import:import_command",
        environment=(*READS_FILES, *KEYS),
    )
    parser.add_argument("file", type=Path, help="JSON Lines, one case a line")
    parser.add_argument("--batch", type=positive, default=DEFAULT_BATCH_CASES, help="cases a batch")
    parser.add_argument("--actor", default="import", help="who entered actions with no actor")
    parser.add_argument(
        "--role",
        default="staff",
        choices=("staff", "supervisor", "regulator", "admin"),
        help="that actor's role",
    )
    parser.add_argument("--refusals", type=Path, help="write every refused case here (JSONL)")
