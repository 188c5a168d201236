"""Finding a complainant's other cases by their identity document (DOMAIN.md "Personal data",
Repeat complainants; Art. 18; API.md `POST /v1/complainants/search`).

Staff and supervisors give the document's type and number (in a request body, never in a URL, so
the number stays out of access logs and proxies); `complainant_cases` answers the cases of the
caller's subtree whose `case_view.complainant_index` is the document's blind index. The number is
normalised and hashed in this process under the deployment's key (`crypto.blind_index`) and goes
no further: the database is asked for the hash only. So every spelling of one document (full-width
digits, spaces, dashes, a lower-case `x`) finds the same cases; an erased case has no index and is
found by no one; a case outside the caller's subtree is not found, as if it did not exist.

Regulators and admins may not search: they belong to no subtree, and finding a person across every
institution is not what Art. 18 asks for (`NotPermitted`, 403).

Pages: ordered by receipt date, then case id, `limit` cases each, with a keyset cursor like the
case list's: unpadded URL-safe base64 of the JSON list `[received_on, case_id]` of the page's last
case; anything else is refused with `InvalidCursor` (a 422 naming `cursor`). The cursor holds no
personal data: the next page is asked with the same body.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import asyncpg

from complaintcore.application.complaint_service import Actor, NotPermitted
from complaintcore.crypto.blind_index import IndexKey, blind_index
from complaintcore.domain.roles import handles_complaints
from complaintcore.projections.case_queries import (
    InvalidCursor,
    dated_cursor,
    dated_cursor_position,
)

__all__ = ["IdentityDocument", "InvalidCursor", "complainant_cases"]

_SEARCH_LIST = "complainant-search"

# The partial index on complainant_index finds the complainant's few rows; the subtree and the
# cursor filter them.
_CASES_OF_COMPLAINANT = """
SELECT case_id, registration_no, status, received_on FROM case_view
WHERE complainant_index = $1
  AND respondent_institution = ANY($2::text[])
  AND ($3::date IS NULL OR (received_on, case_id) > ($3::date, $4::text))
ORDER BY received_on, case_id
LIMIT $5
"""


class Subtrees(Protocol):
    async def subtree(self, code: str) -> list[str]: ...


class _Pool(Protocol):
    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...


@dataclass(frozen=True)
class IdentityDocument:
    """As the caller typed it; `id_number` not empty once normalised (the request body checks)."""

    id_type: str
    id_number: str


async def complainant_cases(
    pool: _Pool,
    directory: Subtrees,
    index_key: IndexKey,
    actor: Actor,
    document: IdentityDocument,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """`{items: [{id, registration_no, status, received_on}], next_cursor}`: the cases of
    `actor`'s subtree whose complainant holds `document`, a page of `limit` after `cursor`."""
    institution = _searching_institution(actor)
    after = _position_after(cursor) if cursor else (None, None)
    index = blind_index(index_key, document.id_type, document.id_number)
    institutions = await directory.subtree(institution)
    rows = await pool.fetch(_CASES_OF_COMPLAINANT, index, institutions, *after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [_case_of(row) for row in rows],
        "next_cursor": _cursor_after(rows[-1]) if more else None,
    }


def _searching_institution(actor: Actor) -> str:
    """The institution whose subtree the actor searches; only case handlers have one."""
    if not handles_complaints(actor.role) or actor.institution is None:
        raise NotPermitted(
            "forbidden", f"a {actor.role} cannot search complainants: staff and supervisors can"
        )
    return actor.institution


def _case_of(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["case_id"],
        "registration_no": row["registration_no"],
        "status": row["status"],
        "received_on": row["received_on"],
    }


def _cursor_after(row: asyncpg.Record) -> str:
    return dated_cursor(_SEARCH_LIST, row["received_on"], row["case_id"])


def _position_after(cursor: str) -> tuple[date, str]:
    return dated_cursor_position(_SEARCH_LIST, cursor)
