"""Revealing a case's personal data, and the log of every reveal (API.md "Personal data";
DOMAIN.md "Personal data", Reveal).

`reveal`: the plaintext of a case's personal fields, by event version, for a caller who states a
purpose and may see it (`domain.roles.may_reveal`: the case's assigned handler among staff,
supervisors of the case's subtree, regulators). The case is read like every case read
(`ComplaintService.case_events`: an unseen case is `CaseNotFound`, a 404), folded for its handler,
and refused with `NotPermitted` (403 `forbidden`) by the rule. Then the access-log row (who, role,
institution, case, purpose) is inserted and committed *before* anything is answered: a reveal
never happens unlogged, and a reveal whose row could not be written answers nothing.

`personal_values` is the one place that reads a stored event's personal values: opened with the
case's key (`events.stream_cipher`), or as stored for an event written before encryption. A case
whose key is destroyed answers `PersonalDataGone` (410 `personal_data_erased`) to those who may
reveal, before anything is logged: there is nothing to reveal. Anyone else gets the 403 they get
before the erasure (API.md: a role that may not use a route gets 403 where it sees the case).

`access_log`: the log, newest first, for regulators and admins, filtered by case, actor and
period. `date_from` and `date_to` are Asia/Shanghai business dates, both inclusive: a row
belongs to the Shanghai calendar day of its `at`. Pages follow a keyset cursor, opaque to
callers: unpadded URL-safe base64 of the JSON list `[at, id]` of the page's last row (`at` an ISO
8601 timestamp with its offset, `id` the row's id in decimal); anything else is refused with
`InvalidCursor` (a 422 naming `cursor`).
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import asyncpg

from complaintcore.application.complaint_service import Actor, ComplaintService, NotPermitted
from complaintcore.domain.identity import holds_a_personal_number
from complaintcore.domain.personal_data import split_personal
from complaintcore.domain.roles import may_reveal
from complaintcore.domain.state import fold
from complaintcore.events.codec import domain_events, require_versions_in_a_row
from complaintcore.events.model import StoredEvent
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.projections.case_queries import (
    InvalidCursor,
    cursor_instant,
    cursor_row_id,
)
from complaintcore.projections.case_queries import decode_cursor as decode_list_cursor
from complaintcore.projections.case_queries import encode_cursor as encode_list_cursor

__all__ = [
    "PURPOSE_MAX_LENGTH",
    "AccessFilter",
    "InvalidCursor",
    "PersonalDataGone",
    "access_log",
    "personal_values",
    "purpose_refused",
    "reveal",
    "says_something",
]

PURPOSE_MAX_LENGTH = 200
SHANGHAI = ZoneInfo("Asia/Shanghai")
# One line of text that says something: no control character (C0, DEL, C1), no line or
# paragraph separator, and one character at least that shows: not a space (U+3000 included),
# not an invisible format character (soft hyphen, zero widths, direction marks, word joiners,
# U+FEFF) and not a blank filler (Hangul fillers, the blank Braille pattern). A purpose of those
# alone was recorded in the access log as one that reads empty (found by a review pass).
_ACCESS_LIST = "personal-data-access"
_LINE_CHARACTER = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
_SAYING_CHARACTER = (
    r"[^\s\x00-\x1f\x7f-\x9f\u2028\u2029\u00ad\u115f\u1160\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u206f\u2800\u3164\ufeff\uffa0]"
)
PURPOSE_PATTERN = f"^{_LINE_CHARACTER}*{_SAYING_CHARACTER}{_LINE_CHARACTER}*$"


class _Pool(Protocol):
    async def execute(self, query: str, *args: Any) -> str: ...
    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...


class PersonalDataGone(Exception):
    """The case's personal data is erased: its key is destroyed (410 `personal_data_erased`)."""


def personal_values(stored_event: StoredEvent, cipher: StreamCipher | None) -> dict[str, Any]:
    """The personal values of a stored event, in plaintext, by JSON pointer (`"/complainant/name"`),
    in the order of `domain.personal_data.personal_paths`; empty for an event with none.
    Opened by `cipher` when the event records a suite, as stored when it records none."""
    payload = stored_event.data
    if stored_event.metadata.cipher_suite is not None:
        assert cipher is not None and not cipher.erased, "sealed fields need the case's key"
        payload = cipher.open(stored_event.event_type, stored_event.version, payload)
    return split_personal(stored_event.event_type, payload)[1]


# What shows nothing, beyond what the pattern lists: every format character (U+061C, the tag
# characters, ...), combining marks alone, unassigned code points and noncharacters, lone
# surrogates and the blank fillers (found by a review pass: the
# pattern's list of invisible characters let others through, 136 format characters alone).
_SHOWING_NOTHING = frozenset({"Cf", "Mn", "Me", "Cc", "Cn", "Cs", "Zs", "Zl", "Zp"})
_BLANK_FILLERS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def says_something(purpose: str) -> bool:
    """Whether `purpose` holds a character that shows (not a space, a format character, a
    combining mark alone or a blank filler)."""
    return any(
        unicodedata.category(character) not in _SHOWING_NOTHING and character not in _BLANK_FILLERS
        for character in purpose
    )


