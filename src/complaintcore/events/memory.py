"""An in-memory event store for unit tests of code above the store.

It keeps the same contract as the PostgreSQL store; `tests/contract/test_event_store_contract.py`
runs one suite against both so the fake cannot drift.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from complaintcore.events.chaining import chained_rows
from complaintcore.events.model import (
    GENESIS_HASH,
    AppendResult,
    ConcurrencyError,
    EventMetadata,
    NewEvent,
    StoredEvent,
)


class InMemoryEventStore:
    def __init__(self) -> None:
        self._feed: list[StoredEvent] = []
        self._streams: dict[str, list[StoredEvent]] = defaultdict(list)
        self._appends_by_key: dict[tuple[str, str], AppendResult] = {}

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        *,
        idempotency_key: str | None = None,
    ) -> AppendResult:
        if not events:
            raise ValueError("an append needs at least one event")
        if idempotency_key is not None and (stream_id, idempotency_key) in self._appends_by_key:
            return replace(self._appends_by_key[stream_id, idempotency_key], duplicate=True)
        stream = self._streams[stream_id]
        current_version = len(stream)
        if expected_version is not None and expected_version != current_version:
            raise ConcurrencyError(stream_id, expected_version, current_version)
        prev_hash = stream[-1].hash if stream else GENESIS_HASH
        rows = chained_rows(stream_id, events, current_version, prev_hash, idempotency_key)
        stored = [
            StoredEvent(
                position=len(self._feed) + 1 + offset,
                stream_id=stream_id,
                version=rows.versions[offset],
                event_type=rows.event_types[offset],
                schema_version=rows.schema_versions[offset],
                data=rows.data[offset],
                metadata=EventMetadata.from_dict(rows.metadata[offset]),
                recorded_at=rows.recorded_at,
                prev_hash=rows.prev_hashes[offset],
                hash=rows.hashes[offset],
            )
            for offset in range(len(events))
        ]
        self._feed.extend(stored)
        stream.extend(stored)
        result = AppendResult(
            stream_id,
            stored[0].version,
            stored[-1].version,
            tuple(event.position for event in stored),
        )
        if idempotency_key is not None:
            self._appends_by_key[stream_id, idempotency_key] = result
        return result

    async def read_stream(
        self, stream_id: str, *, up_to_version: int | None = None
    ) -> list[StoredEvent]:
        stream = self._streams.get(stream_id, [])
        return list(stream if up_to_version is None else stream[:up_to_version])

    async def stream_version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, []))

    async def read_feed(self, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        return self._feed[after : after + limit] if after >= 0 else self._feed[:limit]
