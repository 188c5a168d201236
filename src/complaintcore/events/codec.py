"""Between domain events and stored events: payloads, personal fields, schema versions, upcasting.

Writing, each personal field is sealed under the case's key (`stream_cipher`) at the version the
event will have, and the event's metadata records the suite. Reading, the fields of an event that
records a suite are opened (None once the case's key is destroyed, read by the domain's erased
decoding); an event that records none was written before encryption and is read as stored.

Old events are never rewritten; an event stored under an older schema version is upcast when it
is read, step by step, by the functions registered in `UPCASTERS`, after its fields are opened
(the catalogue of personal fields describes the stored shape). Every reader of events (the
command path, replay, projections) goes through `domain_events` or `opened_event`.
"""

import dataclasses
import functools
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

from complaintcore.crypto.suites import CiphertextRejected, UnknownSuite
from complaintcore.domain.events import (
    EVENT_TYPES,
    Event,
    EventPayloadError,
    PersonalDataErased,
    UnknownEventType,
    event_from_payload,
    event_to_payload,
)
from complaintcore.domain.personal_data import Path, decoder_keeping_personal, personal_paths
from complaintcore.domain.state import ImpossibleHistory
from complaintcore.events.model import EventMetadata, NewEvent, StoredEvent
from complaintcore.events.stream_cipher import (
    CaseKeyUnusable,
    SealedEventUnreadable,
    StreamCipher,
)

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]

# (event type, schema version it upgrades from) -> function giving the next version's payload.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def new_events(
    events: Sequence[Event],
    metadata: EventMetadata,
    cipher: StreamCipher | None = None,
    first_version: int = 1,
) -> list[NewEvent]:
    """The events to append as versions `first_version`, `first_version + 1`, …; with a
    `cipher`, their personal fields sealed at those versions and the suite recorded."""
    if cipher is None:
        return [_new_event(event, event_to_payload(event), metadata) for event in events]
    metadata = dataclasses.replace(metadata, cipher_suite=cipher.suite.name)
    return [
        _new_event(
            event,
            cipher.seal(event.event_type, version, event_to_payload(event), owned=True),
            metadata,
        )
        for version, event in enumerate(events, start=first_version)
    ]


def _new_event(event: Event, data: Payload, metadata: EventMetadata) -> NewEvent:
    return NewEvent(
        event_type=event.event_type,
        data=data,
        schema_version=event.schema_version,
        metadata=metadata,
    )


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


def decoded_event(event_type: str, schema_version: int, payload: Payload) -> Event:
    """The domain event of a plaintext payload of a stored row's type and schema version."""
    return event_from_payload(event_type, upcast(event_type, schema_version, payload))


def opened_event(
    event_type: str,
    schema_version: int,
    version: int,
    payload: Payload,
    suite_name: str | None,
    cipher: StreamCipher | None,
    only: Collection[Path] | None = None,
    owned: bool = False,
) -> Event:
    """The domain event of a stored row: its personal fields opened by `cipher` when the row
    records a suite (`suite_name`), as stored when it records none. With `only`, the other
    personal fields read as None (see `StreamCipher.open`); `owned`: `payload` is the
    caller's, read for this alone, and those fields are opened in it."""
    if suite_name is None:
        return decoded_event(event_type, schema_version, payload)
    if cipher is None or cipher.suite.name != suite_name:
        raise SealedEventUnreadable(
            f"{event_type} at version {version} is sealed under {suite_name}, "
            f"and was read with {cipher!r}"
        )
    # erased, or only some fields wanted: the others are neither opened nor looked at
    if cipher.data_key is None:
        kept, decode = _reader(event_type, _NONE)
    elif only is None:
        opened = cipher.open(event_type, version, payload)
        return event_from_payload(event_type, upcast(event_type, schema_version, opened))
    else:
        kept, decode = _reader(event_type, only if type(only) is frozenset else frozenset(only))
    if kept:
        payload = cipher.open_for_decoder(event_type, version, payload, kept, owned)
    return decode(upcast(event_type, schema_version, payload))


_NONE: frozenset[Path] = frozenset()


@functools.lru_cache(maxsize=1024)
def _reader(
    event_type: str, only: frozenset[Path]
) -> tuple[frozenset[Path], Callable[[Payload], Event]]:
    """The personal fields of `event_type` among `only`, and the decoder keeping those alone."""
    kept = only & frozenset(personal_paths(event_type))
    return kept, decoder_keeping_personal(event_type, kept)


