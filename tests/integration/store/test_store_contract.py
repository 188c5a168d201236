"""One contract, two stores: the PostgreSQL store and the in-memory fake must agree."""

import pytest

from complaintcore.events.hashing import verify_chain
from complaintcore.events.memory import InMemoryEventStore
from complaintcore.events.model import ConcurrencyError, EventMetadata, InvalidEventData, NewEvent
from complaintcore.events.store import EventStore, PostgresEventStore


@pytest.fixture(params=["postgres", "memory"])
def store(request: pytest.FixtureRequest) -> EventStore:
    if request.param == "memory":
        return InMemoryEventStore()
    return PostgresEventStore(request.getfixturevalue("pool"))


def event(kind: str = "Happened", **data: object) -> NewEvent:
    return NewEvent(kind, dict(data), metadata=EventMetadata(actor_id="u1", actor_role="staff"))


async def test_a_new_stream_starts_at_version_one(store: EventStore) -> None:
    result = await store.append("case-1", [event(n=1), event(n=2)], expected_version=0)
    assert (result.first_version, result.last_version) == (1, 2)
    assert [e.version for e in await store.read_stream("case-1")] == [1, 2]
    assert await store.stream_version("case-1") == 2


async def test_an_append_at_a_stale_version_raises_the_stores_own_error(store: EventStore) -> None:
    await store.append("case-1", [event()], expected_version=0)
    with pytest.raises(ConcurrencyError) as raised:
        await store.append("case-1", [event()], expected_version=0)
    assert raised.value.actual_version == 1
    assert await store.stream_version("case-1") == 1


async def test_an_append_without_expected_version_goes_on_the_end(store: EventStore) -> None:
    await store.append("case-1", [event()], expected_version=0)
    result = await store.append("case-1", [event()], expected_version=None)
    assert result.first_version == 2


async def test_reading_up_to_a_version_stops_there(store: EventStore) -> None:
    await store.append("case-1", [event(n=n) for n in range(5)], expected_version=0)
    events = await store.read_stream("case-1", up_to_version=3)
    assert [e.data["n"] for e in events] == [0, 1, 2]


async def test_a_missing_stream_reads_empty_at_version_zero(store: EventStore) -> None:
    assert await store.read_stream("nobody") == []
    assert await store.stream_version("nobody") == 0


async def test_the_feed_returns_every_event_after_a_position_in_order(store: EventStore) -> None:
    await store.append("a", [event(n=1)], expected_version=0)
    await store.append("b", [event(n=2), event(n=3)], expected_version=0)
    await store.append("a", [event(n=4)], expected_version=1)
    feed = await store.read_feed(after=0)
    assert [e.data["n"] for e in feed] == [1, 2, 3, 4]
    positions = [e.position for e in feed]
    assert positions == sorted(positions)
    later = await store.read_feed(after=positions[1], limit=1)
    assert [e.data["n"] for e in later] == [3]


async def test_events_keep_type_schema_payload_and_metadata(store: EventStore) -> None:
    new = NewEvent(
        "ComplaintReceived",
        {"claims": "退还年费", "amount_fen": 12_000, "tags": ["a", "b"], "nested": {"x": None}},
        schema_version=2,
        metadata=EventMetadata(actor_id="u1", actor_role="staff", institution="HO", client="web"),
    )
    await store.append("case-1", [new], expected_version=0)
    [stored] = await store.read_stream("case-1")
    assert (stored.event_type, stored.schema_version, stored.data) == (
        new.event_type,
        2,
        new.data,
    )
    assert stored.metadata == new.metadata
    assert stored.recorded_at.tzinfo is not None


async def test_an_idempotent_reappend_stores_nothing_and_returns_the_first_result(
    store: EventStore,
) -> None:
    first = await store.append("case-1", [event(n=1), event(n=2)], 0, idempotency_key="k1")
    again = await store.append("case-1", [event(n=1), event(n=2)], 0, idempotency_key="k1")
    assert (again.first_version, again.last_version, again.positions) == (
        first.first_version,
        first.last_version,
        first.positions,
    )
    assert again.duplicate and not first.duplicate
    assert await store.stream_version("case-1") == 2
    assert len(await store.read_feed()) == 2


async def test_the_same_idempotency_key_on_another_stream_is_another_append(
    store: EventStore,
) -> None:
    await store.append("case-1", [event()], 0, idempotency_key="k1")
    result = await store.append("case-2", [event()], 0, idempotency_key="k1")
    assert not result.duplicate


async def test_every_stream_is_a_verifiable_hash_chain(store: EventStore) -> None:
    await store.append("case-1", [event(n=1), event(n=2)], expected_version=0)
    await store.append("case-1", [event(n=3)], expected_version=2)
    events = await store.read_stream("case-1")
    assert events[0].prev_hash == "0" * 64
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    verdict = verify_chain(events)
    assert verdict.intact and verdict.events_checked == 3


@pytest.mark.parametrize("bad", [1.5, "nul\x00char", {"k": {1, 2}}])
async def test_a_payload_that_would_not_survive_storage_is_refused(
    store: EventStore, bad: object
) -> None:
    with pytest.raises(InvalidEventData):
        await store.append("case-1", [event(value=bad)], expected_version=0)
    assert await store.stream_version("case-1") == 0


async def test_an_empty_append_is_refused(store: EventStore) -> None:
    with pytest.raises(ValueError):
        await store.append("case-1", [], expected_version=0)
