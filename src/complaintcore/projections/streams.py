"""Reading case streams for the projections: only the columns decoding needs, folded per case.

Projections decode through `event_codec.decoded_event`, so an event stored in an old schema
version is upcast exactly as on the command path. They read the event type, schema version and
payload of each row and none of its metadata or hashes, which the fold never looks at (the hash
chain is the audit's business): a rebuild of a million events reads a third of the bytes, and
decodes each row straight from its columns.
"""

from collections.abc import Iterable, Sequence

import asyncpg

from complaintcore.domain.state import ComplaintState, fold
from complaintcore.events.codec import decoded_event

DECODE_COLUMNS = "position, stream_id, version, event_type, schema_version, data"

_STREAMS_UP_TO = f"""
SELECT {DECODE_COLUMNS} FROM events
WHERE stream_id = ANY($1::text[]) AND position <= $2
ORDER BY stream_id, version
"""


def fold_stream(rows: Iterable[asyncpg.Record]) -> ComplaintState | None:
    """The state of one case from its rows, in version order."""
    return fold(
        decoded_event(row["event_type"], row["schema_version"], row["data"]) for row in rows
    )


async def fold_streams(
    connection: asyncpg.Connection, stream_ids: Sequence[str], up_to_position: int
) -> list[ComplaintState]:
    """Each named case as of feed position `up_to_position`, in stream id order."""
    rows = await connection.fetch(_STREAMS_UP_TO, list(stream_ids), up_to_position)
    states: list[ComplaintState] = []
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or rows[index]["stream_id"] != rows[start]["stream_id"]:
            state = fold_stream(rows[start:index])
            if state is not None:
                states.append(state)
            start = index
    return states
