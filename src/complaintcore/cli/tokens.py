"""`complaintcore tokens create`."""

import argparse
from typing import Any

import structlog

from complaintcore.auth.principals import ROLES
from complaintcore.auth.tokens import InvalidTokenRequest, create_token
from complaintcore.cli.common import database_url, fail, run_with_pool
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings

log = structlog.get_logger("complaintcore.cli")


def register(commands: Any) -> None:
    tokens_parser = commands.add_parser("tokens", help="bearer tokens")
    token_commands = tokens_parser.add_subparsers(dest="tokens_command", required=True)
    create_parser = token_commands.add_parser(
        "create", help="print a new bearer token (stored hashed, shown only once)"
    )
    create_parser.add_argument("--id", required=True, help="the principal's id (a staff id)")
    create_parser.add_argument("--role", required=True, choices=sorted(ROLES))
    create_parser.add_argument(
        "--institution", help="institution code: required for staff and supervisors"
    )
    create_parser.set_defaults(handler=create_token_command)


def create_token_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print only the token on stdout, so `TOKEN=$(complaintcore tokens create ...)` works."""
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            token = run_with_pool(
                url, lambda pool: create_token(pool, args.id, args.role, args.institution)
            )
        except InvalidTokenRequest as error:
            return fail(str(error))
    log.info("token created", principal_id=args.id, role=args.role)
    print(token)
    return 0
