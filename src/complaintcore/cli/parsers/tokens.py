"""`complaintcore tokens create` (handler: `cli/tokens.py`)."""

from typing import Any

from complaintcore.cli.parsers.shared import add_command, add_group

# The roles of `complaintcore.domain.roles`, sorted (a unit test holds the two together).
ROLE_CHOICES = ("admin", "regulator", "staff", "supervisor")


def register(commands: Any) -> None:
    token_commands = add_group(commands, "tokens", help="bearer tokens")
    create_parser = add_command(
        token_commands,
        "create",
        help="print a new bearer token (stored hashed, shown only once)",
        handler="complaintcore.cli.tokens:create_token_command",
    )
    create_parser.add_argument("--id", required=True, help="the principal's id (a staff id)")
    create_parser.add_argument(
        "--role", required=True, choices=ROLE_CHOICES, help="the principal's role"
    )
    create_parser.add_argument(
        "--institution",
        help="institution code: required for staff and supervisors, none for the others",
    )
