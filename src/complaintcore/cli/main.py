"""The `complaintcore` command line (API.md "Command line"): one parser module per command group
(`cli/parsers/`), each adding its subcommands with `register(commands)`, and one handler module
per group (`cli/server.py`, `cli/tokens.py`, ...).

Building the parser imports the standard library only: a command's handler module, and with it
alembic, uvicorn, FastAPI, SQLAlchemy, asyncpg and pydantic, is imported once its arguments have
parsed, and the settings are read after that. So `--help`, `--version` and a usage error answer at
once.
"""

import argparse
import os
import select
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from complaintcore.cli.parsers import (
    audit,
    bulk_import,
    demo,
    keys,
    personal_data,
    projections,
    reference,
    server,
    tokens,
)
from complaintcore.cli.parsers.shared import HelpFormatter, resolve_handler

if TYPE_CHECKING:
    from complaintcore.infra.settings import Settings

DISTRIBUTION = "complaintcore"
DESCRIPTION = 'The `complaintcore` command line (API.md "Command line").'
EPILOG = (
    "Each command's --help gives its options' defaults and the environment variables it reads\n"
    "(also from a .env file in the working directory): complaintcore COMMAND --help."
)
COMMAND_GROUPS = (
    server,
    tokens,
    keys,
    reference,
    audit,
    bulk_import,
    demo,
    projections,
    personal_data,
)


class CommandLineParser(argparse.ArgumentParser):
    """Imports the chosen command's handler (`shared.Handler`) once the arguments have parsed."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        return resolve_handler(super().parse_args(args, namespace))


class VersionAction(argparse.Action):
    """`--version`: the installed distribution's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "print the installed version and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"{parser.prog} {installed_version()}", file=sys.stdout)
        parser.exit()


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "(version unknown: not installed as a distribution)"


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog="complaintcore",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from pydantic import ValidationError

    from complaintcore.cli.common import DATABASE_REFUSALS, INTERRUPTED, database_refusal, fail
    from complaintcore.infra.embedded_db import EmbeddedPostgresFailed
    from complaintcore.infra.log_config import configure_logging
    from complaintcore.infra.migrations import MigrationFailed
    from complaintcore.infra.settings import get_settings, settings_refusal

    try:
        settings = get_settings()
    except ValidationError as refused:  # one line naming the variables, as any refusal
        return fail(settings_refusal(refused))
    configure_logging(settings.log_format, settings.log_level)
    handler: Callable[[argparse.Namespace, Settings], int] = args.handler

    try:
        return handler(args, settings)
    except BrokenPipeError as error:
        if not _output_reader_gone():
            return fail(database_refusal(error))
        # the reader of its output went away (`complaintcore tokens list | head -1`): not the
        # database's doing, as ConnectionError would have it (found by a review pass); nothing
        # more is written there, not even as the interpreter flushes it on the way out
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except DATABASE_REFUSALS as error:  # one line, as for every other refusal: no traceback
        return fail(database_refusal(error))
    except (MigrationFailed, EmbeddedPostgresFailed) as error:
        return fail(str(error))
    except KeyboardInterrupt:
        # Ctrl-C outside a command's own handling of it (waiting for the database, starting):
        # nothing was written that a batch command would report (found by a review pass: a
        # traceback)
        print("complaintcore: interrupted", file=sys.stderr)
        return INTERRUPTED


def _output_reader_gone() -> bool:
    """Whether standard output is a pipe whose reader has closed it (poll says POLLERR)."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # no file behind it (an embedding caller)
        return False
    poller = select.poll()
    poller.register(descriptor, select.POLLOUT)
    return any(event & select.POLLERR for _, event in poller.poll(0))
