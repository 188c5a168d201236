"""Reading case streams for the projections: only the columns decoding needs, folded per case.

Projections decode through `codec.opened_event`, so an event stored in an old schema version is
upcast exactly as on the command path. They read the event type, schema version, payload and
suite of each row and none of its other metadata or hashes, which the fold never looks at (the
hash chain is the audit's business): a rebuild of a million events reads a third of the bytes,
and decodes each row straight from its columns.

Personal data: a projection opens only the personal fields it shows (`PersonalFields.shown`: the
case view's masked complainant), so a rebuild pays for a few fields a case and the statistics for
none: with no fields shown, every personal field reads as None and no key is read. The wrapped
key of each case comes with its first row (`decode_columns(with_keys=True)`), unwrapped here
once per case.
"""

from collections import OrderedDict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

from complaintcore.crypto.keys import KeyProvider
from complaintcore.crypto.suites import suite_named
from complaintcore.domain.personal_data import Path
from complaintcore.domain.state import ComplaintState, evolve, fold
from complaintcore.events.codec import domain_event, latest_suite, opened_event
from complaintcore.events.model import StoredEvent
from complaintcore.events.stream_cipher import CaseKeyUnusable, StreamCipher

_COLUMNS = (
    "position, stream_id, version, event_type, schema_version, data,"
    " metadata->>'cipher_suite' AS cipher_suite"
)
# The case's wrapped key on its first row only: one index probe a case.
_WRAPPED_KEY = (
    "CASE WHEN version = 1 THEN"
    " (SELECT wrapped FROM case_keys WHERE case_keys.case_id = events.stream_id) END"
    " AS wrapped_key"
)


def decode_columns(with_keys: bool) -> str:
    """The columns of `events` a fold reads (`with_keys`: and each case's wrapped key)."""
    return f"{_COLUMNS}, {_WRAPPED_KEY}" if with_keys else f"{_COLUMNS}, NULL AS wrapped_key"


@dataclass(frozen=True)
class PersonalFields:
    """Which personal fields a fold opens (`shown`), with the master key that unwraps each
    case's data key (`provider`; needed only when some are shown)."""

    shown: frozenset[Path] = frozenset()
    provider: KeyProvider | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.shown and self.provider is None:
            raise ValueError("opening personal fields needs the master key's provider")

    @property
    def reads_keys(self) -> bool:
        return bool(self.shown)

    def cipher(self, rows: Sequence[asyncpg.Record]) -> StreamCipher | None:
        """The cipher of one case's rows (from version 1), None when none is sealed."""
        # the last row's suite is the latest when it names one (a sealed stream's rows all do)
        suite = rows[-1]["cipher_suite"] or latest_suite(row["cipher_suite"] for row in rows)
        if suite is None:
            return None
        wrapped = rows[0]["wrapped_key"]
        key = None
        if wrapped is not None and self.provider is not None:
            key = self.provider.unwrap(wrapped)
        return StreamCipher(rows[0]["stream_id"], suite_named(suite), key)


NOTHING_PERSONAL = PersonalFields()


class DataKeyMissing(CaseKeyUnusable):
    """A case's fields are to be opened, its key is gone, and its events (as far as they were
    read) hold no erasure: a damaged database, or an erasure committed after the events read."""

    def __init__(self, case_id: str) -> None:
        super().__init__(case_id, "is missing")


def fold_stream(
    rows: Sequence[asyncpg.Record], personal: PersonalFields = NOTHING_PERSONAL
) -> ComplaintState | None:
    """The state of one case from its rows, in version order from version 1. The rows are read
    for this fold and dropped after it: the personal fields it opens are put in their payloads
    in place of the ciphertext, so fold them once."""
    cipher = personal.cipher(rows) if rows else None
    only: Collection[Path] = personal.shown
    state = fold(
        opened_event(
            row["event_type"],
            row["schema_version"],
            row["version"],
            row["data"],
            row["cipher_suite"],
            cipher,
            only,
            owned=True,
        )
        for row in rows
    )
    if only and cipher is not None and cipher.erased and state and not state.personal_data_erased:
        # the key is gone but the case was never erased: never show its fields as if erased
        raise DataKeyMissing(cipher.case_id)
    return state


def _streams_up_to(with_keys: bool) -> str:
    return f"""
SELECT {decode_columns(with_keys)} FROM events
WHERE stream_id = ANY($1::text[]) AND position <= $2
ORDER BY stream_id, version
"""


