"""`complaintcore personal-data sweep` (handler: `cli/personal_data.py`)."""

import argparse
import re
from datetime import date
from typing import Any

from complaintcore.cli.parsers.shared import READS_KEYS, add_command, add_group, positive

# `application.retention_sweep`'s defaults, written out here so that printing help imports no
# application code (tests/e2e/test_retention_sweep_cli.py holds the two together).
DEFAULT_BATCH_CASES = 300
DEFAULT_REASON = "retention period ended"
DEFAULT_LEGAL_BASIS = "PIPL Art. 47; CBIRC Order 2020 No. 3 Art. 28"
DEFAULT_ACTOR = "retention-sweep"


def register(commands: Any) -> None:
    personal_data_commands = add_group(
        commands, "personal-data", help="personal data of cases (DOMAIN.md 'Personal data')"
    )
    sweep_parser = add_command(
        personal_data_commands,
        "sweep",
        help="erase the personal data of every case past its retention; safe to run on several"
        " hosts at once, and to stop anywhere: running it again resumes",
        handler="complaintcore.cli.personal_data:sweep_command",
        # it opens no personal field, but destroys data keys: only under the master key the
        # database's keys are wrapped under, as `serve` runs
        environment=READS_KEYS,
        description=(
            "Erase the personal data of every case whose retention ended (policy retention_years,"
            " counted from the day the case closed): its data key is destroyed and a"
            " PersonalDataErased event appended, in one transaction with the others of its batch."
            " Cases the rules refuse (reopened, kept longer by policy), cases a command is working"
            " on and cases stored before encryption are counted and left as they are. A progress"
            " bar on stderr, a summary on stdout; exit status 0 when every case was judged."
        ),
    )
    sweep_parser.add_argument(
        "--dry-run",
        action="store_true",
        help="judge every case and print the ids of those that would be erased; write nothing",
    )
    sweep_parser.add_argument(
        "--on",
        type=_iso_date,
        metavar="DATE",
        help="judge retention as of this business date, YYYY-MM-DD, never after today (default:"
        " today in Asia/Shanghai)",
    )
    sweep_parser.add_argument(
        "--reason",
        default=DEFAULT_REASON,
        help="the reason each erasure records (kept in clear: no identity or mobile number)",
    )
    sweep_parser.add_argument(
        "--legal-basis",
        default=DEFAULT_LEGAL_BASIS,
        help="the legal basis each erasure records (kept in clear, as the reason)",
    )
    sweep_parser.add_argument(
        "--actor", default=DEFAULT_ACTOR, help="the admin id each erasure records"
    )
    sweep_parser.add_argument(
        "--batch", type=positive, default=DEFAULT_BATCH_CASES, help="cases a transaction"
    )


_YYYY_MM_DD = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# No case closed before it; a retention counted back from a date of the first years ran off the
# calendar (found by a review pass: a traceback)
EARLIEST_ON = date(1900, 1, 1)


def _iso_date(text: str) -> date:
    """A date written YYYY-MM-DD only (Python also reads 20261201 and 2026-W48-2 as dates),
    from `EARLIEST_ON`."""
    try:
        if _YYYY_MM_DD.fullmatch(text):
            day = date.fromisoformat(text)
            if day >= EARLIEST_ON:
                return day
            raise argparse.ArgumentTypeError(f"must be from {EARLIEST_ON.isoformat()}")
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)")
