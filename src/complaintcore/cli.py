"""The `complaintcore` command line (API.md "Command line")."""

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import structlog

from complaintcore.embedded_db import DATABASE_NAME, ensure_database, running_embedded_postgres
from complaintcore.log_config import configure_logging
from complaintcore.schema_migrations import upgrade_to_head
from complaintcore.settings import Settings, get_settings

log = structlog.get_logger("complaintcore.cli")


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
    log.info("embedded PostgreSQL stopped")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    with database_url(settings) as url:
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
        )
    return 0


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        upgrade_to_head(url)
    log.info("migrations applied")
    return 0


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
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)


if __name__ == "__main__":
    sys.exit(main())
