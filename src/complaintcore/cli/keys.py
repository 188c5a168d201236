"""`complaintcore keys create` (its arguments: `cli/parsers/keys.py`)."""

import argparse

import structlog

from complaintcore.cli.common import fail
from complaintcore.crypto.keys import create_master_key_file
from complaintcore.crypto.suites import SuiteUnavailable
from complaintcore.infra.settings import Settings

log = structlog.get_logger("complaintcore.cli")


def create_key_command(args: argparse.Namespace, settings: Settings) -> int:
    """Write the file and print one line naming its key id; refuse in one line on stderr."""
    path = args.file
    try:
        key_id = create_master_key_file(path, args.suite)
    except FileExistsError as error:
        return fail(str(error))
    except FileNotFoundError:
        return fail(
            f"{path}: cannot create the master key file: folder {path.parent} does not exist"
        )
    except OSError as error:
        return fail(
            f"{path}: cannot create the master key file in folder {path.parent}: "
            f"{error.strerror or error}"
        )
    except SuiteUnavailable as error:
        return fail(str(error))
    log.info("master key file created", path=str(path), key_id=key_id, suite=args.suite)
    print(
        f"master key {key_id} written to {path} ({args.suite}); "
        "keep it apart from the database and its backups"
    )
    return 0
