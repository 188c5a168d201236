"""Between domain events and stored events: payloads, schema versions and upcasting.

Old events are never rewritten; an event stored under an older schema version is upcast when it
is read, step by step, by the functions registered in `UPCASTERS`. Every reader of events (the
command path, replay, projections) goes through `domain_events`.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from complaintcore.domain.events import EVENT_TYPES, Event, event_from_payload, event_to_payload
from complaintcore.events.model import EventMetadata, NewEvent, StoredEvent

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

# (event type, schema version it upgrades from) -> function giving the next version's payload.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def new_events(events: Sequence[Event], metadata: EventMetadata) -> list[NewEvent]:
    return [
        NewEvent(
            event_type=event.event_type,
            data=event_to_payload(event),
            schema_version=event.schema_version,
            metadata=metadata,
        )
        for event in events
    ]


class UnreadableEvent(ValueError):
    """A stored event this code cannot bring to its current schema version."""


def upcast(event_type: str, schema_version: int, payload: Payload) -> Payload:
    """The payload as the current schema version of `event_type` has it."""
    if event_type not in EVENT_TYPES:
        return payload  # event_from_payload names the unknown type
    current = EVENT_TYPES[event_type].schema_version
    if schema_version > current:
        raise UnreadableEvent(
            f"{event_type} v{schema_version} is newer than this code (v{current}): upgrade it"
        )
    while schema_version < current:
        step = UPCASTERS.get((event_type, schema_version))
        if step is None:
            raise UnreadableEvent(f"no upcaster from {event_type} v{schema_version}")
        payload = step(payload)
        schema_version += 1
    return payload


def domain_event(stored: StoredEvent) -> Event:
    return decoded_event(stored.event_type, stored.schema_version, stored.data)


def decoded_event(event_type: str, schema_version: int, payload: Payload) -> Event:
    """The domain event of a stored row's type, schema version and payload, upcast first."""
    return event_from_payload(event_type, upcast(event_type, schema_version, payload))


def domain_events(stored: Iterable[StoredEvent]) -> list[Event]:
    return [domain_event(event) for event in stored]
