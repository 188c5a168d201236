"""What the command groups' parsers share: the help layout, the environment variables each
command reads (with their defaults), and handlers named by module, imported when they run.

The variables are those of `complaintcore.infra.settings` (README "Configuration"), written out
here so that printing help imports no settings code; `tests/unit/test_cli_help.py` checks each
name and default against `Settings`.
"""

import argparse
import importlib
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

HELP_WIDTH = 100
_NAME_COLUMN = 42  # two spaces, the longest name (..._WEBHOOK_PER_SUBSCRIPTION), two spaces


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as a user would write it
    meaning: str


ENVIRONMENT = {
    variable.name: variable
    for variable in (
        Variable(
            "DATABASE_URL",
            "unset: the embedded PostgreSQL",
            "the database, a PostgreSQL URL (postgresql://user@host:5432/db)",
        ),
        Variable(
            "COMPLAINTCORE_DATA_DIR",
            ".pgdata",
            "the embedded PostgreSQL's data folder (when DATABASE_URL is unset)",
        ),
        Variable(
            "COMPLAINTCORE_DATABASE_CONNECT_TIMEOUT",
            "10",
            "seconds to connect to one host of DATABASE_URL before trying the next",
        ),
        Variable(
            "COMPLAINTCORE_DATABASE_KEEPALIVE",
            "30",
            "seconds of silence before PostgreSQL probes a connection: a dead host's sessions"
            " and locks end within about a minute (0: the server's own settings)",
        ),
        Variable(
            "COMPLAINTCORE_LOG_FORMAT",
            "auto",
            "json (a JSON object a line), console, or auto (console on a terminal)",
        ),
        Variable("COMPLAINTCORE_LOG_LEVEL", "info", "debug, info, warning or error"),
        Variable(
            "COMPLAINTCORE_MASTER_KEY_FILE",
            "unset",
            "the master key file (`complaintcore keys create FILE`); unset: <data folder>/"
            "master.key, created for the embedded PostgreSQL, refused with DATABASE_URL",
        ),
        Variable(
            "COMPLAINTCORE_CIPHER_SUITE",
            "aes-256-gcm",
            "aes-256-gcm or sm4-gcm: the cipher suite of new cases and data keys",
        ),
        Variable("COMPLAINTCORE_HOST", "127.0.0.1", "the address serve listens on"),
        Variable("COMPLAINTCORE_PORT", "8000", "the port serve listens on"),
        Variable(
            "COMPLAINTCORE_DATABASE_WAIT",
            "30",
            "seconds serve waits for an unreachable database at start-up; 0: no waiting",
        ),
        Variable(
            "COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT",
            "60",
            "seconds a statement may take before it is given up (a hung primary is left); 0: none",
        ),
        Variable(
            "COMPLAINTCORE_READ_REPLICA_URLS",
            "",
            "comma-separated hot standbys that serve lists, deadlines, statistics, replay, audit",
        ),
        Variable(
            "COMPLAINTCORE_READ_REPLICA_MAX_LAG",
            "5",
            "seconds a standby may lag and still serve reads; beyond, it is skipped",
        ),
        Variable(
            "COMPLAINTCORE_READ_REPLICA_CHECK", "1", "seconds between readings of standbys' lag"
        ),
        Variable("COMPLAINTCORE_POOL_MIN", "2", "fewest database connections kept open"),
        Variable("COMPLAINTCORE_POOL_MAX", "32", "most database connections"),
        Variable(
            "COMPLAINTCORE_RUNNERS",
            "separate",
            "where serve runs the projection runners and webhook workers: separate (a "
            "`complaintcore runners` child process it supervises), in-process (in every worker) "
            "or none (`complaintcore runners` runs elsewhere)",
        ),
        Variable(
            "COMPLAINTCORE_RUNNER_PROCESSES",
            "1",
            "how many `complaintcore runners` children serve supervises with separate (1 to 8): "
            "the projection runners active in one, every child sending webhooks",
        ),
        Variable(
            "COMPLAINTCORE_PROJECTION_RUNNER",
            "true",
            "run the projection runners where the runners run (one is active at a time)",
        ),
        Variable(
            "COMPLAINTCORE_PROJECTION_POLL",
            "0.5",
            "seconds the active runner waits when the feed is idle",
        ),
        Variable(
            "COMPLAINTCORE_PROJECTION_STANDBY",
            "2",
            "seconds a standby runner waits between attempts to take over",
        ),
        Variable(
            "COMPLAINTCORE_HEADER_TIMEOUT",
            "10",
            "seconds a client has to send a request's line and headers (408 beyond)",
        ),
        Variable(
            "COMPLAINTCORE_BODY_TIMEOUT",
            "30",
            "seconds a client has to send a request's body once its headers are in (408 beyond)",
        ),
        Variable(
            "COMPLAINTCORE_MAX_HEADER_BYTES",
            "16384",
            "largest request line and headers together, in bytes (431 beyond)",
        ),
        Variable("COMPLAINTCORE_MAX_HEADERS", "100", "most headers in a request (431 beyond)"),
        Variable(
            "COMPLAINTCORE_MAX_BODY_BYTES",
            "1048576",
            "largest request body, in bytes (413 beyond)",
        ),
        Variable(
            "COMPLAINTCORE_MAX_FILE_BYTES",
            "268435456",
            "largest file the command reads, in bytes",
        ),
        Variable(
            "COMPLAINTCORE_METRICS_TOKEN",
            "unset",
            "the bearer token a scraper of GET /metrics must send; unset: /metrics answers "
            "loopback clients only",
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS",
            "",
            "comma-separated host names, addresses and networks webhooks may use beyond public "
            "https (a name allows http to it; an address or network allows those addresses)",
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_WORKERS",
            "true",
            "run the webhook fan-out and dispatcher where the runners run",
        ),
        Variable("COMPLAINTCORE_WEBHOOK_POLL", "0.25", "seconds the idle webhook workers wait"),
        Variable("COMPLAINTCORE_WEBHOOK_TIMEOUT", "10", "seconds a receiver has to answer, all in"),
        Variable(
            "COMPLAINTCORE_WEBHOOK_LEASE",
            "60",
            "seconds a claimed delivery stays with its dispatcher (sent again after a crash)",
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_RETRY_BASE", "10", "seconds before a delivery's first retry"
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_RETRY_CAP", "3600", "longest wait between a delivery's retries"
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_RETRY_WINDOW",
            "86400",
            "seconds from the first attempt after which a failing delivery is marked failed",
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_CONCURRENCY",
            "64",
            "deliveries awaiting an answer at once per process",
        ),
        Variable(
            "COMPLAINTCORE_WEBHOOK_PER_SUBSCRIPTION",
            "4",
            "deliveries of one subscription awaiting an answer at once per process",
        ),
    )
}

