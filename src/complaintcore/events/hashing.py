"""The hash chain that lets a regulator prove a stream was not altered.

Each event's hash is a digest of a canonical JSON serialisation (sorted keys, no spaces, UTF-8) of
everything the store keeps about it, including the previous event's hash, so changing any stored
field of any event breaks the chain from that version on. The digest is the chain hash of the
cipher suite the event records in its metadata (`cipher_suite`: SHA-256 for `aes-256-gcm`, SM3 for
`sm4-gcm`); an event that records none was written before encryption and is hashed with SHA-256.
The chain covers the stored bytes, ciphertext included, so it verifies before and after erasure.

Not hashed: an event's feed `position` (drawn as the row is written, after its hash), which
`verify_chain` checks only to rise with the versions, and the `idempotency_key` column, the
store's copy of the metadata's (which is hashed). What a chain cannot show: events cut from a
stream's end, or a forged last event whose hash was computed again (the digest is unkeyed). Those
need the table's owner, who can disable the append-only triggers; see README "The event store".
"""

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from complaintcore.crypto.suites import UnknownSuite, suite_named
from complaintcore.events.model import GENESIS_HASH, InvalidEventData, StoredEvent


def canonical_bytes(
    *,
    stream_id: str,
    version: int,
    event_type: str,
    schema_version: int,
    data: dict[str, Any],
    metadata: dict[str, Any],
    recorded_at: datetime,
    prev_hash: str,
) -> bytes:
    document = {
        "stream_id": stream_id,
        "version": version,
        "event_type": event_type,
        "schema_version": schema_version,
        "data": data,
        "metadata": metadata,
        "recorded_at": format_timestamp(recorded_at),
        "prev_hash": prev_hash,
    }
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        # an integer beyond 64 bits, which the store never writes (only a tampered row holds
        # one): the same canonical form by the json module, so the chain names the row
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def event_hash(**fields: Any) -> str:
    """The event's chain hash, by the digest of the suite its metadata records."""
    metadata = fields["metadata"]
    # metadata that is no object (only a tampered row holds any) records no suite
    suite = metadata.get("cipher_suite") if type(metadata) is dict else None
    return chain_digest(suite)(canonical_bytes(**fields))


def chain_digest(suite_name: object) -> Callable[[bytes], str]:
    """The hex digest an event recording `suite_name` is chained with (`UnknownSuite` if none)."""
    if suite_name is None:
        return _sha256_hex
    if not isinstance(suite_name, str):  # only a tampered row records anything else
        raise UnknownSuite(f"cipher suite {suite_name!r} is not a name")
    return _suite_digest(suite_name)


@functools.lru_cache(maxsize=8)
def _suite_digest(suite_name: str) -> Callable[[bytes], str]:
    return suite_named(suite_name).chain_hash


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_timestamp(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (isoformat: the same text as strftime, faster)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" becomes "Z"


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def check_storable(value: Any, path: str = "data") -> None:
    """Refuse what jsonb would change: floats (1e2 comes back as 100) and NUL characters."""
    if not _storable(value):
        _refuse_unstorable(value, path)


def _storable(value: Any) -> bool:
    """The fast check, on every append: no path is built unless something is refused. Leaves
    (most values) are judged in their container's loop, without a call of their own."""
    kind = type(value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not _storable_item(item):
                return False
        return True
    if kind is list or kind is tuple:
        return all(map(_storable_item, value))
    return _storable_item(value)


def _storable_item(item: Any) -> bool:
    kind = type(item)
    if kind is str:
        return "\x00" not in item
    if kind is int:
        return _INT64_MIN <= item <= _INT64_MAX
    if kind is bool or item is None:
        return True
    if kind is dict or kind is list or kind is tuple:
        return _storable(item)
    return False


def _refuse_unstorable(value: Any, path: str) -> None:
    """The slow check, with the path of what is refused (also lets str and int subclasses by)."""
    if isinstance(value, float):
        raise InvalidEventData(f"{path}: floating-point numbers are not stored; use integers")
    if isinstance(value, str) and "\x00" in value:
        raise InvalidEventData(f"{path}: the NUL character cannot be stored")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventData(f"{path}: keys must be strings")
            _refuse_unstorable(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_unstorable(item, f"{path}[{index}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
        raise InvalidEventData(f"{path}: integer out of range")
    elif value is not None and not isinstance(value, str | int | bool | dict | list | tuple):
        raise InvalidEventData(f"{path}: {type(value).__name__} is not JSON")


def hash_of_stored(event: StoredEvent) -> str:
    return event_hash(
        stream_id=event.stream_id,
        version=event.version,
        event_type=event.event_type,
        schema_version=event.schema_version,
        data=event.data,
        metadata=event.metadata.to_dict(),
        recorded_at=event.recorded_at,
        prev_hash=event.prev_hash,
    )


@dataclass(frozen=True)
class ChainVerdict:
    intact: bool
    events_checked: int
    first_bad_version: int | None = None
    reason: str | None = None


def verify_chain(events: Iterable[StoredEvent]) -> ChainVerdict:
    """Walk a stream from version 1 and report the first version whose record does not hold."""
    expected_prev = GENESIS_HASH
    last_position = 0
    checked = 0
    for expected_version, event in enumerate(events, start=1):
        if event.version != expected_version:
            return ChainVerdict(
                False, checked, expected_version, f"version {expected_version} is missing"
            )
        problem = _problem_with(event, expected_prev, last_position)
        if problem:
            return ChainVerdict(False, checked, event.version, problem)
        expected_prev, last_position = event.hash, event.position
        checked += 1
    return ChainVerdict(True, checked)


def _problem_with(event: StoredEvent, expected_prev: str, last_position: int) -> str | None:
    # the position (the feed's order) is drawn as the row is written, after its hash: not
    # hashed, but a stream's events stand in the feed in the order of their versions
    if event.position <= last_position:
        return "its feed position is not after the previous event's"
    if event.prev_hash != expected_prev:
        return "prev_hash does not match the previous event's hash"
    try:
        own_hash = hash_of_stored(event)
    except UnknownSuite as error:
        return f"it records a cipher suite this code does not know ({error})"
    if own_hash != event.hash:
        return "stored fields do not match the event's hash"
    return None