async def fold_streams(
    connection: asyncpg.Connection,
    stream_ids: Sequence[str],
    up_to_position: int,
    personal: PersonalFields = NOTHING_PERSONAL,
) -> list[ComplaintState]:
    """Each named case as of feed position `up_to_position`, in stream id order."""
    folded = await _folded_streams(connection, stream_ids, up_to_position, personal)
    return list(folded.values())


async def _folded_streams(
    connection: asyncpg.Connection,
    stream_ids: Sequence[str],
    up_to_position: int,
    personal: PersonalFields = NOTHING_PERSONAL,
) -> dict[str, ComplaintState]:
    """`fold_streams` by stream id (a stream that is no case's is left out)."""
    rows = await connection.fetch(
        _streams_up_to(personal.reads_keys), list(stream_ids), up_to_position
    )
    states: dict[str, ComplaintState] = {}
    for case_rows in _by_stream(rows):
        state = fold_stream(case_rows, personal)
        if state is not None:
            states[case_rows[0]["stream_id"]] = state
    return states


KEPT_FOLDS = 10_000


class KeptFolds:
    """The states a feed runner folded last, by case, each with the version and hash of the event
    it was folded up to: a case of the next batch whose earlier events were folded here is
    evolved with the batch's own events, the others are read and folded whole. Under commands
    most cases of a batch were in one before, and their streams are no longer read and decoded
    again for each new event. A hint checked against the events (version and chain), never the
    truth; it holds what `fold_streams` gives with no personal field shown."""

    def __init__(self, capacity: int = KEPT_FOLDS) -> None:
        self._capacity = capacity
        self._kept: OrderedDict[str, tuple[StoredEvent, str | None, ComplaintState]] = OrderedDict()

    async def states_after(
        self, connection: asyncpg.Connection, events: Sequence[StoredEvent]
    ) -> list[ComplaintState]:
        """Each case of feed `events` (all of them after a checkpoint, up to the last one's
        position) as of the last one, in stream id order: `fold_streams` of their streams."""
        by_stream: dict[str, list[StoredEvent]] = {}
        for event in events:
            by_stream.setdefault(event.stream_id, []).append(event)
        suites = {
            stream_id: self._suite_after(stream_id, new) for stream_id, new in by_stream.items()
        }
        states: dict[str, ComplaintState] = {}
        for stream_id, new in by_stream.items():
            if (state := self._evolved(stream_id, new, suites[stream_id])) is not None:
                states[stream_id] = state
        unknown = sorted(by_stream.keys() - states.keys())
        if unknown:
            states.update(await _folded_streams(connection, unknown, events[-1].position))
        for stream_id, state in states.items():
            self._keep(stream_id, (by_stream[stream_id][-1], suites[stream_id], state))
        return [states[stream_id] for stream_id in sorted(states)]

    def _suite_after(self, stream_id: str, new: list[StoredEvent]) -> str | None:
        """The case's latest suite once `new` are in (from the kept one, if any)."""
        kept = self._kept.get(stream_id)
        earlier = kept[1] if kept is not None else None
        return latest_suite([earlier, *(event.metadata.cipher_suite for event in new)])

    def _evolved(
        self, stream_id: str, new: list[StoredEvent], suite: str | None
    ) -> ComplaintState | None:
        kept = self._kept.get(stream_id)
        if kept is None or not _chained(kept[0], new):
            return None
        state = kept[2]
        # as `fold_stream` with nothing shown: personal fields read as None, no key is read
        cipher = None if suite is None else StreamCipher(stream_id, suite_named(suite), None)
        for event in new:
            state = evolve(state, domain_event(event, cipher, frozenset()))
        return state

    def _keep(self, stream_id: str, kept: tuple[StoredEvent, str | None, ComplaintState]) -> None:
        self._kept.pop(stream_id, None)
        self._kept[stream_id] = kept  # the most recent last
        if len(self._kept) > self._capacity:
            self._kept.popitem(last=False)


def _chained(last_folded: StoredEvent, new: list[StoredEvent]) -> bool:
    """Whether `new` are the events right after `last_folded`, each chained to the one before."""
    before = last_folded
    for event in new:
        if event.version != before.version + 1 or event.prev_hash != before.hash:
            return False
        before = event
    return True


def _by_stream(rows: Sequence[asyncpg.Record]) -> Iterable[Sequence[asyncpg.Record]]:
    start = 0
    for index in range(1, len(rows) + 1):
        if index == len(rows) or rows[index]["stream_id"] != rows[start]["stream_id"]:
            yield rows[start:index]
            start = index