# What every command that uses the database reads (every command but `keys create`): the
# database it works on, how long to try each host, and how it logs (on stderr).
EVERY_COMMAND = (
    "DATABASE_URL",
    "COMPLAINTCORE_DATA_DIR",
    "COMPLAINTCORE_DATABASE_CONNECT_TIMEOUT",
    "COMPLAINTCORE_DATABASE_KEEPALIVE",
    "COMPLAINTCORE_LOG_FORMAT",
    "COMPLAINTCORE_LOG_LEVEL",
)
READS_FILES = (*EVERY_COMMAND, "COMPLAINTCORE_MAX_FILE_BYTES")
# What a command that reads or writes personal data reads besides: the master key and the suite.
KEYS = ("COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_CIPHER_SUITE")
READS_KEYS = (*EVERY_COMMAND, *KEYS)


# A bound no batch or count needs reaching (found by a review pass: 2**64 as a batch was a
# traceback in the import, the database's refusal elsewhere)
MOST = 1_000_000


def positive(text: str) -> int:
    """An option's whole number of 1 to `MOST` (a count, a batch size)."""
    value = int(text)
    if not 1 <= value <= MOST:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MOST:,}")
    return value


def postgres_url(text: str) -> str:
    """A PostgreSQL URL (`infra.postgres_urls`), refused without repeating it (a password)."""
    from complaintcore.infra.postgres_urls import check_postgres_url  # only when one is given

    try:
        return check_postgres_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def port(text: str) -> int:
    """A TCP port to listen on, 1 to 65535 (a larger one would be taken modulo 65536)."""
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port from 1 to 65535")
    return value


def env_default(name: str) -> str:
    """An option's default taken from a variable: `$NAME, else <its default>`."""
    return f"${name}, else {ENVIRONMENT[name].default}"


def environment_epilog(names: Iterable[str]) -> str:
    """The variables a command reads, one a line with its meaning and default."""
    lines = ["environment (also read from a .env file in the working directory):"]
    for name in names:
        variable = ENVIRONMENT[name]
        lines += textwrap.wrap(
            f"{variable.meaning} (default: {variable.default})",
            width=HELP_WIDTH,
            initial_indent=f"  {name}".ljust(_NAME_COLUMN),
            subsequent_indent=" " * _NAME_COLUMN,
        )
    return "\n".join(lines)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description and the environment epilog as written (`add_command` wraps them); each
    option's default after its help, unless the help says it already or there is none (None, a
    flag's False)."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("width", HELP_WIDTH)
        super().__init__(prog, **kwargs)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        no_default = action.default is None or action.default is False
        if (
            not action.option_strings
            or no_default
            or action.default == argparse.SUPPRESS
            or "%(default)" in text
        ):
            return action.help
        return f"{text} (default: %(default)s)"


@dataclass(frozen=True)
class Handler:
    """A command's handler as `module:function`, imported when the command runs."""

    target: str

    def resolve(self) -> Callable[..., int]:
        module, _, function = self.target.partition(":")
        handler: Callable[..., int] = getattr(importlib.import_module(module), function)
        return handler


def resolve_handler(args: argparse.Namespace) -> argparse.Namespace:
    """Replace a parsed command's `Handler` by the function it names (importing its module)."""
    handler = getattr(args, "handler", None)
    if isinstance(handler, Handler):
        args.handler = handler.resolve()
    return args


def add_command(
    commands: Any,
    name: str,
    *,
    help: str,
    handler: str,
    environment: Iterable[str] = EVERY_COMMAND,
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A subcommand whose help ends with the environment it reads; `handler`: `module:function`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=textwrap.fill(description or help, HELP_WIDTH),
        epilog=environment_epilog(environment),
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(handler=Handler(handler))
    return parser


def add_group(commands: Any, name: str, *, help: str) -> Any:
    """A command with subcommands of its own (`tokens create`, `projections rebuild`)."""
    parser = commands.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
    return parser.add_subparsers(dest=f"{name}_command", required=True)
