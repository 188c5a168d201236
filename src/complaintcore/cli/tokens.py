"""`complaintcore tokens create | list | revoke` (their arguments: `cli/parsers/tokens.py`).

A token is shown once, at creation; afterwards an operator names it by its fingerprint (the first
digits of its stored SHA-256), which identifies it and tells nothing of the token itself."""

import argparse

import structlog

from complaintcore.auth.tokens import (
    InvalidTokenRequest,
    TokenRecord,
    create_token,
    list_tokens,
    revoke_by_fingerprint,
    revoke_principal,
)
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


def list_tokens_command(args: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        upgrade_to_head(url)
        records = run_with_pool(url, lambda pool: list_tokens(pool, include_revoked=args.all))
    print("\t".join(("fingerprint", "principal", "role", "institution", "created", "revoked")))
    for record in records:
        print(_line(record))
    return 0


def revoke_tokens_command(args: argparse.Namespace, settings: Settings) -> int:
    """Running API processes refuse a revoked token from their next request on: every request
    confirms its token against the table (commands in their own transaction)."""
    with database_url(settings) as url:
        upgrade_to_head(url)
        if args.fingerprint is not None:
            return _revoke_one(url, args.fingerprint)
        revoked = run_with_pool(url, lambda pool: revoke_principal(pool, args.id))
    if not revoked:
        return fail(f"{args.id} has no active token")
    log.info("tokens revoked", principal_id=args.id, count=revoked)
    print(f"{revoked} token(s) of {args.id} revoked")
    return 0


def _revoke_one(url: str, fingerprint: str) -> int:
    try:
        record = run_with_pool(url, lambda pool: revoke_by_fingerprint(pool, fingerprint))
    except InvalidTokenRequest as error:
        return fail(str(error))
    log.info("token revoked", fingerprint=record.fingerprint, principal_id=record.principal_id)
    print(_line(record))
    return 0


def _line(record: TokenRecord) -> str:
    revoked = record.revoked_at.isoformat(timespec="seconds") if record.revoked_at else "-"
    return "\t".join(
        (
            record.fingerprint,
            record.principal_id,
            record.role,
            record.institution or "-",
            record.created_at.isoformat(timespec="seconds"),
            revoked,
        )
    )
