"""Staff figures for appraisal (DOMAIN.md "Staff figures for appraisal", Art. 27): per handler,
the cases they decided, on time, the reviews that changed their decision and the follow-ups'
satisfaction; per staff member named in complaints, the complaints naming them and how many were
upheld. Read from the statistics facts rows of the institutions asked (`facts`), each figure on
its own date as the statistics date theirs (`dating`):

- `decided`, `on_time`: the decision notice date; the handler is the decision's.
- `review_changed`: the review decision's notice date, for reviews that changed the outcome,
  counted to the handler of the decision it changed.
- `satisfaction{…}`: the latest follow-up's date, counted to the deciding handler.
- `named`: the receipt date (merged duplicates excepted, as `received`).
- `upheld`: the decision notice date, for cases whose final outcome (after a review that changed
  it) is `upheld` or `partially_upheld`: the complaint against them held, in whole or in part.

Staff ids are not personal data here (the desk's own ids; erasure keeps them), names never
come into these tables.
"""

from collections.abc import Sequence
from datetime import date
from typing import Any

import asyncpg

from complaintcore.domain.commands import Outcome
from complaintcore.projections.statistics import facts

UPHELD = (str(Outcome.UPHELD), str(Outcome.PARTIALLY_UPHELD))

_IN = "respondent_institution = ANY($1::text[])"
_HANDLERS_SQL = f"""
SELECT handler_id AS staff_id, sum(decided)::bigint AS decided, sum(on_time)::bigint AS on_time,
       sum(review_changed)::bigint AS review_changed, sum(satisfied)::bigint AS satisfied,
       sum(basically_satisfied)::bigint AS basically_satisfied,
       sum(dissatisfied)::bigint AS dissatisfied
FROM (
    SELECT handler_id, 1 AS decided, coalesce(on_time, false)::int AS on_time,
           0 AS review_changed, 0 AS satisfied, 0 AS basically_satisfied, 0 AS dissatisfied
    FROM {facts.TABLE}
    WHERE {_IN} AND handler_id IS NOT NULL AND decided_on BETWEEN $2 AND $3
    UNION ALL
    SELECT handler_id, 0, 0, 1, 0, 0, 0
    FROM {facts.TABLE}
    WHERE {_IN} AND handler_id IS NOT NULL AND review_changed
      AND review_decided_on BETWEEN $2 AND $3
    UNION ALL
    SELECT handler_id, 0, 0, 0, coalesce(satisfied, false)::int,
           coalesce(basically_satisfied, false)::int, coalesce(dissatisfied, false)::int
    FROM {facts.TABLE}
    WHERE {_IN} AND handler_id IS NOT NULL AND followed_up_on BETWEEN $2 AND $3
) AS x
GROUP BY handler_id
ORDER BY handler_id COLLATE "C"
"""
_RESPONDENT_STAFF_SQL = f"""
SELECT staff_id, sum(named)::bigint AS named, sum(upheld)::bigint AS upheld
FROM (
    SELECT unnest(respondent_staff) AS staff_id, 1 AS named, 0 AS upheld
    FROM {facts.TABLE}
    WHERE {_IN} AND cardinality(respondent_staff) > 0 AND received_on BETWEEN $2 AND $3
      AND merged_on IS NULL
    UNION ALL
    SELECT unnest(respondent_staff), 0, 1
    FROM {facts.TABLE}
    WHERE {_IN} AND cardinality(respondent_staff) > 0 AND decided_on BETWEEN $2 AND $3
      AND final_outcome = ANY($4::text[])
) AS x
GROUP BY staff_id
ORDER BY staff_id COLLATE "C"
"""


async def staff_statistics(
    pool: asyncpg.Pool, institutions: Sequence[str], from_on: date, to_on: date
) -> tuple[dict[str, Any], int]:
    """The staff figures of the cases of `institutions` for [from_on, to_on], in one snapshot,
    and the feed position (the runner's checkpoint) they are as of."""
    async with (
        pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        await connection.execute(facts.LOCK_BEFORE_SNAPSHOT)
        checkpoint = await facts.checkpoint_in(connection)
        handlers = await connection.fetch(_HANDLERS_SQL, list(institutions), from_on, to_on)
        named = await connection.fetch(
            _RESPONDENT_STAFF_SQL, list(institutions), from_on, to_on, list(UPHELD)
        )
    return {
        "handlers": [
            {
                "staff_id": row["staff_id"],
                "decided": row["decided"],
                "on_time": row["on_time"],
                "review_changed": row["review_changed"],
                "satisfaction": {
                    "satisfied": row["satisfied"],
                    "basically_satisfied": row["basically_satisfied"],
                    "dissatisfied": row["dissatisfied"],
                },
            }
            for row in handlers
        ],
        "respondent_staff": [dict(row) for row in named],
    }, checkpoint
