"""The `complaintcore` command line (API.md "Command line")."""

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
import structlog

from complaintcore.calendars import CalendarRepository, read_calendar_file
from complaintcore.database import DATABASE_UNAVAILABLE_ERRORS, create_pool, wait_until_reachable
from complaintcore.embedded_db import DATABASE_NAME, ensure_database, running_embedded_postgres
from complaintcore.institutions import HierarchyRefused, InstitutionDirectory, read_institution_file
from complaintcore.log_config import configure_logging
from complaintcore.principals import ROLES
from complaintcore.schema_migrations import upgrade_to_head
from complaintcore.settings import Settings, get_settings
from complaintcore.tokens import InvalidTokenRequest, create_token

log = structlog.get_logger("complaintcore.cli")

T = TypeVar("T")

# Further command groups, each a module with `register(commands)` adding its subparsers (kept in
# modules of their own so each command's code sits beside its one job).
COMMAND_MODULES: tuple[str, ...] = (
    "complaintcore.cli_audit",
    "complaintcore.cli_import",
    "complaintcore.cli_demo",
    "complaintcore.cli_projections",
)


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """`DATABASE_URL`, or the embedded PostgreSQL (started here, stopped on the way out)."""
    if settings.database_url:
        yield settings.database_url
        return
    with running_embedded_postgres(settings.data_dir) as server_url:
        url = asyncio.run(ensure_database(server_url, DATABASE_NAME))
        log.info("embedded PostgreSQL started", data_dir=str(settings.data_dir.resolve()))
        yield url
    log.info("embedded PostgreSQL released (stopped unless another process still uses it)")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    with database_url(settings) as url:
        try:
            asyncio.run(wait_until_reachable(url, settings.database_wait_s))
        except DATABASE_UNAVAILABLE_ERRORS as error:
            return fail(
                f"the database is unreachable after {settings.database_wait_s:g} s: "
                f"{type(error).__name__}: {error}"
            )
        upgrade_to_head(url)
        os.environ["DATABASE_URL"] = url
        uvicorn.run(
            "complaintcore.api.app:create_app_from_environment",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            access_log=False,
            log_config=None,
            # httptools with header and body timeouts, header size and count limits, and
            # problem+json refusals (api/http_protocol.py); an import string, as each worker
            # imports it
            http="complaintcore.api.http_protocol:LimitedHttpToolsProtocol",
            # defence in depth: an idle keep-alive connection closes after 5 s (uvicorn's
            # default, made explicit: a proxy's upstream keep-alive must be shorter), and the h11
            # protocol, if ever chosen instead, buffers no more headers than the limit
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=settings.max_header_bytes,
        )
    return 0


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        upgrade_to_head(url)
    log.info("migrations applied")
    return 0


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


def load_institutions(args: argparse.Namespace, settings: Settings) -> int:
    try:
        nodes = read_institution_file(args.file, settings.max_file_bytes)
    except (OSError, ValueError, HierarchyRefused) as error:
        return fail(f"{args.file}: {error}")
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            created, updated = run_with_pool(
                url, lambda pool: InstitutionDirectory(pool).put_many(nodes)
            )
        except (HierarchyRefused, ValueError) as refusal:
            return fail(f"{args.file}: nothing loaded: {refusal}")
    print(f"{created + updated} institutions loaded ({created} created, {updated} updated)")
    return 0


def load_calendar(args: argparse.Namespace, settings: Settings) -> int:
    try:
        years = read_calendar_file(args.file, settings.max_file_bytes)
    except (OSError, ValueError) as error:
        return fail(f"{args.file}: {error}")
    with database_url(settings) as url:
        upgrade_to_head(url)
        run_with_pool(url, lambda pool: CalendarRepository(pool).put_years(years))
    listed = ", ".join(str(year_calendar.year) for year_calendar in years)
    print(f"{len(years)} calendar years loaded ({listed})")
    return 0


def run_with_pool(url: str, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def fail(message: str) -> int:
    print(f"complaintcore: {message}", file=sys.stderr)
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="complaintcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="apply migrations, then serve the API")
    serve_parser.add_argument("--host")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--workers", type=int, default=1)
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply migrations to DATABASE_URL")
    migrate_parser.set_defaults(handler=migrate)

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

    institutions_parser = commands.add_parser("institutions", help="the institution tree")
    institution_commands = institutions_parser.add_subparsers(
        dest="institutions_command", required=True
    )
    load_tree_parser = institution_commands.add_parser(
        "load", help="create or update nodes from JSON or CSV (code,name,kind,parent)"
    )
    load_tree_parser.add_argument("file", type=Path)
    load_tree_parser.set_defaults(handler=load_institutions)

    calendar_parser = commands.add_parser("calendar", help="holiday calendars")
    calendar_commands = calendar_parser.add_subparsers(dest="calendar_command", required=True)
    load_calendar_parser = calendar_commands.add_parser(
        "load", help="store years from JSON or CSV (date,kind)"
    )
    load_calendar_parser.add_argument("file", type=Path)
    load_calendar_parser.set_defaults(handler=load_calendar)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
