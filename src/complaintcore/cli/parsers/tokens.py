"""`complaintcore tokens create | list | revoke` (handlers: `cli/tokens.py`)."""

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
    list_parser = add_command(
        token_commands,
        "list",
        help="list the active tokens: fingerprint, principal, role, institution, created",
        handler="complaintcore.cli.tokens:list_tokens_command",
    )
    list_parser.add_argument(
        "--all", action="store_true", help="the revoked tokens too, with when they were revoked"
    )
    revoke_parser = add_command(
        token_commands,
        "revoke",
        help="revoke one token by its fingerprint, or every token of a principal",
        handler="complaintcore.cli.tokens:revoke_tokens_command",
    )
    which = revoke_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--fingerprint", help="the token's fingerprint, as `tokens list` shows it")
    which.add_argument("--id", help="a principal id: all of its active tokens")