def purpose_refused(purpose: str) -> tuple[str, str] | None:
    """Why a purpose of the published pattern is still refused (a code and a message), None when
    it is not: the rules a portable pattern cannot state, read alike by the route's query
    parameter and by `reveal`."""
    if not says_something(purpose):
        return "purpose_says_nothing", "the purpose shows nothing: no letter, digit or sign"
    if holds_a_personal_number(purpose):
        # kept in clear in the access log for good, and sent in a URL (found by a review pass)
        return (
            "purpose_personal",
            "the purpose holds an identity or mobile number: say why, not who",
        )
    return None


def valid_purpose(purpose: str) -> bool:
    # fullmatch: `$` alone would let a final line break through
    return (
        len(purpose) <= PURPOSE_MAX_LENGTH
        and re.fullmatch(PURPOSE_PATTERN, purpose) is not None
        and purpose_refused(purpose) is None
    )


async def reveal(
    pool: _Pool, complaints: ComplaintService, actor: Actor, case_id: str, purpose: str
) -> dict[str, Any]:
    """The case's personal fields in plaintext by event version, logged first (see the module)."""
    if not valid_purpose(purpose):
        raise ValueError(
            "a purpose is one line of 1 to 200 characters, not all spaces, with no control "
            "character"
        )
    # a key found gone though the events hold no erasure: read again, or refused as unusable
    events, cipher = await complaints.opened_stream(
        actor, case_id, await complaints.case_events(actor, case_id)
    )
    require_versions_in_a_row(events)
    state = fold(domain_events(events, cipher))  # an erased case's fields read as None
    assert state is not None
    if not may_reveal(actor.role, actor.id, state.handler_id):
        raise NotPermitted(
            "forbidden",
            "Only the case's assigned handler, supervisors of its institution's subtree and "
            "regulators may see its personal data.",
        )
    if cipher is not None and cipher.erased:
        raise PersonalDataGone(case_id)
    revealed = [
        {"version": event.version, "type": event.event_type, "fields": fields}
        for event in events
        if (fields := personal_values(event, cipher))
    ]
    # One statement on its own: committed when it returns, before the answer is built.
    await pool.execute(
        "INSERT INTO personal_data_access (actor, role, institution, case_id, purpose)"
        " VALUES ($1, $2, $3, $4, $5)",
        actor.id,
        actor.role,
        actor.institution,
        case_id,
        purpose,
    )
    return {"case_id": case_id, "personal_data": "held", "events": revealed}


@dataclass(frozen=True)
class AccessFilter:
    case_id: str | None = None
    actor: str | None = None
    date_from: date | None = None  # Asia/Shanghai business dates, inclusive
    date_to: date | None = None


def _shanghai_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=SHANGHAI)


def encode_cursor(at: datetime, row_id: int) -> str:
    return encode_list_cursor(_ACCESS_LIST, (at.isoformat(), str(row_id)))


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (at, id) of a cursor `encode_cursor` wrote; `InvalidCursor` for anything else. The
    envelope (base64 of the list's name and two strings) is the case lists'; its values are
    checked here."""
    at_text, id_text = decode_list_cursor(_ACCESS_LIST, cursor)
    return cursor_instant(at_text), cursor_row_id(id_text)


async def access_log(
    pool: _Pool, access_filter: AccessFilter, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page of the log, newest first: `{items, next_cursor}` (None on the last page)."""
    after = decode_cursor(cursor) if cursor is not None else None
    conditions: list[str] = []
    args: list[Any] = []

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if access_filter.case_id is not None:
        conditions.append(f"case_id = {param(access_filter.case_id)}")
    if access_filter.actor is not None:
        conditions.append(f"actor = {param(access_filter.actor)}")
    if access_filter.date_from is not None:
        conditions.append(f"at >= {param(_shanghai_midnight(access_filter.date_from))}")
    if access_filter.date_to is not None:
        next_day = access_filter.date_to + timedelta(days=1)
        conditions.append(f"at < {param(_shanghai_midnight(next_day))}")
    if after is not None:
        conditions.append(f"(at, id) < ({param(after[0])}, {param(after[1])})")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await pool.fetch(
        "SELECT id, at, actor, role, institution, case_id, purpose FROM personal_data_access"
        f" {where} ORDER BY at DESC, id DESC LIMIT {param(limit + 1)}",
        *args,
    )
    page = rows[:limit]
    next_cursor = (
        encode_cursor(page[-1]["at"], page[-1]["id"]) if len(rows) > limit and page else None
    )
    items = [
        {key: row[key] for key in ("at", "actor", "role", "institution", "case_id", "purpose")}
        for row in page
    ]
    return {"items": items, "next_cursor": next_cursor}
