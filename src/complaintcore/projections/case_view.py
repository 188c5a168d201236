"""The case-state projection: one row per case with what the list and deadline queries need.

The row is a pure function of the case's folded state (and of the deployment's blind-index
key), written in the same transaction as the command's events (so a query right after a command
sees it) and rebuilt from the events alone. Personal data is masked here (Art. 22): the list never
needs it in clear.

`complainant_index` is the blind index of the complainant's identity document
(`crypto.blind_index`), by which staff find a complainant's other cases (Art. 18): a keyed hash,
never the number. Every writer of rows (the commands, the bulk import, the rebuild with its
catch-up) computes it here with the one key of the deployment (`load_index_key`), so the live and
the rebuilt rows are equal. It is None for a complainant without a typed identity number and once
the case's personal data is erased: an erased case is found by no one.
"""

from datetime import date
from typing import Any

import asyncpg

from complaintcore.crypto.blind_index import IndexKey, blind_index, normalised_number
from complaintcore.crypto.keys import KeyProvider
from complaintcore.crypto.suites import suite_named
from complaintcore.domain.commands import CREDIT_CODE_DOCUMENT, Complainant, ComplainantKind
from complaintcore.domain.identity import mask_id_number, mask_name, mask_phone
from complaintcore.domain.personal_data import Path
from complaintcore.domain.state import ComplaintState, closed_on
from complaintcore.events.service_keys import BLIND_INDEX, service_key

COLUMNS = (
    "case_id",
    "registration_no",
    "version",
    "status",
    "respondent_institution",
    "handler_id",
    "channel",
    "category_business",
    "category_reason",
    "major",
    "received_on",
    "last_business_date",
    "due_on",
    "level",
    "paused_days",
    "paused_since",
    "clock_stopped_on",
    "decided_on",
    "outcome",
    "on_time",
    "review_requested_on",
    "review_due_on",
    "review_decided_on",
    "review_window_ends_on",
    "merged_into",
    "complainant",
    "closed_on",
    "personal_data",
    "complainant_index",
)


PERSONAL_FIELDS_SHOWN: frozenset[Path] = frozenset(
    {
        ("complainant", "name"),
        ("complainant", "id_type"),
        ("complainant", "id_number"),
        ("complainant", "contact"),
    }
)
"""The personal fields the row shows (masked): the only ones a rebuild opens."""


# The complainant's fields the document shows masked, each None once erased.
ERASED_COMPLAINANT: dict[str, None] = dict.fromkeys(("name", "id_type", "id_number", "contact"))


def masked_complainant(state: ComplaintState) -> dict[str, Any]:
    """The complainant as lists show it: masked, and (once erased) every personal field None."""
    complainant = state.complainant
    if state.personal_data_erased:
        masked: dict[str, Any] = {"kind": str(complainant.kind), **ERASED_COMPLAINANT}
    else:
        masked = {"kind": str(complainant.kind), "name": mask_name(complainant.name)}
    if complainant.id_number:
        masked["id_type"] = str(complainant.id_type) if complainant.id_type else None
        masked["id_number"] = mask_id_number(complainant.id_number)
    if complainant.contact:
        masked["contact"] = mask_phone(complainant.contact)
    if complainant.unified_social_credit_code:
        masked["unified_social_credit_code"] = complainant.unified_social_credit_code
    return masked


async def load_index_key(
    connection: asyncpg.Connection, provider: KeyProvider, suite_name: str
) -> IndexKey:
    """The deployment's blind-index key, unwrapped by `provider` (made for `suite_name` by the
    first process that needs it). Load it once per process or run, on a connection outside any
    transaction: a key made in a transaction that rolls back would be used but never stored."""
    recorded_suite, secret = await service_key(connection, provider, BLIND_INDEX, suite_name)
    return IndexKey(secret, suite_named(recorded_suite))


def complainant_index(state: ComplaintState, index_key: IndexKey | None) -> str | None:
    """The blind index of the complainant's identity document; None when there is none to
    index (no typed number, or one of spaces and dashes only) or the case's personal data is
    erased. `ValueError` when there is one and no key: a row without it would silently hide
    the case from the search."""
    if state.personal_data_erased:
        return None
    document = identity_document(state.complainant)
    if document is None:
        return None
    if index_key is None:
        raise ValueError(
            f"case {state.id}: the case view of a complainant with an identity number needs "
            "the blind index's key"
        )
    return blind_index(index_key, *document)


