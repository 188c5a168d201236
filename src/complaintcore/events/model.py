"""What the event store keeps: events to append, stored events, and the store's own errors."""

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


def new_causation_id() -> str:
    """The id of one command, written as `causation_id` on every event it appends (a receipt's
    automatic `MarkedMajor` names the receipt's command), as `correlation_id` ties a caller's
    requests together."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class EventMetadata:
    """Who did it, on whose behalf, and which request caused it."""

    actor_id: str | None = None
    actor_role: str | None = None
    institution: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    idempotency_key: str | None = None
    client: str | None = None
    cipher_suite: str | None = None
    """The suite the event's personal fields are sealed under, which also hashes its chain link
    (None: written before encryption, plaintext and SHA-256)."""
    policy_version: str | None = None
    """The institution policy the command was judged under (`ResolvedPolicy.version`: the ids of
    the versions in force along the respondent's lineage, or `default`); None: stored before
    policies had versions, or not by a command."""

    others: dict[str, Any] = field(default_factory=dict)
    """What stored metadata holds besides the fields above (or a field written null): never
    written by this code, kept as read so that a row's metadata hashes, and shows, as stored
    (a key added behind the store's back breaks the chain at its version)."""

    def to_dict(self) -> dict[str, Any]:
        written = {
            name: value for name in _METADATA_FIELDS if (value := getattr(self, name)) is not None
        }
        return {**written, **self.others} if self.others else written

    @classmethod
    def from_dict(cls, data: Any) -> "EventMetadata":
        if not isinstance(data, dict):
            return MetadataNotAnObject(stored=data)
        if data.keys() <= _WRITTEN_KEYS and _TEXT_ONLY.issuperset(map(type, data.values())):
            return cls(**data)
        # what the service never writes (another key, a null, a value not a text) kept as read
        others = {
            key: value
            for key, value in data.items()
            if key not in _WRITTEN_KEYS or not isinstance(value, str)
        }
        written = {key: value for key, value in data.items() if key not in others}
        return cls(**written, others=others)


@dataclass(frozen=True)
class MetadataNotAnObject(EventMetadata):
    """Metadata stored as something other than a JSON object, which only a row altered behind
    the store's back holds: kept as read, so that it hashes and shows as stored and the chain
    names its version; every field reads None."""

    stored: Any = None

    def to_dict(self) -> Any:
        return self.stored


_METADATA_FIELDS = tuple(
    field.name for field in fields(EventMetadata) if field.name not in ("others", "stored")
)
_WRITTEN_KEYS = frozenset(_METADATA_FIELDS)
_TEXT_ONLY = frozenset({str})  # every field the service writes is a text


@dataclass(frozen=True)
class NewEvent:
    event_type: str
    data: dict[str, Any]
    schema_version: int = 1
    metadata: EventMetadata = field(default_factory=EventMetadata)


@dataclass(frozen=True)
class StoredEvent:
    position: int
    stream_id: str
    version: int
    event_type: str
    schema_version: int
    data: dict[str, Any]
    metadata: EventMetadata
    recorded_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AppendResult:
    stream_id: str
    first_version: int
    last_version: int
    positions: tuple[int, ...]
    duplicate: bool = False
    """True when the idempotency key was already stored: nothing new was written."""


class EventStoreError(Exception):
    """Base of the store's own errors; driver errors never leave the store."""


class ConcurrencyError(EventStoreError):
    def __init__(self, stream_id: str, expected_version: int, actual_version: int | None) -> None:
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"stream {stream_id!r} is not at version {expected_version}"
            + (f" (it is at {actual_version})" if actual_version is not None else "")
        )


class InvalidEventData(EventStoreError, ValueError):
    """The payload cannot be stored so that its hash survives a round trip through jsonb."""