def domain_event(
    stored: StoredEvent,
    cipher: StreamCipher | None = None,
    only: Collection[Path] | None = None,
) -> Event:
    return opened_event(
        stored.event_type,
        stored.schema_version,
        stored.version,
        stored.data,
        stored.metadata.cipher_suite,
        cipher,
        only,
    )


def domain_events(
    stored: Iterable[StoredEvent],
    cipher: StreamCipher | None = None,
    only: Collection[Path] | None = None,
) -> list[Event]:
    """The stream's domain events (`cipher`: the case's, when its events are sealed; `only`:
    the personal fields to open, the others reading as None; all when None)."""
    return [domain_event(event, cipher, only) for event in stored]


def stream_suite(stored: Sequence[StoredEvent]) -> str | None:
    """The suite a stream's events are sealed under (its latest sealed event's), or None for a
    stream written before encryption."""
    return latest_suite(event.metadata.cipher_suite for event in stored)


class StreamDamaged(ValueError):
    """A stream whose versions do not run on one by one (a row deleted behind the store's
    back): no state can be rebuilt from it truthfully; its audit names the version missing."""


# What reading a stream meets when its rows are not as the store wrote them (a row deleted, a
# payload, a ciphertext or a suite name altered behind its back; an event type or schema version
# this code does not know, or an event that cannot follow the ones before it: found by a review
# pass, each was a 500): a case read, a command, a reveal, the import and the sweep each refuse
# the case with this code (409 over HTTP), and its audit names the version.
STREAM_DAMAGED = "case_stream_damaged"
UNREADABLE_STREAM: tuple[type[Exception], ...] = (
    StreamDamaged,
    UnknownSuite,
    CiphertextRejected,
    EventPayloadError,
    UnknownEventType,
    UnreadableEvent,
    ImpossibleHistory,
)


def versions_run_on(versions: Sequence[int], after: int = 0) -> bool:
    """Whether `versions` (a stream's, in order, each once) run on from version `after` with
    none missing."""
    return not versions or versions[-1] - after == len(versions)


def require_versions_in_a_row(stored: Sequence[StoredEvent], after: int = 0) -> None:
    """`StreamDamaged` unless `stored` (read in version order) runs on from version `after`
    with none missing."""
    if not versions_run_on([event.version for event in stored], after):
        raise StreamDamaged(f"stream {stored[0].stream_id} has a version missing")


def records_erasure(stored: Iterable[StoredEvent]) -> bool:
    """Whether a stream records the erasure of its personal data (its `PersonalDataErased`):
    the authority on erasure, over any key a process still holds."""
    return any(event.event_type == PersonalDataErased.event_type for event in stored)


def require_key_unless_erased(
    case_id: str, stored: Iterable[StoredEvent], cipher: StreamCipher | None
) -> None:
    """`CaseKeyUnusable` when the case's cipher has no key though its stream (as far as read)
    records no erasure."""
    if cipher is not None and cipher.erased and not records_erasure(stored):
        raise CaseKeyUnusable(case_id, "is missing, though its personal data was never erased")


async def stream_and_cipher(
    case_id: str,
    stored: list[StoredEvent],
    read_again: Callable[[], Awaitable[list[StoredEvent]]],
    cipher_of: Callable[[list[StoredEvent]], Awaitable[StreamCipher | None]],
) -> tuple[list[StoredEvent], StreamCipher | None]:
    """`stored` (the case's stream as read) and the cipher that opens it, agreeing: a key found
    gone though the events hold no erasure means the case was erased after they were read (or
    they were read on a replica behind), so the stream is read again, where the erasure is
    recorded with the key's removal; still none there, the key is `CaseKeyUnusable`."""
    cipher = await cipher_of(stored)
    if cipher is not None and cipher.erased and not records_erasure(stored):
        stored = await read_again()
        cipher = await cipher_of(stored)
        require_key_unless_erased(case_id, stored, cipher)
    return stored, cipher


def every_event_sealed(suites: Iterable[str | None]) -> bool:
    """Whether every event of a stream names the suite its personal fields were sealed under
    (its events' `cipher_suite`s, in any order): only then does destroying the case's key erase
    them all; an event written before encryption keeps its fields in clear."""
    return all(suites)


def latest_suite(suites: Iterable[str | None]) -> str | None:
    """The last suite named of a stream's events' suites, in version order (None: none is)."""
    latest = None
    for suite in suites:
        latest = suite or latest
    return latest
