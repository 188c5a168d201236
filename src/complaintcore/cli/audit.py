"""`complaintcore audit CASE_ID`: the regulator's replay of one case in the terminal.

The verdict and timeline are those of `GET /v1/complaints/{id}/audit` (`audit_case`), read from
the event store directly, so an operator with database access can audit without a token. `--json`
prints that route's document; otherwise a header (case, registration number, status, chain
verdict) and the deadline timeline as a table. Nothing personal is printed beyond what the audit
document holds, where the complainant is masked.

Exit status: 0 when the chain is intact, 2 when it is broken, 1 when there is no such case.
Its arguments: `cli/parsers/audit.py`.
"""

import argparse
import json
from typing import Any

import asyncpg

from complaintcore.api.schemas.cases import AuditOut
from complaintcore.application.business_day import shanghai_today
from complaintcore.application.case_audit import audit_case, respondent_of
from complaintcore.application.policy_store import read_policy_in_force
from complaintcore.cli.common import (
    KEY_REFUSALS,
    checked_case_keys,
    database_url,
    fail,
    run_with_pool,
)
from complaintcore.crypto.suites import UnknownSuite
from complaintcore.domain.policy import InstitutionPolicy
from complaintcore.events.codec import stream_and_cipher, stream_suite
from complaintcore.events.model import StoredEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.events.stream_cipher import CaseKeyUnusable, StreamCipher
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings

EXIT_INTACT = 0
EXIT_UNKNOWN_CASE = 1
EXIT_CHAIN_BROKEN = 2

TIMELINE_COLUMNS = (
    ("version", "version"),
    ("event type", "event_type"),
    ("change", "change"),
    ("business date", "business_date"),
    ("due date", "due_on"),
    ("level", "level"),
    ("paused days", "paused_days"),
    ("on time", "on_time"),
)
_RIGHT_ALIGNED = frozenset({"version", "level", "paused_days"})


def audit(args: argparse.Namespace, settings: Settings) -> int:
    case_id = args.case_id.strip().lower()
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            events, cipher, policy = run_with_pool(
                url, lambda pool: _read_case(pool, settings, case_id)
            )
        except KEY_REFUSALS as error:
            return fail(str(error))
    if not events:
        fail(f"no complaint {case_id}")
        return EXIT_UNKNOWN_CASE
    document = audit_document(case_id, events, cipher, policy)
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(render_audit(document))
    return EXIT_INTACT if document["chain"]["intact"] else EXIT_CHAIN_BROKEN


async def _read_case(
    pool: asyncpg.Pool, settings: Settings, case_id: str
) -> tuple[list[StoredEvent], StreamCipher | None, InstitutionPolicy | None]:
    """The case's events, the cipher that opens them (the master key `serve` would use) and the
    policy in force today at its respondent."""
    events = await PostgresEventStore(pool).read_stream(case_id)
    if not events:
        return events, None, None
    respondent = respondent_of(events)
    policy = (await read_policy_in_force(pool, respondent, shanghai_today())).policy
    suite = stream_suite(events)
    if suite is None:
        return events, None, policy
    async with pool.acquire() as connection:
        case_keys = await checked_case_keys(settings, connection)
        try:
            # erased after its events were read (a sweep on another host): read again, with the
            # erasure, as a case read does (found by a review pass)
            events, cipher = await stream_and_cipher(
                case_id,
                events,
                lambda: PostgresEventStore(pool).read_stream(case_id),
                lambda _: case_keys.cipher_for(connection, case_id, suite),
            )
        except (UnknownSuite, CaseKeyUnusable):
            # an altered suite name, a key row gone or altered: the chain is verified all the
            # same (it covers the stored bytes), and the state is not opened
            return events, None, policy
        return events, cipher, policy


def audit_document(
    case_id: str,
    events: list[StoredEvent],
    cipher: StreamCipher | None = None,
    policy: InstitutionPolicy | None = None,
) -> dict[str, Any]:
    """The audit route's response body, shaped by its response model exactly as the route is."""
    document = audit_case(case_id, events, shanghai_today(), cipher, policy)
    return AuditOut.model_validate(document).model_dump(mode="json")


def render_audit(document: dict[str, Any]) -> str:
    return "\n".join([*_header_lines(document), "", *_timeline_lines(document["timeline"])])


def _header_lines(document: dict[str, Any]) -> list[str]:
    state = document["state"]
    if state is None:
        registration_no = status = institution = "unreadable (the events no longer decode)"
    else:
        registration_no = state["registration_no"]
        status = state["status"] + (" (closed)" if state["closed"] else "")
        institution = state["respondent_institution"]
    fields = [
        ("case", document["case_id"]),
        ("registration no", registration_no),
        ("institution", institution),
        ("status", status),
        ("cipher suite", _suite_text(document["cipher_suite"])),
        ("hash chain", chain_verdict_text(document["chain"])),
    ]
    width = max(len(label) for label, _ in fields)
    return [f"{label.ljust(width)}  {value}" for label, value in fields]


def _suite_text(suite: str | None) -> str:
    if suite is None:
        return "none (stored before encryption; SHA-256 chain)"
    return f"{suite} ({'SM3' if suite == 'sm4-gcm' else 'SHA-256'} chain)"


def chain_verdict_text(chain: dict[str, Any]) -> str:
    if chain["intact"]:
        return f"intact ({chain['events_checked']} events verified)"
    return (
        f"BROKEN at version {chain['first_bad_version']}: {chain['reason']}"
        f" ({chain['events_checked']} events verified before it)"
    )


def _timeline_lines(timeline: list[dict[str, Any]]) -> list[str]:
    if not timeline:
        return ["deadline timeline: none could be read from the events"]
    headers = [title for title, _ in TIMELINE_COLUMNS]
    rows = [[_cell(row[key]) for _, key in TIMELINE_COLUMNS] for row in timeline]
    widths = [max(len(cells[index]) for cells in [headers, *rows]) for index in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if key in _RIGHT_ALIGNED else cell.ljust(width)
            for cell, width, (_, key) in zip(cells, widths, TIMELINE_COLUMNS, strict=True)
        ]
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return ["deadline timeline", line(headers), rule, *(line(cells) for cells in rows)]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
