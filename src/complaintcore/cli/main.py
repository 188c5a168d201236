"""The `complaintcore` command line (API.md "Command line"): one module per command group, each
adding its subcommands with `register(commands)`."""

import argparse
from collections.abc import Callable

from complaintcore.cli import audit, bulk_import, demo, projections, reference, server, tokens
from complaintcore.infra.log_config import configure_logging
from complaintcore.infra.settings import Settings, get_settings

DESCRIPTION = 'The `complaintcore` command line (API.md "Command line").'
COMMAND_GROUPS = (server, tokens, reference, audit, bulk_import, demo, projections)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="complaintcore", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler
    return handler(args, settings)
