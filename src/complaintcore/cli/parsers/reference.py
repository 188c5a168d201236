"""`complaintcore institutions load` and `calendar load` (handlers: `cli/reference.py`)."""

from pathlib import Path
from typing import Any

from complaintcore.cli.parsers.shared import READS_FILES, add_command, add_group


def register(commands: Any) -> None:
    institution_commands = add_group(commands, "institutions", help="the institution tree")
    load_tree_parser = add_command(
        institution_commands,
        "load",
        help="create or update nodes from JSON or CSV (code,name,kind,parent)",
        handler="complaintcore.cli.reference:load_institutions",
        environment=READS_FILES,
    )
    load_tree_parser.add_argument("file", type=Path)

    calendar_commands = add_group(commands, "calendar", help="holiday calendars")
    load_calendar_parser = add_command(
        calendar_commands,
        "load",
        help="store years from JSON or CSV (date,kind)",
        handler="complaintcore.cli.reference:load_calendar",
        environment=READS_FILES,
    )
    load_calendar_parser.add_argument("file", type=Path)
