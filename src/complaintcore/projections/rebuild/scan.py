"""The scan of one range of stream ids: its events read in keyset pages, each case folded once,
every table's rows written in COPY batches that commit with the range's progress."""

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import asyncpg

from complaintcore.domain.events import PersonalDataErased
from complaintcore.domain.frozen import changed
from complaintcore.domain.state import ComplaintState
from complaintcore.infra.database import connect
from complaintcore.infra.garbage_collection import collections_by_batch
from complaintcore.infra.process_memory import peak_rss_kib
from complaintcore.projections.rebuild.protocol import (
    TARGETS,
    RebuildSettings,
    RebuildTarget,
    Record,
    personal_fields_of,
)
from complaintcore.projections.rebuild.ranges import ScanRange, move_range
from complaintcore.projections.rebuild.tables import copy_rows
from complaintcore.projections.runner import close_quietly
from complaintcore.projections.streams import (
    DataKeyMissing,
    PersonalFields,
    decode_columns,
    fold_stream,
)

_LAST_VERSION = 2**31 - 1
# a full collection every 500,000 cases at the default batch of 2,000 (infra.garbage_collection)
COLLECT_EVERY_BATCHES = 250


class RebuildScanFailed(Exception):
    """A scan worker failed; the other ranges stopped after their batch in flight, and the
    rebuild can be resumed."""


class ScanRangeTaken(Exception):
    """A range's progress row is not where its scan left it: another scan wrote there."""


@dataclass(frozen=True)
class RangeScanTask:
    """What a range's scan needs, sent to its worker process."""

    database_url: str
    names: tuple[str, ...]
    start_position: int
    scan_range: ScanRange
    settings: RebuildSettings


@dataclass(frozen=True)
class RangeScanOutcome:
    """`summaries`: the derived tables' sums of the rows this scan wrote, by projection;
    `finished`: the range is scanned to its end (else it was asked to stop)."""

    summaries: dict[str, Any]
    finished: bool
    pid: int
    peak_rss_kib: int


