"""`complaintcore tokens create` (its arguments: `cli/parsers/tokens.py`)."""

import argparse

import structlog

from complaintcore.auth.tokens import InvalidTokenRequest, create_token
from complaintcore.cli.common import database_url, fail, run_with_pool
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings

log = structlog.get_logger("complaintcore.cli")


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
