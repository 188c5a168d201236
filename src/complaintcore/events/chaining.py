"""New events numbered, stamped and hashed, each chained to the one before it: the rows every
writer of `events` stores (`PostgresEventStore.append`, its bulk `append_streams`, and the
in-memory fake), so that all of them chain exactly alike (see `hashing`)."""

from collections.abc import Sequence
from datetime import UTC, datetime

from complaintcore.events.hashing import check_storable, event_hash
from complaintcore.events.model import EventMetadata, NewEvent


class ChainedRows:
    def __init__(self, recorded_at: datetime) -> None:
        self.recorded_at = recorded_at
        self.versions: list[int] = []
        self.event_types: list[str] = []
        self.schema_versions: list[int] = []
        self.data: list[dict] = []
        self.metadata: list[dict] = []
        self.idempotency_keys: list[str | None] = []
        self.prev_hashes: list[str] = []
        self.hashes: list[str] = []

    def columns(self) -> tuple[list, ...]:
        return (
            self.versions,
            self.event_types,
            self.schema_versions,
            self.data,
            self.metadata,
            self.idempotency_keys,
            self.prev_hashes,
            self.hashes,
        )


def chained_rows(
    stream_id: str,
    events: Sequence[NewEvent],
    current_version: int,
    prev_hash: str,
    idempotency_key: str | None,
) -> ChainedRows:
    """Number, stamp and hash the new events, each chained to the one before it."""
    rows = ChainedRows(recorded_at=now())
    for offset, event in enumerate(events):
        version = current_version + 1 + offset
        metadata, own_hash = chained_event(
            stream_id, version, event, rows.recorded_at, prev_hash, idempotency_key
        )
        rows.versions.append(version)
        rows.event_types.append(event.event_type)
        rows.schema_versions.append(event.schema_version)
        rows.data.append(event.data)
        rows.metadata.append(metadata)
        rows.idempotency_keys.append(idempotency_key if offset == 0 else None)
        rows.prev_hashes.append(prev_hash)
        rows.hashes.append(own_hash)
        prev_hash = own_hash
    return rows


def chained_event(
    stream_id: str,
    version: int,
    event: NewEvent,
    recorded_at: datetime,
    prev_hash: str,
    idempotency_key: str | None,
) -> tuple[dict[str, str], str]:
    """One event's metadata as stored and its hash, chained to `prev_hash`; the group commit's
    single-event appends use it alone, without the columns of `ChainedRows`."""
    metadata = stored_metadata(event.metadata, idempotency_key)
    check_storable(event.data)
    own_hash = event_hash(
        stream_id=stream_id,
        version=version,
        event_type=event.event_type,
        schema_version=event.schema_version,
        data=event.data,
        metadata=metadata,
        recorded_at=recorded_at,
        prev_hash=prev_hash,
    )
    return metadata, own_hash


def stored_metadata(metadata: EventMetadata, idempotency_key: str | None) -> dict[str, str]:
    as_dict = metadata.to_dict()
    if idempotency_key is not None:
        as_dict["idempotency_key"] = idempotency_key
    check_storable(as_dict, "metadata")
    return as_dict


def now() -> datetime:
    """The time an append records (`recorded_at`)."""
    return datetime.now(UTC)