class RangeScan:
    """Scans one range of stream ids: reads its events page by page, folds each case once,
    writes every table's rows in batches, each with the range's progress."""

    def __init__(
        self,
        task: RangeScanTask,
        advance: Callable[[int], None] | None = None,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._task = task
        self._targets = [TARGETS[name] for name in task.names]
        self._advance = advance
        self._stopping = stopping
        self._summaries = {
            target.name: target.derived.summary() for target in self._targets if target.derived
        }
        self._last_written = task.scan_range.last_stream_id
        self._records: dict[str, Record] = {}  # each target's row maker, made as the scan starts

    async def run(self) -> RangeScanOutcome:
        writer = await connect(self._task.database_url)
        reader = await connect(self._task.settings.read_url or self._task.database_url)
        try:
            for target in self._targets:
                self._records[target.name] = await target.make_record(writer, self._task.settings)
            with collections_by_batch(COLLECT_EVERY_BATCHES) as batch_done:
                finished = await self._scan(writer, reader, batch_done)
        finally:
            await close_quietly(reader)
            await close_quietly(writer)
        return RangeScanOutcome(
            self._summaries,
            finished,
            os.getpid(),
            peak_rss_kib(),
        )

    async def _scan(
        self,
        writer: asyncpg.Connection,
        reader: asyncpg.Connection,
        batch_done: Callable[[], None],
    ) -> bool:
        """Whether the range was scanned to its end (else asked to stop); `batch_done` is
        called as each batch is handed to the writer."""
        task, settings = self._task, self._task.settings
        scan_range = task.scan_range
        after = scan_range.after if scan_range.last_stream_id is None else scan_range.last_stream_id
        cursor = (after, _LAST_VERSION) if after is not None else ("", 0)
        personal = personal_fields_of(self._targets, settings.key_provider)
        folding = _Folding(personal)
        written_events, finished = scan_range.events_done, False
        # Three things at once: PostgreSQL reads the next page (on a connection of its own) and
        # writes the last batch, while this process folds the page in hand.
        pages = _pages_ahead(
            reader,
            cursor,
            scan_range.up_to,
            task.start_position,
            settings.page_events,
            personal.reads_keys,
        )
        writing: asyncio.Task[None] | None = None
        try:
            async with aclosing(pages):
                async for page, last_page in pages:
                    if self._stopping():
                        break
                    folding.take(page, last_page)
                    if folding.states and (last_page or len(folding.states) >= settings.flush_rows):
                        states, events, keys_missing = folding.batch()
                        written_events += events
                        if writing is not None:
                            await writing  # batches are written in order, one at a time
                        writing = asyncio.create_task(
                            self._write(writer, states, written_events, keys_missing)
                        )
                        batch_done()
                    if self._advance is not None:
                        self._advance(len(page))
                    finished = last_page
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                # A batch in flight commits even when the scan is interrupted (Ctrl-C, an error):
                # the rebuild then resumes after it. The error raised says more than its outcome.
                await asyncio.wait([writing])
                if not writing.cancelled():
                    writing.exception()
        return finished

    async def _write(
        self,
        connection: asyncpg.Connection,
        states: list[ComplaintState],
        events_done: int,
        keys_missing: list[str],
    ) -> None:
        """Write every table's rows for these cases and move the range's progress, together
        (`keys_missing`: cases among them folded without their key, `_Folding`)."""
        names = [target.name for target in self._targets]
        number = self._task.scan_range.number
        async with connection.transaction():
            if keys_missing:
                await _check_erased_since(connection, keys_missing)
            for target in self._targets:
                record = self._records[target.name]
                records = [record(state) for state in states]
                await copy_rows(connection, target, records)
                if target.shows:
                    await _forget_erased_since(connection, target, states, self._task)
                if target.derived:
                    summary = self._summaries[target.name]
                    for record in records:
                        target.derived.add(summary, record)
            if not await move_range(
                connection, names, number, self._last_written, states[-1].id, events_done
            ):
                raise ScanRangeTaken(
                    f"range {number} of the rebuild of {', '.join(names)} was moved by another scan"
                )
        self._last_written = states[-1].id


_ERASED = (
    "SELECT DISTINCT stream_id FROM events WHERE stream_id = ANY($1::text[]) AND event_type = $2"
)


async def _check_erased_since(connection: asyncpg.Connection, case_ids: list[str]) -> None:
    """Each case whose key was found missing has been erased since the position the scan reads
    up to (the erasure destroys the key as it is appended): its rows, folded without its
    personal fields, are replaced as the rebuild catches up. Any other is `DataKeyMissing`."""
    erased = await connection.fetch(_ERASED, case_ids, PersonalDataErased.event_type)
    never_erased = sorted(set(case_ids) - {row["stream_id"] for row in erased})
    if never_erased:
        raise DataKeyMissing(never_erased[0])


# Cases erased after the position the scan reads up to: folded from events read before their
# erasure, their rows would show the personal fields it erased. Read after the COPY took its
# lock on the table, so an erasure either committed before (found here) or waits for this batch
# (and deletes the rows itself: migration 0025).
# The events since that position first (a range of the primary key: few, during a rebuild),
# rather than the batch's thousands of streams probed one by one. The range is bounded above by
# the feed's head too, so PostgreSQL reads it by the index whatever its statistics say: with the
# lower bound alone, on a store not analyzed since a bulk import, it planned a sequential scan of
# every event for every batch (a quarter of a rebuild's time at a million events).
_FORGET_ERASED_SINCE = """
WITH since AS MATERIALIZED (
    SELECT stream_id FROM events
    WHERE position > $1 AND position <= (SELECT max(position) FROM events) AND event_type = $2
)
DELETE FROM {table} WHERE case_id IN (
    SELECT stream_id FROM since WHERE stream_id = ANY($3::text[]))
"""


async def _forget_erased_since(
    connection: asyncpg.Connection,
    target: RebuildTarget,
    states: list[ComplaintState],
    task: RangeScanTask,
) -> None:
    """Delete the rows of this batch's cases erased since the scan's position: the catch-up
    writes them again, as erased (found by a review pass: an erasure committing between a
    batch's read and its write left the row with the masked complainant and blind index)."""
    await connection.execute(
        _FORGET_ERASED_SINCE.format(table=target.building_table),
        task.start_position,
        PersonalDataErased.event_type,
        [state.id for state in states],
    )


async def _pages_ahead(
    reader: asyncpg.Connection,
    cursor: tuple[str, int],
    up_to_stream_id: str | None,
    up_to_position: int,
    page_size: int,
    with_keys: bool,
) -> AsyncIterator[tuple[list[asyncpg.Record], bool]]:
    """The events up to `up_to_position` after `cursor` (stream id, version) and up to stream
    `up_to_stream_id` (None: the last), page by page with whether it is the last, each page
    asked for before the one before it is handed out."""
    # The upper bound is in the SQL only when there is one, so the index scan stops at it.
    bounded = "" if up_to_stream_id is None else " AND stream_id <= $5"
    query = (
        f"SELECT {decode_columns(with_keys)} FROM events"
        f" WHERE (stream_id, version) > ($1, $2) AND position <= $3{bounded}"
        " ORDER BY stream_id, version LIMIT $4"
    )
    bound = () if up_to_stream_id is None else (up_to_stream_id,)

    def read(after: tuple[str, int]) -> asyncio.Task[list[asyncpg.Record]]:
        return asyncio.create_task(reader.fetch(query, *after, up_to_position, page_size, *bound))

    reading = read(cursor)
    try:
        while True:
            page = await reading
            last_page = len(page) < page_size
            if not last_page:
                reading = read((page[-1]["stream_id"], page[-1]["version"]))
                await asyncio.sleep(0)  # let it send its query before the caller starts folding
            yield page, last_page
            if last_page:
                return
    finally:
        if not reading.done():
            reading.cancel()


class _Folding:
    """Cases folded from rows in (stream_id, version) order, each once its last row is in."""

    def __init__(self, personal: PersonalFields) -> None:
        self._personal = personal
        self.states: list[ComplaintState] = []  # cases folded, not taken in a batch yet
        self._events = 0  # their events
        self._keys_missing: list[str] = []  # those among them folded without their key
        self._case_rows: list[asyncpg.Record] = []  # the events of the case being read

    def take(self, page: list[asyncpg.Record], last_page: bool) -> None:
        case_rows = self._case_rows
        for row in page:
            if case_rows and row["stream_id"] != case_rows[0]["stream_id"]:
                self._fold(case_rows)
                case_rows = []
            case_rows.append(row)
        if last_page and case_rows:
            self._fold(case_rows)
            case_rows = []
        self._case_rows = case_rows

    def batch(self) -> tuple[list[ComplaintState], int, list[str]]:
        """The cases folded since the last batch, their events, and the ids of those folded
        without their key."""
        batch = self.states, self._events, self._keys_missing
        self.states, self._events, self._keys_missing = [], 0, []
        return batch

    def _fold(self, case_rows: list[asyncpg.Record]) -> None:
        try:
            state = fold_stream(case_rows, self._personal)
        except DataKeyMissing as missing:
            # erased after the position the scan reads up to, or a damaged database: the batch's
            # write tells which, and refuses the second; in the first the catch-up replaces its
            # rows by the erased case's, which these already are
            unopened = fold_stream(case_rows)
            assert unopened is not None, "a stream always begins with its receipt"
            state = changed(unopened, personal_data_erased=True)
            self._keys_missing.append(missing.case_id)
        assert state is not None, "a stream always begins with its receipt"
        self.states.append(state)
        self._events += len(case_rows)
