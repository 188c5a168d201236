"""`complaintcore keys create` and `keys rotate` (handlers: `cli/keys.py`)."""

from pathlib import Path
from typing import Any

from complaintcore.cli.parsers.shared import READS_KEYS, add_command, add_group, positive

# The suites of `complaintcore.crypto.suites` (`SUITE_NAMES`, `DEFAULT_SUITE`), written out here
# so that printing help imports no crypto code; a unit test holds them together.
SUITE_CHOICES = ("aes-256-gcm", "sm4-gcm")
DEFAULT_SUITE = "aes-256-gcm"

# Writing a key file touches no database: the command reads only how to log.
LOGGING_ONLY = ("COMPLAINTCORE_LOG_FORMAT", "COMPLAINTCORE_LOG_LEVEL")

# A rotation finds the current master key as `serve` does, and re-wraps in the database.
ROTATION_ENVIRONMENT = (*READS_KEYS,)

# `CaseKeys.rewrap_all`'s batch (a unit test holds them together).
DEFAULT_ROTATION_BATCH = 500


def register(commands: Any) -> None:
    key_commands = add_group(commands, "keys", help="master key files")
    _register_create(key_commands)
    _register_rotate(key_commands)


def _register_create(key_commands: Any) -> None:
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


def _register_rotate(key_commands: Any) -> None:
    rotate_parser = add_command(
        key_commands,
        "rotate",
        help="re-wrap every data key under a new master key; Ctrl-C stops, running it again"
        " finishes",
        handler="complaintcore.cli.keys:rotate_keys_command",
        environment=ROTATION_ENVIRONMENT,
        description=(
            "Re-wrap every data key (each case's, and the service's own) under the master key of "
            "the new file, made beforehand with `complaintcore keys create FILE`, unwrapping them "
            "with the current one: COMPLAINTCORE_MASTER_KEY_FILE, or the embedded database's "
            "master.key, as serve finds it. Only the wrapping changes: not one event is touched. "
            "Each batch is a transaction of its own; Ctrl-C or a crash leaves whole batches done, "
            "and the same command again finishes (until then serve refuses to start, naming the "
            "unfinished rotation). A process still holding the old key cannot open a re-wrapped "
            "key and may no longer make new ones: from the rotation's start it answers 503 "
            "master_key_rotated for those and /readyz says not ready, and a process on the new "
            "key starts once the rotation has ended: stop the services first (with them up, "
            "the rotation is an outage until each is restarted on the new key). Then set "
            "COMPLAINTCORE_MASTER_KEY_FILE to the new file, and keep the old one until no backup "
            "needs it."
        ),
    )
    rotate_parser.add_argument(
        "--new-key-file",
        type=Path,
        required=True,
        metavar="FILE",
        help="the new master key file (made by `complaintcore keys create FILE`)",
    )
    rotate_parser.add_argument(
        "--batch",
        type=positive,
        default=DEFAULT_ROTATION_BATCH,
        metavar="N",
        help="data keys re-wrapped per transaction",
    )