def identity_document(complainant: Complainant) -> tuple[str, str] | None:
    """What identifies the complainant, as (type, number): a natural person's identity document,
    a legal person's unified social credit code (type `unified_social_credit_code`, its
    identity document: a company complaining again is found as a person is); None without one."""
    if complainant.kind is ComplainantKind.LEGAL_PERSON:
        kind, number = CREDIT_CODE_DOCUMENT, complainant.unified_social_credit_code
    elif complainant.id_type is not None:
        kind, number = str(complainant.id_type), complainant.id_number
    else:
        return None
    if not number or not normalised_number(number):
        return None
    return kind, number


def case_view_row(state: ComplaintState, index_key: IndexKey | None) -> dict[str, Any]:
    """The row of the case by column; `index_key` may be None only for a case without an
    identity number to index (an erased one, for instance): see `complainant_index`."""
    return dict(zip(COLUMNS, case_view_values(state, index_key), strict=True))


def case_view_values(state: ComplaintState, index_key: IndexKey | None) -> tuple[Any, ...]:
    """The row's values in `COLUMNS`' order: what a command's write, the upsert and a rebuild's
    COPY take (made as a tuple, not read out of the row's dict: a rebuild makes one a case)."""
    decision, review, clock = state.decision, state.review, state.clock
    return (
        state.id,  # case_id
        state.registration_no,
        state.version,
        str(state.status),
        state.respondent_institution,
        state.handler_id,
        state.channel,
        state.category.business,  # category_business
        state.category.reason,  # category_reason
        state.major_flag is not None,  # major
        state.received_on,
        state.last_business_date,
        clock.due_on,
        clock.level,
        clock.paused_days,
        clock.paused_since,
        clock.stopped_on,  # clock_stopped_on
        decision.notice.notified_on if decision else None,  # decided_on
        str(decision.outcome) if decision else None,  # outcome
        decision.on_time if decision else None,  # on_time
        review.requested_on if review else None,  # review_requested_on
        review.due_on if review else None,  # review_due_on
        review.decision.notice.notified_on if review and review.decision else None,
        decision.review_window_ends_on if decision else None,  # review_window_ends_on
        state.merged_into,
        masked_complainant(state),  # complainant
        # the day the case closes unless a later event reopens it (a decided case: the end of
        # its review window), from which its retention runs; None while it is open
        closed_on(state, date.max),
        state.personal_data,
        complainant_index(state, index_key),
    )


async def forget_rebuilding_rows(connection: asyncpg.Connection, case_ids: list[str]) -> None:
    """Delete the rows of these cases from a rebuild's `case_view_rebuild`, if one is under way or
    left part-way (migration 0022): in the transaction that erases their personal data, after it
    wrote their live rows (the order a rebuild's swap locks the two tables in). A rebuild that
    goes on writes them again as erased: their erasure is after the position it scans up to, so
    its catch-up folds them again."""
    await connection.execute("SELECT forget_rebuilding_case_views($1::text[])", case_ids)


def upsert_sql(first_parameter: int = 1, condition: str = "") -> str:
    """Write one row whose columns are the parameters from `$first_parameter` on, in `COLUMNS`'
    order, when `condition` (a WHERE clause, or nothing) holds: the statement of
    `upsert_case_view`, or a part of a command's write statement (`case_command_store`)."""
    parameters = ", ".join(f"${first_parameter + i}" for i in range(len(COLUMNS)))
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in COLUMNS[1:])
    return (
        f"INSERT INTO case_view ({', '.join(COLUMNS)}) SELECT {parameters} {condition}"
        f" ON CONFLICT (case_id) DO UPDATE SET {updates}"
    )


_UPSERT = upsert_sql()


async def upsert_case_view(
    connection: asyncpg.Connection, state: ComplaintState, index_key: IndexKey | None = None
) -> None:
    """Write the case's row. Without `index_key` only for a case without an identity number to
    index, e.g. the erasure sweep's erased states; else `ValueError` (`complainant_index`)."""
    await connection.execute(_UPSERT, *case_view_values(state, index_key))
