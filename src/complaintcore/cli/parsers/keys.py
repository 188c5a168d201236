"""`complaintcore keys create` (handler: `cli/keys.py`)."""

from pathlib import Path
from typing import Any

from complaintcore.cli.parsers.shared import add_command, add_group

# The suites of `complaintcore.crypto.suites` (`SUITE_NAMES`, `DEFAULT_SUITE`), written out here
# so that printing help imports no crypto code; a unit test holds them together.
SUITE_CHOICES = ("aes-256-gcm", "sm4-gcm")
DEFAULT_SUITE = "aes-256-gcm"

# Writing a key file touches no database: the command reads only how to log.
LOGGING_ONLY = ("COMPLAINTCORE_LOG_FORMAT", "COMPLAINTCORE_LOG_LEVEL")


def register(commands: Any) -> None:
    key_commands = add_group(commands, "keys", help="master key files")
    create_parser = add_command(
        key_commands,
        "create",
        help="write a new master key file (mode 0600) and print its key id",
        handler="complaintcore.cli.keys:create_key_command",
        environment=LOGGING_ONLY,
        description=(
            "Write a new master key file at the path given, readable by its owner only (mode "
            "0600), and print its key id. An existing file is never overwritten: it may hold the "
            "only copy of the key every case's personal data needs. Keep a copy of the new file "
            "apart from the database and its backups."
        ),
    )
    create_parser.add_argument(
        "file", type=Path, help="the new key file's path (its folder must exist)"
    )
    create_parser.add_argument(
        "--suite",
        choices=SUITE_CHOICES,
        default=DEFAULT_SUITE,
        help="the cipher suite the key is for",
    )
