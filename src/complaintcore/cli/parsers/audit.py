"""`complaintcore audit CASE_ID` (handler: `cli/audit.py`)."""

from typing import Any

from complaintcore.cli.parsers.shared import READS_KEYS, add_command


def register(commands: Any) -> None:
    parser = add_command(
        commands,
        "audit",
        help="verify a case's hash chain and print its deadline timeline",
        description="verify a case's hash chain and print its deadline timeline; exit status 0"
        " when the chain is intact, 2 when it is broken, 1 when there is no such case",
        handler="complaintcore.cli.audit:audit",
        environment=READS_KEYS,
    )
    parser.add_argument("case_id", help="the case id (a UUID)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the document of GET /v1/complaints/{id}/audit instead of tables",
    )
